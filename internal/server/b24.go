package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/apperr"
	"b24learn/internal/bitrix24"
	"b24learn/internal/i18n"
	"b24learn/internal/netguard"
	"b24learn/internal/store"
	"b24learn/templates"
)

// The app's own events, bound at install and again after an update (an
// update drops the bindings: docs/bitrix24-api.md, "Events"). ONAPPINSTALL
// brings the application_token on portals whose frame POST lacks
// APPLICATION_TOKEN.
var appEvents = []string{"ONAPPINSTALL", "ONAPPUNINSTALL", "ONAPPUPDATE"}

// errUnverified means the OAuth server did not vouch for the request: unknown
// or spent tokens, or a member_id/DOMAIN other than the one the tokens belong to.
var errUnverified = errors.New("request not verified by the Bitrix24 OAuth server")

// errOAuthDown means the OAuth server could not vouch for the request
// either way: it failed (an error page, an empty body, a load limit), was
// not reached or did not answer in time. The request is not verified, but
// asking again later may verify it.
var errOAuthDown = errors.New("the Bitrix24 OAuth server could not be reached")

// verified is what the OAuth server confirmed about a frame POST or event.
type verified struct {
	token  bitrix24.Token  // a fresh pair of the user who opened the frame
	domain string          // the portal host, as client_endpoint names it
	oauth  *bitrix24.OAuth // the server that confirmed it, the only one its tokens work at
}

// oauthFor is the OAuth server a request names in SERVER_ENDPOINT or
// auth[server_endpoint]: Bitrix24 has one per region, and a portal's tokens
// work only at its own (docs/bitrix24-api.md, "Regional OAuth servers").
// A server not on B24_OAUTH_URL gets errUnverified, before any call: the
// client secret goes only to the operator's servers.
func (s *Server) oauthFor(serverEndpoint string) (*bitrix24.OAuth, error) {
	o, err := s.oauthServers.For(serverEndpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnverified, err)
	}
	return o, nil
}

// verifyRefresh proves that refreshToken belongs to memberID (and, when given,
// to domain) by exchanging it at the OAuth server the request named (checked
// against the allow-list) with the app's client secret: only the real OAuth
// server can answer, and its answer names the portal. Nothing the request
// says about itself is taken on trust. A refusal (an OAuth error code) is
// errUnverified; an answer that refuses nothing, or none within
// s.verifyTimeout, is errOAuthDown, and never a verification.
func (s *Server) verifyRefresh(ctx context.Context, oauth *bitrix24.OAuth, refreshToken, memberID, domain string) (verified, error) {
	if refreshToken == "" || memberID == "" {
		return verified{}, fmt.Errorf("no refresh token or member_id: %w", errUnverified)
	}
	ctx, cancel := context.WithTimeout(ctx, s.verifyTimeout)
	defer cancel()
	tok, err := oauth.Refresh(ctx, refreshToken)
	var apiErr *bitrix24.APIError
	if errors.As(err, &apiErr) && !bitrix24.OAuthUnavailable(err) {
		return verified{}, fmt.Errorf("oauth refused the refresh token (%s): %w", apiErr.Code, errUnverified)
	}
	if err != nil {
		// No refusal: an answer that refuses nothing, or none in time.
		return verified{}, fmt.Errorf("verify with oauth server: %w: %w", errOAuthDown, err)
	}
	host, ok := bitrix24.EndpointHost(tok.ClientEndpoint)
	switch {
	case !ok:
		return verified{}, fmt.Errorf("oauth answer without a client_endpoint naming a host: %w", errUnverified)
	case tok.MemberID != memberID:
		return verified{}, fmt.Errorf("member_id does not match the oauth answer: %w", errUnverified)
	case domain != "" && !strings.EqualFold(domain, host):
		return verified{}, fmt.Errorf("DOMAIN does not match the oauth answer: %w", errUnverified)
	}
	// The pair belongs to the server that issued it, whatever its answer
	// calls itself: that server is stored with the portal.
	tok.ServerEndpoint = bitrix24.ServerEndpoint(oauth.URL)
	return verified{token: tok, domain: host, oauth: oauth}, nil
}

