package learn

import (
	"context"
	"errors"
)

// departmentWords are the parameters of a department create or update a
// refusal may name.
var departmentWords = []string{"code", "name", "parentDepartmentId", "parent"}

// codeRefusal reports whether err, the refusal of a department write that
// sent a code, may be about the code: a 400 whose message names the code, or
// names nothing of the request (terse errors are only the status text).
// No source gives a code's length or characters (docs/learn-api.md,
// "Unsettled behaviour").
func codeRefusal(err error) bool {
	var ve *ValidationError
	if !errors.As(err, &ve) || !ve.Remote {
		return false
	}
	switch MentionedField(err, departmentWords) {
	case "code", "":
		return true
	}
	return false
}

// withoutCode sends a department write that Learn refused while it carried
// a code once more without it: the code only labels a department, which the
// sync finds by its mapping (docs/learn-api.md, "Department codes").
func (c *Client) withoutCode(ctx context.Context, err error, what string) bool {
	if !codeRefusal(err) {
		return false
	}
	c.log.InfoContext(ctx, "learn refused a department code: the write goes once more without it", "call", what)
	return true
}
