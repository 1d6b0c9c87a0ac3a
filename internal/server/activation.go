package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/jackc/pgx/v5"

	"b24learn/internal/activation"
	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/manager"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/templates"
)

// handleActivation stores the admin's activation request (POST
// /app/activation, behind withSession and requireAdmin). The portal comes
// from the session only. A script sending the form with the X-Session header
// gets the form component back to put in place; a plain form post gets a
// whole page.
func (s *Server) handleActivation(w http.ResponseWriter, r *http.Request) {
	sess, _ := sessionFrom(r.Context())
	if err := r.ParseForm(); err != nil {
		s.error(w, r, apperr.New(apperr.EMALFORMED, msgBadRequest.in(sess.Lang)))
		return
	}
	in := activation.Contact{Name: r.PostFormValue("name"), Email: r.PostFormValue("email"), Phone: r.PostFormValue("phone")}
	v := templates.ActivationView{Lang: sess.Lang, Token: sessionToken(r), Name: in.Name, Email: in.Email, Phone: in.Phone}

	// Only a request that will be stored is worth a Bitrix24 read: Submit
	// counts after the validation and the limits.
	sub := activation.Submission{PortalID: sess.PortalID, B24UserID: sess.UserID, IP: clientIP(r), Contact: in,
		CountEmployees: func(ctx context.Context) *int { return s.employeesInScope(ctx, sess.PortalID) }}
	res, err := activation.Submit(r.Context(), s.pool, manager.DefaultLimits, s.now(), sub, s.enqueueLeadForward)
	status := http.StatusOK
	var fe activation.FieldErrors
	var rl *manager.RateLimitedError
	switch {
	case errors.As(err, &fe):
		status = codeStatus(apperr.EINVALID)
		v.Errors = contactErrors(sess.Lang, fe)
	case errors.As(err, &rl):
		status = codeStatus(apperr.ETOOMANY)
		setRetryAfter(w, rl)
		v.Notice = i18n.T(sess.Lang, "form.rate_limited", rl.Minutes())
	case err != nil:
		s.errorIn(w, r, sess.Lang, err)
		return
	default:
		s.log.Info("activation request stored", "portal_id", sess.PortalID, "request_id", res.RequestID, "updated", res.Updated, "unchanged", res.Unchanged)
		c, _ := activation.Validate(in) // valid: shows the normalised values
		v.Name, v.Email, v.Phone, v.Sent = c.Name, c.Email, c.Phone, true
	}
	// Without script the answer replaces the page inside the Bitrix24
	// iframe, so it needs the portal's frame rule like the app page.
	p, _ := sessionPortal(r.Context())
	setFrameHeaders(w, p)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	var comp templ.Component = templates.ActivationPage(v)
	if r.Header.Get(sessionHeader) != "" {
		comp = templates.ActivationForm(v)
	}
	if err := comp.Render(r.Context(), w); err != nil {
		s.log.Warn("render activation form", "error", err)
	}
}

// contactErrors puts the sentence for each field's code next to the field.
func contactErrors(lang i18n.Lang, fe activation.FieldErrors) map[string]string {
	out := make(map[string]string, len(fe))
	for field, code := range fe {
		out[field] = i18n.T(lang, "contact."+code)
	}
	return out
}

// enqueueLeadForward inserts the forwarding job in the request's transaction.
func (s *Server) enqueueLeadForward(ctx context.Context, tx pgx.Tx, portalID, requestID int64) error {
	_, err := s.river.InsertTx(ctx, tx, jobs.LeadForwardArgs{PortalID: portalID, RequestID: requestID}, nil)
	return err
}

// activationForm is the component the settings page embeds: the form
// prefilled with the portal's open request, or else with prefill (the
// admin's Bitrix24 profile where known), and the request's state.
func (s *Server) activationForm(ctx context.Context, sess Session, token, activationState string, prefill activation.Contact) (templ.Component, error) {
	v := templates.ActivationView{Lang: sess.Lang, Token: token, ReadOnly: !sess.Admin, Active: activationState == store.ActivationActive}
	req, err := activation.LatestRequest(ctx, s.pool, sess.PortalID)
	if err != nil {
		return nil, err
	}
	if req != nil && req.Open() {
		v.Open = true
		v.SentAt = req.UpdatedAt.UTC().Format("2006-01-02 15:04") + " UTC"
	}
	// The form and the contact details it shows are the admins' only.
	if sess.Admin {
		v.Name, v.Email, v.Phone = prefill.Name, prefill.Email, prefill.Phone
		if v.Open {
			v.Name, v.Email, v.Phone = req.Name, req.Email, req.Phone
		}
	}
	return templates.ActivationForm(v), nil
}