// b24Client is a REST client for one request's verified tokens.
func (s *Server) b24Client(v verified) (*bitrix24.Client, *bitrix24.MemoryTokenSource) {
	ts := bitrix24.NewMemoryTokenSource(v.oauth, v.token)
	c := bitrix24.New(bitrix24.Config{Endpoint: v.token.ClientEndpoint, Tokens: ts, HTTP: s.b24HTTP,
		Logger: s.log, MaxRetries: 3})
	return c, ts
}

// eventsURL is where Bitrix24 delivers the app's events.
func (s *Server) eventsURL() string {
	return strings.TrimRight(s.cfg.PublicURL.String(), "/") + "/b24/events"
}

// errNotConfirmed answers a frame POST that Bitrix24's OAuth server did not
// prove (or that names a server not on the list).
func errNotConfirmed(lang i18n.Lang) error {
	return apperr.New(apperr.EUNAUTHORIZED, msgNotConfirmed.in(lang))
}

// errB24Down answers a request the OAuth server could not verify (errOAuthDown):
// 503, to be sent again in a minute, as its text says.
func errB24Down(lang i18n.Lang) error {
	return &retryLater{err: apperr.New(apperr.EUNAVAILABLE, msgB24Down.in(lang)), wait: time.Minute}
}

// errCredentialsRefused answers a request the OAuth server could not verify
// because it refuses this app's own client id or secret
// (bitrix24.ErrClientRefused): every portal's requests fail alike until the
// operator fixes them, so 503, asked again in a few minutes.
func errCredentialsRefused(lang i18n.Lang) error {
	return &retryLater{err: apperr.New(apperr.EUNAVAILABLE, msgAppCredentialsRefused.in(lang)), wait: 5 * time.Minute}
}

// logCredentialsRefused tells the operator what to fix; the error names the
// settings, never their values.
func (s *Server) logCredentialsRefused(r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "the Bitrix24 OAuth server refuses this app's client id or secret: check B24_CLIENT_ID and B24_CLIENT_SECRET",
		"error", err, "path", r.URL.Path, "request_id", requestID(r))
}

// frameLang is the language of a frame POST's answers: i18n.FromBitrix24
// of its LANG, from the form, else from the query Bitrix24 adds it to (a
// body that did not parse has none). Until the OAuth server confirms the
// POST, LANG is only the sender's word: it picks the language of an error
// text and nothing else, and counts only as a language code as Bitrix24
// writes one (bitrix24.ValidLang); English otherwise.
func frameLang(r *http.Request, req bitrix24.AppRequest) i18n.Lang {
	code := req.Lang
	if code == "" {
		code = strings.TrimSpace(r.URL.Query().Get("LANG"))
	}
	if !bitrix24.ValidLang(code) {
		return i18n.EN
	}
	return i18n.FromBitrix24(code)
}

// frameRequest parses and verifies an iframe POST; on failure it has written
// the response, in the POST's language, and returns ok false.
func (s *Server) frameRequest(w http.ResponseWriter, r *http.Request) (bitrix24.AppRequest, verified, bool) {
	req, err := bitrix24.ParseAppRequest(r)
	lang := frameLang(r, req)
	if err != nil {
		s.refuseMalformed()
		s.log.InfoContext(r.Context(), "bad frame request", "error", err, "request_id", requestID(r))
		s.errorIn(w, r, lang, apperr.New(apperr.EMALFORMED, msgOutsideB24.in(lang)))
		return req, verified{}, false
	}
	oauth, err := s.oauthFor(req.ServerEndpoint)
	if err != nil {
		// Refused before the buckets: it costs no OAuth call.
		s.metrics.B24Refused.WithLabelValues(refusedOAuthServer).Inc()
		s.log.WarnContext(r.Context(), "frame request names an OAuth server not on the list", "error", err,
			"path", r.URL.Path, "request_id", requestID(r))
		s.errorIn(w, r, lang, errNotConfirmed(lang))
		return req, verified{}, false
	}
	if !s.admitFrame(w, r, req.MemberID, lang) {
		return req, verified{}, false
	}
	v, err := s.verifyRefresh(r.Context(), oauth, req.RefreshID, req.MemberID, req.Domain)
	if errors.Is(err, errUnverified) {
		s.log.WarnContext(r.Context(), "unverified frame request", "error", err, "path", r.URL.Path, "request_id", requestID(r))
		s.errorIn(w, r, lang, errNotConfirmed(lang))
		return req, verified{}, false
	}
	if errors.Is(err, bitrix24.ErrClientRefused) {
		s.logCredentialsRefused(r, err)
		s.errorIn(w, r, lang, errCredentialsRefused(lang))
		return req, verified{}, false
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "oauth server unreachable", "error", err, "request_id", requestID(r))
		s.errorIn(w, r, lang, errB24Down(lang))
		return req, verified{}, false
	}
	return req, v, true
}

