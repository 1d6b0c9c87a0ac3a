package templates

import "strings"

// ActivationView is the activation form's view-model: values to
// prefill or re-show, field errors, and the state of the portal's request.
type ActivationView struct {
	Lang  string
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

var activationTexts = map[string][2]string{
	"intro":      {"Send a request and an iSpring manager will activate the integration for your portal.", "Отправьте заявку, и менеджер iSpring активирует интеграцию для вашего портала."},
	"name":       {"Your name", "Ваше имя"},
	"email":      {"E-mail", "Электронная почта"},
	"phone":      {"Phone", "Телефон"},
	"phone_hint": {"International form with the country code, e.g. +7 912 345-67-89", "В международном формате с кодом страны, например +7 912 345-67-89"},
	"send":       {"Send request", "Отправить заявку"},
	"update":     {"Update request", "Обновить заявку"},
	"sent":       {"Thank you! Your request has been sent. An iSpring manager will contact you.", "Спасибо! Заявка отправлена. Менеджер iSpring свяжется с вами."},
	"open":       {"Your request was sent on %s. An iSpring manager will contact you. You can correct your details below.", "Заявка отправлена %s. Менеджер iSpring свяжется с вами. Вы можете уточнить данные ниже."},
	"active":     {"The integration is active.", "Интеграция активна."},
	"readonly":   {"Only a Bitrix24 administrator can send the activation request.", "Отправить заявку на активацию может только администратор Битрикс24."},
	"fix":        {"Please correct the fields marked below.", "Исправьте отмеченные поля."},
}

func actT(lang, key string) string {
	m := activationTexts[key]
	switch strings.ToLower(lang) {
	case "ru", "ua", "by", "kz":
		return m[1]
	}
	return m[0]
}

func actOpenText(v ActivationView) string {
	return strings.Replace(actT(v.Lang, "open"), "%s", v.SentAt, 1)
}