// clientIP is the client's address, as withClientIP resolved it; without
// that middleware it is the peer address.
func clientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	return peerIP(r)
}

type clientIPKey struct{}

// withClientIP resolves the client address once per request: behind the
// TRUSTED_PROXIES it comes from X-Forwarded-For, so per-address limits and
// the audit trail see the client, not the proxy.
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := resolveClientIP(r, s.cfg.TrustedProxies)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
	})
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

// resolveClientIP walks X-Forwarded-For from the right, where the nearest
// proxy wrote, skipping trusted proxies; the first address that is not one
// is the client. Anything left of it was written by the client and is not
// believed. A peer that is not a trusted proxy is itself the client, whatever
// header it sends.
func resolveClientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := peerIP(r)
	hop, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(hop, trusted) {
		return peer
	}
	var entries []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		entries = append(entries, strings.Split(h, ",")...)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseForwarded(strings.TrimSpace(entries[i]))
		if !ok {
			// A trusted hop handed over garbage: the hop is the last
			// address known to be real.
			return hop.String()
		}
		hop = a
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return hop.String() // every hop is a trusted proxy
}

func parseForwarded(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil { // some proxies add the port
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// employeesInScope counts the employees the saved selection covers, for the
// managers' summary; nil (shown as "not known yet") when nothing is selected
// or Bitrix24 does not answer in time.
func (s *Server) employeesInScope(ctx context.Context, portalID int64) *int {
	st, err := settings.Load(ctx, s.pool, nil, portalID)
	if err != nil || len(st.Departments.Selected) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := s.clients.Bitrix24(ctx, portalID)
	if err != nil {
		return nil
	}
	n, err := countInScope(ctx, c, st.Departments, scopeBytes)
	if err != nil {
		s.log.Warn("count employees in scope", "portal_id", portalID, "error", err)
		return nil
	}
	return &n
}

// scopeBytes bounds what countInScope keeps of the users while the org is
// read: the department lists of those who may be in scope. A real
// employee's list is an id or two (20 MB at the 500,000 users a listing may
// hold); a self-hosted portal's owner writes its answers, and thousands of
// ids for each user would fill the process that serves every portal.
const scopeBytes = 64 << 20

// errScopeTooLarge: the users' department lists hold more than countInScope's bound.
var errScopeTooLarge = errors.New("the Bitrix24 org's department lists hold more than any real portal's")

// scopeChunk is how many users syncer.Scope gets at once.
const scopeChunk = 10_000

// countInScope reads the org and counts the employees sel covers, keeping
// of each user only their id and departments, and only for users the scope
// rule may count (active employees with a department), at most maxKept
// bytes of them (scopeBytes).
func countInScope(ctx context.Context, c *bitrix24.Client, sel settings.Scope, maxKept int) (int, error) {
	type member struct {
		id    int64
		depts []int64
	}
	var ms []member
	kept := 0
	ds, err := c.ReadOrg(ctx, map[string]any{"ACTIVE": true}, bitrix24.OrgPages{
		Users: func(page []bitrix24.User) error {
			for _, u := range page {
				if !u.Active || u.IsExtranet() || (u.UserType != "" && u.UserType != "employee") {
					continue
				}
				ms = append(ms, member{u.ID, u.Departments})
				kept += 32 + 8*cap(u.Departments)
			}
			if kept > maxKept {
				return fmt.Errorf("%d users read: %w", len(ms), errScopeTooLarge)
			}
			return nil
		},
	})
	if err != nil {
		return 0, err
	}
	// Each user is counted on their own: the count of a chunk adds up.
	n := 0
	us := make([]bitrix24.User, 0, min(len(ms), scopeChunk))
	for len(ms) > 0 {
		k := min(len(ms), scopeChunk)
		us = us[:0]
		for _, m := range ms[:k] {
			us = append(us, bitrix24.User{ID: m.id, Active: true, UserType: "employee", Departments: m.depts})
		}
		_, e := syncer.Scope(ds, us, sel)
		n += e
		ms = ms[k:]
	}
	return n, nil
}