// frameOpen is a verified iframe POST with a client on its tokens and the
// profile of the user who opened the frame.
type frameOpen struct {
	req  bitrix24.AppRequest
	lang i18n.Lang // of the page and of its error answers
	v    verified
	c    *bitrix24.Client
	ts   *bitrix24.MemoryTokenSource
	prof bitrix24.Profile
}

// openFrame is what the installer and the app page do first: verify the
// frame POST, then, within the user's and the portal's bucket of such calls
// (frame_calls.go), ask Bitrix24 who opened it. On failure it has written
// the response (what names the page in the log) and returns ok false.
func (s *Server) openFrame(w http.ResponseWriter, r *http.Request, what string) (frameOpen, bool) {
	req, v, ok := s.frameRequest(w, r)
	if !ok || !s.admitFrameCalls(w, r, req, v) {
		return frameOpen{}, false
	}
	lang := frameLang(r, req)
	c, ts := s.b24Client(v)
	prof, err := c.Profile(r.Context())
	if err != nil {
		s.b24Error(w, r, lang, fmt.Errorf("%s: profile: %w", what, err))
		return frameOpen{}, false
	}
	// A user of the portal is here: this address gets the portal's users'
	// bucket from now on, which strangers naming the portal cannot spend.
	s.gate.remember(s.now(), v.token.MemberID, clientIP(r), prof.ID)
	return frameOpen{req: req, lang: lang, v: v, c: c, ts: ts, prof: prof}, true
}

// userToken is the opening user's access token as the frame's client holds
// it now (it may have refreshed).
func (f frameOpen) userToken(ctx context.Context) string {
	if tok, err := f.ts.Token(ctx); err == nil {
		return tok.AccessToken
	}
	return f.v.token.AccessToken
}

// installPortal binds the app's events and stores the portal. It runs for the
// installer and for an admin opening an app that has no installed portal row.
func (s *Server) installPortal(ctx context.Context, req bitrix24.AppRequest, v verified, c *bitrix24.Client, ts *bitrix24.MemoryTokenSource) (store.Portal, error) {
	for _, ev := range appEvents {
		if err := c.EventBind(ctx, ev, s.eventsURL()); err != nil {
			return store.Portal{}, fmt.Errorf("bind %s: %w", ev, err)
		}
	}
	// The client may have refreshed; store the pair it holds now.
	tok, err := ts.Token(ctx)
	if err != nil {
		return store.Portal{}, fmt.Errorf("current token: %w", err)
	}
	lang := req.Lang
	if lang == "" {
		lang = "en"
	}
	p, err := store.UpsertPortal(ctx, s.pool, s.cfg.Keyring, store.PortalInstall{
		PortalInfo: store.PortalInfo{MemberID: tok.MemberID, Domain: v.domain, ClientEndpoint: tok.ClientEndpoint,
			ServerEndpoint: bitrix24.ServerEndpoint(v.oauth.URL), Scope: tok.Scope, Lang: lang},
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenExpiresAt: tok.Expires,
		ApplicationToken: req.ApplicationToken,
	})
	if err != nil {
		return store.Portal{}, err
	}
	s.log.InfoContext(ctx, "portal installed", "portal_id", p.ID, "domain", p.Domain)
	return p, nil
}

