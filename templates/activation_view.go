package templates

import (
	"strings"

	"b24learn/internal/i18n"
)

// ActivationView is the activation form's view-model: values to
// prefill or re-show, field errors, and the state of the portal's request.
type ActivationView struct {
	Lang  i18n.Lang
	Token string // the iframe session token, sent back as the "session" field
	Name  string
	Email string
	Phone string
	// Errors maps "name", "email", "phone" to a message shown next to the field.
	Errors map[string]string
	// Notice is a message about the whole form (rate limit, server trouble).
	Notice string
	// Sent: the request was just stored (shows the confirmation).
	Sent bool
	// Open: the portal has a request managers have not closed yet;
	// SentAt is when it was last sent ("2026-05-04 10:15 UTC").
	Open   bool
	SentAt string
	// Active: the integration is already on; the form is not needed.
	Active bool
	// ReadOnly: the user is not a portal admin.
	ReadOnly bool
}

// HasError says whether field has a message.
func (v ActivationView) HasError(field string) bool { return v.Errors[field] != "" }

// actT is the activation form's text for key.
func actT(lang i18n.Lang, key string) string { return i18n.T(lang, "form."+key) }

func actOpenText(v ActivationView) string {
	return strings.Replace(actT(v.Lang, "open"), "%s", v.SentAt, 1)
}
