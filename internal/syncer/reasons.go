// Why a run item is as it is, as codes the pages say in their language.

package syncer

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Reason is one reason of a run item: a code (the catalogue's
// "reason_<code>" says it in a page's language) and its arguments, which are
// data put in as they are: an e-mail, a number, a portal, Learn's own words.
type Reason struct {
	Code string   `json:"c"`
	Args []string `json:"a,omitempty"`
}

// Reasons are a run item's reasons in the order they arose.
type Reasons []Reason

// Reason codes. The catalogue has a sentence for each (reason_<code>).
const (
	// ReasonText is a reason stored as English text by a version before
	// codes: its one argument is shown as it is.
	ReasonText = "text"

	ReasonLicence          = "licence"            // waiting for a licence
	ReasonLicenceRefused   = "licence_refused"    // Learn refused an activation: its words
	ReasonLearn            = "learn"              // Learn did not apply a write: the client's words
	ReasonLearnField       = "learn_field"        // Learn's refusal names a profile field
	ReasonCut              = "cut"                // values sent cut to a number of characters
	ReasonNameClash        = "name_clash"         // a namesake's name sent with a tag
	ReasonCodeless         = "codeless"           // a department lost its mapping and several without its code may be it: how many
	ReasonRootRefused      = "root_refused"       // Learn refused the root's managers
	ReasonRootUnkept       = "root_unkept"        // Learn kept the root's managers as they were
	ReasonRootUnread       = "root_unread"        // Learn took them but refused to show the root
	ReasonNotCleared       = "not_cleared"        // Learn takes no empty value for a field
	ReasonFieldLeftOut     = "field_left_out"     // a mapped field left out of a run: field, problem
	ReasonEmailShared      = "email_shared"       // another Bitrix24 user has the e-mail: e-mail, user
	ReasonSignIn           = "sign_in"            // the e-mail is the Learn login the app signs in with
	ReasonLearnAdmin       = "learn_admin"        // the e-mail's Learn user has rights over others in Learn
	ReasonLearnRoleUnknown = "learn_role_unknown" // Learn shows no role for the e-mail's Learn user
	ReasonNoEmail          = "no_email"           // no e-mail in Bitrix24
	ReasonEmailOwned       = "email_owned"        // the e-mail's Learn user is another employee's
	ReasonInvited          = "invited"            // invited to Bitrix24, not accepted yet
	ReasonInvitedUnknown   = "invited_unknown"    // Bitrix24 could not tell invited users apart: why
	ReasonLeaveRefused     = "leave_refused"      // Learn refused a deactivation: not sent again while the person is away
	ReasonRemembered       = "remembered"         // refused in an earlier run, not sent again
	ReasonActiveAgain      = "active_again"       // active in Bitrix24 again
	ReasonForeign          = "foreign"            // the Learn user is another portal's: login, portal
	ReasonContested        = "contested"          // another portal matched it too: portal
	ReasonOwnedBy          = "owned_by"           // the Learn user is another portal's: portal
	ReasonGone             = "gone"               // no longer in Bitrix24
	ReasonDismissed        = "dismissed"          // dismissed in Bitrix24
	ReasonNotEmployee      = "not_employee"       // not an employee: the user type
	ReasonNotSelected      = "not_selected"       // in no selected department
	ReasonHeld             = "held"               // held for an admin's approval
)

// because is one reason.
func because(code string, args ...string) Reasons { return Reasons{{Code: code, Args: args}} }

// and is rs followed by more.
func (rs Reasons) and(more Reasons) Reasons { return append(slices.Clip(rs), more...) }

// Has reports whether code is among rs.
func (rs Reasons) Has(code string) bool {
	return slices.ContainsFunc(rs, func(r Reason) bool { return r.Code == code })
}

// arg is the first argument of code's reason, "" when there is none.
func (rs Reasons) arg(code string) string {
	for _, r := range rs {
		if r.Code == code && len(r.Args) > 0 {
			return r.Args[0]
		}
	}
	return ""
}

// encode is how rs are stored: "" for none, JSON otherwise.
func (rs Reasons) encode() string {
	if len(rs) == 0 {
		return ""
	}
	b, _ := json.Marshal(rs) // strings only: cannot fail
	return string(b)
}

// decodeReasons reads a stored reason; English text from before codes is
// one ReasonText.
func decodeReasons(s string) Reasons {
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, `[{"c":`) {
		var rs Reasons
		if json.Unmarshal([]byte(s), &rs) == nil {
			return rs
		}
	}
	return because(ReasonText, s)
}

// Value stores rs in a text column (database/sql's driver.Valuer, which
// pgx takes).
func (rs Reasons) Value() (driver.Value, error) { return rs.encode(), nil }

// Scan reads rs from a text column.
func (rs *Reasons) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*rs = nil
	case string:
		*rs = decodeReasons(v)
	case []byte:
		*rs = decodeReasons(string(v))
	default:
		return fmt.Errorf("scan reasons from %T", src)
	}
	return nil
}

// String is rs for logs and test failures: each code with its arguments.
func (rs Reasons) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Code
		if len(r.Args) > 0 {
			parts[i] += "(" + strings.Join(r.Args, ", ") + ")"
		}
	}
	return strings.Join(parts, "; ")
}