// handleInstall is the installer page (POST /b24/install): verify, check that
// an admin is installing, bind events, store the portal, then let BX24.js
// finish the install, after which Bitrix24 opens the app page.
func (s *Server) handleInstall(w http.ResponseWriter, r *http.Request) {
	f, ok := s.openFrame(w, r, "install")
	if !ok {
		return
	}
	ctx, req, prof := r.Context(), f.req, f.prof
	if !prof.Admin {
		s.errorIn(w, r, f.lang, apperr.New(apperr.EFORBIDDEN, msgInstallAdminOnly.in(f.lang)))
		return
	}
	p, err := s.installPortal(ctx, req, f.v, f.c, f.ts)
	if err == nil {
		err = recordAdminCheck(ctx, s.pool, p.ID, prof.ID, true, s.now())
	}
	if err != nil {
		s.b24Error(w, r, f.lang, fmt.Errorf("install: %w", err))
		return
	}
	s.admins.set(p, prof.ID, true)
	sess, tok, err := s.newSession(p, prof.ID, true, req.Lang, f.userToken(ctx))
	if err != nil {
		s.errorIn(w, r, f.lang, err)
		return
	}
	setFrameHeaders(w, p)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.Install(sess.Lang, p.Domain, p.Origin(), req.AppSID, tok).Render(ctx, w); err != nil {
		s.log.ErrorContext(ctx, "render installer", "error", err)
	}
}

// handleApp is the app page (POST /b24/app), opened on every visit: verify,
// find out who opened it, mint a session and render the page.
func (s *Server) handleApp(w http.ResponseWriter, r *http.Request) {
	f, ok := s.openFrame(w, r, "app")
	if !ok {
		return
	}
	ctx, req, v, prof := r.Context(), f.req, f.v, f.prof
	p, err := store.GetPortalByMemberID(ctx, s.pool, v.token.MemberID)
	installed := false // by this open, events included
	stored := false    // this open stored its tokens as the portal's
	switch {
	case (errors.Is(err, store.ErrNotFound) || (err == nil && !p.Installed())) && prof.Admin:
		// The installer never reached us (or an uninstall event came in
		// between): an admin's verified open is as good as an install.
		p, err = s.installPortal(ctx, req, v, f.c, f.ts)
		installed, stored = true, true
	case errors.Is(err, store.ErrNotFound) || (err == nil && !p.Installed()):
		s.errorIn(w, r, f.lang, apperr.New(apperr.ECONFLICT, msgNotInstalled.in(f.lang)))
		return
	case err == nil && prof.Admin && (p.NeedsReconnect || p.TokenExpiresAt.IsZero()):
		// Background sync lost its tokens; an admin's fresh pair restores it.
		var tok bitrix24.Token
		if tok, err = f.ts.Token(ctx); err == nil {
			err = store.SetPortalTokens(ctx, s.pool, s.cfg.Keyring, p.ID, tok.AccessToken, tok.RefreshToken, tok.Expires)
			stored = err == nil
		}
		if err == nil {
			p, err = store.GetPortal(ctx, s.pool, p.ID)
		}
	}
	// The OAuth server goes with the portal's tokens, which work only at
	// the server that issued them: it changes only when this open stored
	// its own. Any user's frame POST names a server, and one that vouched
	// for an employee's token says nothing of where the stored ones work.
	server := ""
	if stored {
		server = v.token.ServerEndpoint
	}
	if err == nil && (p.Domain != v.domain || p.ClientEndpoint != v.token.ClientEndpoint || (server != "" && p.ServerEndpoint != server)) {
		// Renamed portal: the frame headers must name the new origin.
		err = store.SetPortalAddress(ctx, s.pool, p.ID, v.domain, v.token.ClientEndpoint, server)
		if err == nil {
			p, err = store.GetPortal(ctx, s.pool, p.ID)
		}
	}
	if err == nil && prof.Admin && !installed {
		s.keepEvents(ctx, req, p, f.c)
	}
	if err == nil {
		// Bitrix24 just answered whether this user is an admin; older
		// sessions of the user follow that answer too.
		err = recordAdminCheck(ctx, s.pool, p.ID, prof.ID, prof.Admin, s.now())
	}
	if err != nil {
		s.b24Error(w, r, f.lang, fmt.Errorf("app: %w", err))
		return
	}
	s.admins.set(p, prof.ID, prof.Admin)
	sess, tok, err := s.newSession(p, prof.ID, prof.Admin, req.Lang, f.userToken(ctx))
	if err != nil {
		s.errorIn(w, r, f.lang, err)
		return
	}
	setFrameHeaders(w, p)
	s.renderApp(w, r, p, sess, tok, prof)
}

