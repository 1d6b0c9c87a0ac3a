package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// handleEvents receives the app's events from Bitrix24 (POST /b24/events).
// Bitrix24 ignores the answer, but the status tells tests and logs what
// happened:
//   - 200: handled, or deliberately ignored (the body says which; an
//     uninstall that Bitrix24 refutes is recorded for the managers and ignored);
//   - 202: an uninstall recorded but not yet confirmed, because Bitrix24 could
//     not be asked; a job asks again;
//   - 401: not proven (wrong application_token, refresh token refused);
//   - 403: proven, but by a user who is not a portal admin;
//   - 503: not proven because the OAuth server failed or did not answer:
//     nothing is stored (Bitrix24 does not send the event again; after an
//     update the next admin's open binds the events and takes the token:
//     keepEvents);
//   - 400: garbled.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	ev, err := bitrix24.ParseEventRequest(r)
	if err != nil {
		s.refuseMalformed()
		s.log.InfoContext(r.Context(), "bad event", "error", err, "request_id", requestID(r))
		s.error(w, r, errMalformedEvent)
		return
	}
	if !s.guardRefreshEvent(w, r, ev) {
		return
	}
	answer := "ok"
	switch ev.Name {
	case "ONAPPUNINSTALL":
		answer, err = s.eventUninstall(r.Context(), ev, clientIP(r))
	case "ONAPPUPDATE", "ONAPPINSTALL":
		err = s.eventAppToken(r.Context(), ev)
	default:
		s.log.InfoContext(r.Context(), "event ignored", "event", logText(ev.Name))
		answer = "ignored"
	}
	switch {
	case errors.Is(err, errUnverified):
		s.log.WarnContext(r.Context(), "event not verified", "event", ev.Name, "error", err, "request_id", requestID(r))
		s.error(w, r, errUnverifiedEvent)
	case errors.Is(err, bitrix24.ErrClientRefused):
		s.logCredentialsRefused(r, err)
		s.error(w, r, errCredentialsRefused(i18n.EN))
	case errors.Is(err, errOAuthDown):
		s.log.WarnContext(r.Context(), "event not verified: oauth server unreachable", "event", ev.Name, "error", err,
			"request_id", requestID(r))
		// Bitrix24's servers read the answer to an event, nobody's page.
		s.error(w, r, errB24Down(i18n.EN))
	case errors.Is(err, errNotAdmin):
		s.log.WarnContext(r.Context(), "event from a non-admin ignored", "event", ev.Name, "error", err, "request_id", requestID(r))
		s.error(w, r, apperr.New(apperr.EFORBIDDEN, "Only a portal administrator's event can do this."))
	case err != nil:
		s.error(w, r, fmt.Errorf("event %s: %w", ev.Name, err))
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if answer == answerPending {
			w.WriteHeader(http.StatusAccepted)
		}
		_, _ = w.Write([]byte(answer + "\n"))
	}
}

// errMalformedEvent answers an event that cannot be read.
var errMalformedEvent = apperr.New(apperr.EMALFORMED, "Malformed event.")

// errUnverifiedEvent answers an event whose sender is not proven.
var errUnverifiedEvent = apperr.New(apperr.EUNAUTHORIZED, "Event not verified.")

// errNotAdmin means the OAuth server vouched for the request's tokens, but
// they belong to a user who may not do what the event asks.
var errNotAdmin = errors.New("tokens of a user who is not a portal admin")

// Answers of eventUninstall besides "ok".
const (
	answerPending = "recorded, awaiting confirmation"
	answerRefuted = "ignored: the app is still installed"
	answerAlready = "ignored: already uninstalled"
	// answerReinstalled: the app was installed again while Bitrix24 was
	// asked about the tokens of the installation before.
	answerReinstalled = "ignored: installed again meanwhile"
	// answerRefusalRuns: an uninstall without CLEAN of a portal whose
	// tokens Bitrix24 refused already (uninstall.RefusalRuns).
	answerRefusalRuns = "ignored: the tokens were refused before; the data retention applies"
)

