package safe

import (
	"errors"
	"strings"
	"testing"
)

func TestCall(t *testing.T) {
	t.Parallel()
	want := errors.New("refused")
	if err := Call(func() error { return want }); err != want {
		t.Fatalf("an error came back as %v", err)
	}
	if err := Call(func() error { return nil }); err != nil {
		t.Fatalf("no error came back as %v", err)
	}
	err := Call(func() error {
		var m map[string]int
		m["x"] = 1 // a nil map: a runtime panic
		return nil
	})
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "nil map") || len(pe.Stack) == 0 {
		t.Fatalf("a panic came back as %v", err)
	}
}