// keepEvents binds the app's events again when Bitrix24 no longer lists
// them. An app update drops the bindings, and the ONAPPUPDATE after which the
// app binds them again may never come (docs/bitrix24-api.md, "Events"):
// without this the portal's uninstall would never reach the app. The update
// also changed the application token, so the admin's frame POST's one
// replaces the stored one; an older portal's POST has none, and "" leaves an
// uninstall to Bitrix24's answer (checkApplicationToken): a genuine one is
// then taken, and a forged one while the tokens are refused is asked again
// before its erase (uninstall.Recheck). A failure here does not stop the page: the next admin's open tries again.
func (s *Server) keepEvents(ctx context.Context, req bitrix24.AppRequest, p store.Portal, c *bitrix24.Client) {
	hs, err := c.EventGet(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "event bindings not checked", "portal_id", p.ID, "error", err)
		return
	}
	var missing []string
	for _, ev := range appEvents {
		if !slices.ContainsFunc(hs, func(h bitrix24.EventHandler) bool {
			return strings.EqualFold(h.Event, ev) && h.Handler == s.eventsURL()
		}) {
			missing = append(missing, ev)
		}
	}
	if len(missing) == 0 {
		return
	}
	for _, ev := range missing {
		if err := c.EventBind(ctx, ev, s.eventsURL()); err != nil {
			s.log.WarnContext(ctx, "event not bound again", "portal_id", p.ID, "event", ev, "error", err)
			return
		}
	}
	if err := store.SetApplicationToken(ctx, s.pool, s.cfg.Keyring, p.ID, req.ApplicationToken); err != nil {
		s.log.WarnContext(ctx, "application token not replaced", "portal_id", p.ID, "error", err)
		return
	}
	s.log.InfoContext(ctx, "events bound again: Bitrix24 had dropped them", "portal_id", p.ID, "events", missing,
		"application_token", req.ApplicationToken != "")
}

// b24Error answers a failed Bitrix24 call, in lang: a refused token is the
// user's to fix by reopening the app, anything else is ours.
func (s *Server) b24Error(w http.ResponseWriter, r *http.Request, lang i18n.Lang, err error) {
	if bitrix24.IsPermanentAuthError(err) || errors.Is(err, bitrix24.ErrExpiredToken) || errors.Is(err, bitrix24.ErrInvalidToken) {
		s.log.WarnContext(r.Context(), "bitrix24 refused the request", "error", err, "request_id", requestID(r))
		s.errorIn(w, r, lang, apperr.New(apperr.EUNAUTHORIZED, msgB24Refused.in(lang)))
		return
	}
	if errors.Is(err, netguard.ErrForbidden) || errors.Is(err, netguard.ErrInsecure) {
		// The portal's REST endpoint (or its redirect) is not a public https
		// address: refused by the address rule, nothing was sent there.
		s.log.WarnContext(r.Context(), "portal endpoint refused by the address rule", "error", err, "request_id", requestID(r))
		s.errorIn(w, r, lang, apperr.New(apperr.EUPSTREAM, msgB24BadAddress.in(lang)))
		return
	}
	var apiErr *bitrix24.APIError
	if errors.As(err, &apiErr) || errors.Is(err, context.DeadlineExceeded) {
		s.log.ErrorContext(r.Context(), "bitrix24 call failed", "error", err, "request_id", requestID(r))
		s.errorIn(w, r, lang, apperr.New(apperr.EUPSTREAM, msgB24BadAnswer.in(lang)))
		return
	}
	s.errorIn(w, r, lang, err)
}

// setFrameHeaders lets the portal, and only the portal, frame the page
// (docs/bitrix24-api.md, "The page in the iframe"): frame-ancestors names the
// portal's origin from its client_endpoint, and no X-Frame-Options is sent.
// Scripts come from this server and Bitrix24's library only, never inline:
// text a portal's users wrote (names, department titles) is on these pages.
func setFrameHeaders(w http.ResponseWriter, p store.Portal) {
	ancestors := []string{"'self'", p.Origin()}
	if host, _ := bitrix24.EndpointHost(p.Origin() + "/"); host != p.Domain {
		// DOMAIN and client_endpoint disagree only after a rename; allow both.
		ancestors = append(ancestors, "https://"+p.Domain)
	}
	h := w.Header()
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", "frame-ancestors "+strings.Join(ancestors, " ")+"; script-src 'self' "+bx24Origin+"; base-uri 'self'; object-src 'none'")
	h.Set("Cache-Control", "no-store")
}

// txFunc runs f in one transaction.
func (s *Server) txFunc(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, f)
}
