package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/activation"
	"b24learn/internal/alert"
	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/settings"
	"b24learn/templates"
)

// The double opt-in of the alert address (internal/alert's confirm.go): the
// settings save and the "send a confirmation link" button queue the e-mail;
// its link opens GET /alerts/confirm in a normal tab, outside Bitrix24, whose
// button POSTs the token back.

// alertConfirmResult is the JSON answer of POST /app/alert-confirmation;
// the save's answer carries the same alert fields.
type alertConfirmResult struct {
	OK             bool   `json:"ok"`
	Message        string `json:"message"`
	AlertState     string `json:"alert_state"`
	AlertStateText string `json:"alert_state_text"`
}

// askAlertConfirmation queues the confirmation e-mail of a newly saved
// address, in the saving transaction, unless it is confirmed for the portal
// already. It returns the sentence for the admin ("" when nothing was
// asked); the caps are no error: the address stays saved and pending.
func (s *Server) askAlertConfirmation(ctx context.Context, tx pgx.Tx, portalID int64, address string, lang i18n.Lang) (string, error) {
	ok, err := alert.Confirmed(ctx, tx, portalID, address)
	if err != nil || ok {
		return "", err
	}
	err = alert.RequestConfirmation(ctx, tx, s.river, portalID, address, string(lang))
	switch {
	case errors.Is(err, alert.ErrCapped):
		s.log.InfoContext(ctx, "alert address confirmation not queued: cap reached", "portal_id", portalID)
		return i18n.T(lang, "msg.alert_confirm_capped"), nil
	case err != nil:
		return "", err
	}
	return i18n.T(lang, "msg.alert_confirm_sent", address), nil
}

// alertState reads the state of the portal's saved address for the page.
func (s *Server) alertState(ctx context.Context, portalID int64, address string, lang i18n.Lang) (string, string, error) {
	st, err := alert.AddressStateOf(ctx, s.pool, portalID, address)
	if err != nil {
		return "", "", err
	}
	return string(st), templates.AlertStateText(lang, string(st), address), nil
}

// handleSendAlertConfirmation sends the link again (or for the first time,
// for an address saved before the opt-in), within the same caps as a save.
func (s *Server) handleSendAlertConfirmation(w http.ResponseWriter, r *http.Request) {
	v, _ := sessionFrom(r.Context())
	ctx := r.Context()
	var address, note string
	var refusal error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// As a save does: the portal's count of e-mails is not raced.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM portals WHERE id = $1 FOR UPDATE`, v.PortalID); err != nil {
			return fmt.Errorf("lock portal: %w", err)
		}
		st, err := settings.Load(ctx, tx, nil, v.PortalID)
		if err != nil {
			return err
		}
		address = st.AlertEmail
		if address == "" {
			refusal = apperr.New(apperr.EINVALID, i18n.T(v.Lang, "msg.alert_confirm_none"))
			return nil
		}
		if ok, err := alert.Confirmed(ctx, tx, v.PortalID, address); err != nil || ok {
			note = i18n.T(v.Lang, "msg.alert_confirmed")
			return err
		}
		// An address saved before today's rules (an address literal, say)
		// gets no link: it must be saved again, as a save checks it.
		if !activation.Mailbox(address) {
			refusal = apperr.New(apperr.EINVALID, i18n.T(v.Lang, "msg.alert_email_invalid"))
			return nil
		}
		err = alert.RequestConfirmation(ctx, tx, s.river, v.PortalID, address, string(v.Lang))
		if errors.Is(err, alert.ErrCapped) {
			refusal = apperr.New(apperr.ETOOMANY, i18n.T(v.Lang, "msg.alert_confirm_capped"))
			return nil
		}
		note = i18n.T(v.Lang, "msg.alert_confirm_sent", address)
		return err
	})
	if err == nil {
		err = refusal
	}
	if err != nil {
		s.errorJSON(w, r, err)
		return
	}
	state, text, err := s.alertState(ctx, v.PortalID, address, v.Lang)
	if err != nil {
		s.errorJSON(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alertConfirmResult{OK: true, Message: note, AlertState: state, AlertStateText: text})
}

