package apperr

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeAndMessage(t *testing.T) {
	for _, c := range []struct {
		name      string
		err       error
		code, msg string
	}{
		{"nil", nil, "", ""},
		{"app error", Errorf(ENOTFOUND, "Report %d not found.", 7), ENOTFOUND, "Report 7 not found."},
		{"wrapped app error", fmt.Errorf("load report: %w", Errorf(ECONFLICT, "Busy.")), ECONFLICT, "Busy."},
		{"other error", errors.New("dial tcp 10.0.0.5:5432: refused"), EINTERNAL, "Internal error."},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ErrorCode(c.err); got != c.code {
				t.Errorf("ErrorCode = %q, want %q", got, c.code)
			}
			if got := ErrorMessage(c.err); got != c.msg {
				t.Errorf("ErrorMessage = %q, want %q", got, c.msg)
			}
		})
	}
}