// eventUninstall handles ONAPPUNINSTALL. Its auth block has no tokens and its
// application_token reaches every portal user in the iframe POST, so a match
// only earns the event a check: the portal's stored tokens are tried on
// Bitrix24, which refuses them once the app is really gone. Confirmed, the
// portal's jobs stop, it is marked uninstalled and, with data[CLEAN]=1, its
// secrets, credentials and mappings are erased after uninstall.SettleDelay,
// unless an uninstall without CLEAN comes in meanwhile (after
// uninstall.EraseDelay when Bitrix24 only refused the tokens, which a portal
// whose trial ended also gets: jobs.ConfirmUninstall). Refuted,
// nothing changes and the attempt is recorded for the managers. Unanswered,
// the attempt is recorded and a River job asks again (package uninstall).
func (s *Server) eventUninstall(ctx context.Context, ev bitrix24.Event, source string) (string, error) {
	if ev.Auth == nil || ev.Auth.MemberID == "" || ev.Auth.ApplicationToken == "" {
		return "", fmt.Errorf("uninstall without member_id or application_token: %w", errUnverified)
	}
	p, matches, err := s.checkApplicationToken(ctx, ev.Auth.MemberID, ev.Auth.ApplicationToken)
	if err != nil {
		return "", err
	}
	if !p.Installed() {
		// Nothing left to ask Bitrix24 with, and nothing to stop; a repeated
		// event must not erase what an earlier uninstall kept. One without
		// CLEAN is recorded: it drops an erase still waiting
		// (uninstall.SettleDelay), in case the CLEAN one acted on was forged.
		// Only one that matched the stored application token: with none
		// stored, any portal user could keep the data the admin erased.
		if !ev.Clean() && matches {
			if err := uninstall.RecordKept(ctx, s.pool, p.ID, source, uninstall.ReasonAlreadyUninstalled, s.now()); err != nil {
				return "", err
			}
		}
		s.log.InfoContext(ctx, "uninstall of a portal already uninstalled ignored", "portal_id", p.ID, "clean", ev.Clean(), "verified", matches)
		return answerAlready, nil
	}
	// Each ask costs Bitrix24 calls, and every portal user knows the
	// application token: past the portal's verification bucket the event is
	// kept as pending (repeats share a row and its one check job) instead.
	// One with the stored token draws on a bucket that events with a made-up
	// token cannot empty.
	verdict, reason := uninstall.Unknown, "not asked at once: too many uninstall events for this portal"
	if limited, _ := s.gate.admitEvent(s.now(), p.MemberID, matches); limited == "" {
		// Asked outside any transaction: a refresh locks the portal row itself.
		verdict, reason = uninstall.Ask(ctx, s.clients, p.ID)
	}
	switch verdict {
	case uninstall.Refuted:
		if _, err := uninstall.Record(ctx, s.pool, p.ID, ev.Clean(), source, uninstall.StateRefuted, reason); err != nil {
			return "", err
		}
		s.log.WarnContext(ctx, "unconfirmed uninstall: the app is still installed", "portal_id", p.ID,
			"clean", ev.Clean(), "source", source)
		return answerRefuted, nil
	case uninstall.Unknown:
		err := s.txFunc(ctx, func(tx pgx.Tx) error {
			id, err := uninstall.Record(ctx, tx, p.ID, ev.Clean(), source, uninstall.StatePending, reason)
			if err != nil {
				return err
			}
			if s.river == nil {
				return errors.New("no river client to retry the uninstall check")
			}
			if _, err := s.river.InsertTx(ctx, tx, jobs.UninstallCheckArgs{EventID: id}, nil); err != nil {
				return fmt.Errorf("queue uninstall check: %w", err)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		s.log.WarnContext(ctx, "uninstall recorded, bitrix24 could not confirm it yet", "portal_id", p.ID,
			"clean", ev.Clean(), "source", source, "reason", reason)
		return answerPending, nil
	}
	reinstalled, refusalRuns := false, false
	err = s.txFunc(ctx, func(tx pgx.Tx) error {
		lp, err := store.LockPortalByMemberID(ctx, tx, p.MemberID)
		if err != nil {
			return err
		}
		if !lp.Installed() {
			// A concurrent event got there first; if this one keeps the
			// data and is verified, the other's erase is dropped (see above).
			if !ev.Clean() && matches {
				return uninstall.RecordKept(ctx, tx, p.ID, source, uninstall.ReasonAlreadyUninstalled, s.now())
			}
			return nil
		}
		if lp.InstallGeneration != p.InstallGeneration {
			// Installed again while Bitrix24 was asked: its answer was about
			// the tokens of the installation removed, not of this one.
			reinstalled = true
			_, err := uninstall.Record(ctx, tx, p.ID, ev.Clean(), source, uninstall.StateExpired, uninstall.ReasonReinstalled)
			return err
		}
		if refusalRuns, err = uninstall.RefusalRuns(ctx, tx, lp.ID, ev.Clean(), verdict, s.now()); err != nil || refusalRuns {
			if err != nil {
				return err
			}
			_, err := uninstall.Record(ctx, tx, p.ID, false, source, uninstall.StateExpired, uninstall.ReasonRefusalRuns)
			return err
		}
		if s.river == nil {
			s.log.WarnContext(ctx, "no river client: portal jobs not cancelled", "portal_id", p.ID)
		}
		if err := jobs.ConfirmUninstall(ctx, tx, s.river, s.pool, lp, ev.Clean(), verdict); err != nil {
			return err
		}
		_, err = uninstall.Record(ctx, tx, p.ID, ev.Clean(), source, uninstall.StateConfirmed, reason)
		return err
	})
	if err != nil {
		return "", err
	}
	if refusalRuns {
		s.log.WarnContext(ctx, "uninstall without CLEAN ignored: bitrix24 refused the tokens before it came, the data retention applies",
			"portal_id", p.ID, "source", source, "reason", reason)
		return answerRefusalRuns, nil
	}
	if reinstalled {
		s.log.WarnContext(ctx, "uninstall ignored: the app was installed again meanwhile", "portal_id", p.ID,
			"clean", ev.Clean(), "source", source, "reason", reason)
		return answerReinstalled, nil
	}
	s.log.InfoContext(ctx, "portal uninstalled", "portal_id", p.ID, "clean", ev.Clean(), "reason", reason)
	return "ok", nil
}

// checkApplicationToken finds the portal and compares the event's
// application_token with the stored one in constant time; a portal with
// none stored passes (see the comment inside), with matches false.
func (s *Server) checkApplicationToken(ctx context.Context, memberID, token string) (p store.Portal, matches bool, err error) {
	p, err = store.GetPortalByMemberID(ctx, s.pool, memberID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Portal{}, false, fmt.Errorf("event for an unknown portal: %w", errUnverified)
	}
	if err != nil {
		return store.Portal{}, false, err
	}
	stored, err := store.ApplicationToken(ctx, s.pool, s.cfg.Keyring, p.ID)
	if err != nil {
		return store.Portal{}, false, err
	}
	if stored == "" {
		// An older portal sends the token neither in the frame POST nor,
		// to an app with a UI, in ONAPPINSTALL: the event has nothing to
		// be compared with, and Bitrix24's answer to the portal's own
		// tokens alone decides (eventUninstall asks within the portal's
		// bucket). Refusing it would leave an uninstalled portal's data.
		s.log.InfoContext(ctx, "event for a portal with no application token stored: Bitrix24 decides", "portal_id", p.ID)
		return p, false, nil
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(token)) != 1 {
		return store.Portal{}, false, fmt.Errorf("event with a wrong application_token: %w", errUnverified)
	}
	return p, true, nil
}

// eventAppToken handles ONAPPINSTALL and ONAPPUPDATE: both carry a refresh
// token, which the OAuth server must confirm for the named portal, and whose
// user must be a portal admin, before the new application_token is stored.
// After an update, whose installation drops the event bindings, the app's
// events are bound again with the fresh tokens.
func (s *Server) eventAppToken(ctx context.Context, ev bitrix24.Event) error {
	if ev.Auth == nil || ev.Auth.ApplicationToken == "" {
		return fmt.Errorf("%s without auth block: %w", ev.Name, errUnverified)
	}
	if ev.Name == "ONAPPINSTALL" {
		// It may carry the installer frame's own pair, which the install
		// has refreshed and so spent (docs/bitrix24-api.md, "Events"). One
		// naming the application token already stored changes nothing:
		// it is answered without spending a refresh on it.
		if p, matches, err := s.checkApplicationToken(ctx, ev.Auth.MemberID, ev.Auth.ApplicationToken); err == nil && matches && p.Installed() {
			s.log.InfoContext(ctx, "ONAPPINSTALL names the stored application token: nothing to change", "portal_id", p.ID)
			return nil
		}
	}
	oauth, err := s.oauthFor(ev.Auth.ServerEndpoint)
	if err != nil {
		return err
	}
	v, err := s.verifyRefresh(ctx, oauth, ev.Auth.RefreshToken, ev.Auth.MemberID, "")
	if err != nil {
		return err
	}
	p, err := store.GetPortalByMemberID(ctx, s.pool, v.token.MemberID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.Installed()) {
		// Nothing to attach the token to; the installer stores the portal.
		s.log.InfoContext(ctx, "app token event for a portal not installed here", "event", ev.Name)
		return nil
	}
	if err != nil {
		return err
	}
	// Every portal user holds a refresh token the OAuth server accepts (the
	// iframe POST's REFRESH_ID), so only an admin's may replace the token
	// that uninstall events are checked against.
	c, _ := s.b24Client(v)
	prof, err := c.Profile(ctx)
	if err != nil {
		return fmt.Errorf("%s: profile: %w", ev.Name, err)
	}
	if !prof.Admin {
		return fmt.Errorf("%s by user %d of portal %d: %w", ev.Name, prof.ID, p.ID, errNotAdmin)
	}
	if err := store.SetApplicationToken(ctx, s.pool, s.cfg.Keyring, p.ID, ev.Auth.ApplicationToken); err != nil {
		return err
	}
	if ev.Name == "ONAPPUPDATE" {
		for _, name := range appEvents {
			if err := c.EventBind(ctx, name, s.eventsURL()); err != nil {
				s.log.WarnContext(ctx, "rebind after update failed", "portal_id", p.ID, "event", name, "error", err)
			}
		}
	}
	s.log.InfoContext(ctx, "application token stored", "portal_id", p.ID, "event", ev.Name)
	return nil
}
