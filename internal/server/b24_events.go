package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/bitrix24"
	"b24learn/internal/store"
)

// handleEvents receives the app's events from Bitrix24 (POST /b24/events).
// Bitrix24 ignores the answer, but the status tells tests and logs what
// happened: 200 handled or deliberately ignored, 401 not proven, 400 garbled.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	ev, err := bitrix24.ParseEventRequest(r)
	if err != nil {
		s.refuseMalformed()
		s.log.InfoContext(r.Context(), "bad event", "error", err, "request_id", requestID(r))
		http.Error(w, "Malformed event.", http.StatusBadRequest)
		return
	}
	if !s.guardRefreshEvent(w, r, ev) {
		return
	}
	switch ev.Name {
	case "ONAPPUNINSTALL":
		err = s.eventUninstall(r.Context(), ev)
	case "ONAPPUPDATE", "ONAPPINSTALL":
		err = s.eventAppToken(r.Context(), ev)
	default:
		s.log.InfoContext(r.Context(), "event ignored", "event", ev.Name)
	}
	switch {
	case errors.Is(err, errUnverified):
		s.log.WarnContext(r.Context(), "event not verified", "event", ev.Name, "error", err, "request_id", requestID(r))
		http.Error(w, "Event not verified.", http.StatusUnauthorized)
	case err != nil:
		s.serverError(w, r, fmt.Errorf("event %s: %w", ev.Name, err))
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}
}

// eventUninstall handles ONAPPUNINSTALL. Its auth block has no tokens, so the
// stored application_token is the only proof (reference §1.4); with a match it
// stops the portal's jobs, marks it uninstalled and, with data[CLEAN]=1, erases
// its secrets, credentials and mappings, all in one transaction.
func (s *Server) eventUninstall(ctx context.Context, ev bitrix24.Event) error {
	if ev.Auth == nil || ev.Auth.MemberID == "" || ev.Auth.ApplicationToken == "" {
		return fmt.Errorf("uninstall without member_id or application_token: %w", errUnverified)
	}
	var portalID int64
	err := s.txFunc(ctx, func(tx pgx.Tx) error {
		p, err := store.LockPortalByMemberID(ctx, tx, ev.Auth.MemberID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("uninstall of an unknown portal: %w", errUnverified)
		}
		if err != nil {
			return err
		}
		stored, err := store.ApplicationToken(ctx, tx, s.cfg.Keyring, p.ID)
		if err != nil {
			return err
		}
		if stored == "" || subtle.ConstantTimeCompare([]byte(stored), []byte(ev.Auth.ApplicationToken)) != 1 {
			return fmt.Errorf("uninstall with a wrong application_token: %w", errUnverified)
		}
		portalID = p.ID
		if err := s.cancelPortalJobs(ctx, tx, p.ID); err != nil {
			return err
		}
		if err := store.MarkPortalUninstalled(ctx, tx, p.ID); err != nil {
			return err
		}
		if ev.Clean() {
			return store.ErasePortalData(ctx, tx, p.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "portal uninstalled", "portal_id", portalID, "clean", ev.Clean())
	return nil
}

// cancelPortalJobs cancels every unfinished River job whose args name the
// portal (every job kind carries portal_id). A running job is flagged, and its
// worker's context is cancelled by River.
func (s *Server) cancelPortalJobs(ctx context.Context, tx pgx.Tx, portalID int64) error {
	if s.river == nil {
		s.log.WarnContext(ctx, "no river client: portal jobs not cancelled", "portal_id", portalID)
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM river_job
		WHERE args->>'portal_id' = $1
			AND state IN ('available', 'scheduled', 'retryable', 'running', 'pending')`,
		strconv.FormatInt(portalID, 10))
	if err != nil {
		return fmt.Errorf("list portal jobs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("list portal jobs: %w", err)
	}
	for _, id := range ids {
		if _, err := s.river.JobCancelTx(ctx, tx, id); err != nil {
			return fmt.Errorf("cancel job %d: %w", id, err)
		}
	}
	return nil
}

// eventAppToken handles ONAPPINSTALL and ONAPPUPDATE: both carry a refresh
// token, which the OAuth server must confirm for the named portal before the
// new application_token is stored. After an update, whose installation drops
// the event bindings, the app's events are bound again with the fresh tokens.
func (s *Server) eventAppToken(ctx context.Context, ev bitrix24.Event) error {
	if ev.Auth == nil || ev.Auth.ApplicationToken == "" {
		return fmt.Errorf("%s without auth block: %w", ev.Name, errUnverified)
	}
	v, err := s.verifyRefresh(ctx, ev.Auth.RefreshToken, ev.Auth.MemberID, "")
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
	if err := store.SetApplicationToken(ctx, s.pool, s.cfg.Keyring, p.ID, ev.Auth.ApplicationToken); err != nil {
		return err
	}
	if ev.Name == "ONAPPUPDATE" {
		c, _ := s.b24Client(v)
		for _, name := range appEvents {
			if err := c.EventBind(ctx, name, s.eventsURL()); err != nil {
				s.log.WarnContext(ctx, "rebind after update failed", "portal_id", p.ID, "event", name, "error", err)
			}
		}
	}
	s.log.InfoContext(ctx, "application token stored", "portal_id", p.ID, "event", ev.Name)
	return nil
}