// sameOriginPosts refuses a state-changing request from another origin
// (Sec-Fetch-Site, else Origin against Host), as the console does for River
// UI: the confirmation page has no session to hold a form token, and its
// button must work from a plain tab.
func (s *Server) sameOriginPosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.crossOrigin.Check(r); err != nil {
			lang := confirmLang(r.URL.Query().Get("lang"), r)
			s.renderAlertConfirm(w, r, http.StatusForbidden, templates.AlertConfirmView{Lang: lang, Error: i18n.T(lang, "confirm.err_origin")})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// confirmLang is the confirmation page's language: the one its link (and
// then its form) names, which is the e-mail's, else the browser's.
func confirmLang(named string, r *http.Request) i18n.Lang {
	if named == string(i18n.RU) || named == string(i18n.EN) {
		return i18n.Lang(named)
	}
	return acceptLang(r.Header.Get("Accept-Language"))
}

// tokenRefusal is the page's status and sentence for a link that does not
// work.
func tokenRefusal(lang i18n.Lang, err error) (int, string) {
	switch {
	case errors.Is(err, alert.ErrTokenExpired):
		return http.StatusGone, i18n.T(lang, "confirm.err_expired")
	case errors.Is(err, alert.ErrTokenUsed):
		return http.StatusConflict, i18n.T(lang, "confirm.err_used")
	}
	return http.StatusNotFound, i18n.T(lang, "confirm.err_unknown")
}

// handleAlertConfirmPage shows what the link confirms and the button; it
// changes nothing, since mail scanners open links.
func (s *Server) handleAlertConfirmPage(w http.ResponseWriter, r *http.Request) {
	lang := confirmLang(r.URL.Query().Get("lang"), r)
	token := r.URL.Query().Get("token")
	c, err := alert.Lookup(r.Context(), s.pool, token)
	s.answerAlertConfirm(w, r, lang, token, c, false, err)
}

// handleAlertConfirm uses the posted token.
func (s *Server) handleAlertConfirm(w http.ResponseWriter, r *http.Request) {
	lang := confirmLang("", r)
	if err := r.ParseForm(); err != nil {
		s.renderAlertConfirm(w, r, http.StatusBadRequest, templates.AlertConfirmView{Lang: lang, Error: i18n.T(lang, "confirm.err_unknown")})
		return
	}
	lang = confirmLang(r.PostFormValue("lang"), r)
	c, err := alert.Confirm(r.Context(), s.pool, r.PostFormValue("token"))
	if err == nil {
		s.log.InfoContext(r.Context(), "alert address confirmed", "portal_id", c.PortalID)
	}
	s.answerAlertConfirm(w, r, lang, "", c, err == nil, err)
}

func (s *Server) answerAlertConfirm(w http.ResponseWriter, r *http.Request, lang i18n.Lang, token string, c alert.Confirmation, done bool, err error) {
	v := templates.AlertConfirmView{Lang: lang, Token: token, Domain: c.Domain, Address: c.Address, Done: done}
	if err != nil {
		if !errors.Is(err, alert.ErrTokenUnknown) && !errors.Is(err, alert.ErrTokenExpired) && !errors.Is(err, alert.ErrTokenUsed) {
			s.errorIn(w, r, lang, err)
			return
		}
		status, text := tokenRefusal(lang, err)
		s.renderAlertConfirm(w, r, status, templates.AlertConfirmView{Lang: lang, Error: text})
		return
	}
	s.renderAlertConfirm(w, r, http.StatusOK, v)
}

func (s *Server) renderAlertConfirm(w http.ResponseWriter, r *http.Request, status int, v templates.AlertConfirmView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The token is in this page's address: no Referer carries it anywhere.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := templates.AlertConfirm(v).Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render alert confirmation page", "error", err)
	}
}
