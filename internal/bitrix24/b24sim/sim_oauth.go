package b24sim

// The OAuth server: tokens issued, refreshed and answered, on the OAuth host and through REST.

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// OAuthFault is a failure of the OAuth server's refresh, as a server in
// trouble fails: an answer of Status with Body as it is (an HTML error
// page, an empty body, a proxy's text: no source says what the OAuth
// server answers when it fails), a connection reset, or an answer that
// comes only after Delay.
type OAuthFault struct {
	Status int
	Body   string
	// Reset closes the connection with a TCP reset instead of answering.
	Reset bool
	// Delay holds the answer back (the fault's, or with no Status and no
	// Reset the real one); a client that gives up first gets none, and
	// the refresh token it sent stays unused.
	Delay time.Duration
}

// InjectOAuth queues f for the next refresh at any OAuth server, whatever
// the request. Each call queues one; a faulted refresh does not use up
// the refresh token sent.
func (s *Sim) InjectOAuth(f OAuthFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthFault = append(s.oauthFault, f)
}

// InjectOAuthFault makes the next refresh answer status with body as it is.
func (s *Sim) InjectOAuthFault(status int, body string) {
	s.InjectOAuth(OAuthFault{Status: status, Body: body})
}

// ClearOAuthFaults drops the faults not given yet: a client may send a
// refresh once more after a reset (Go's transport does so for a GET on a
// reused connection), so a test cannot always tell how many are used.
func (s *Sim) ClearOAuthFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauthFault = nil
}

// wait holds the answer back for f.Delay; false when the client left first.
func (f OAuthFault) wait(r *http.Request) bool {
	if f.Delay <= 0 {
		return true
	}
	t := time.NewTimer(f.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// write answers the fault; false when it has none to give (only a delay),
// and the real answer follows.
func (f OAuthFault) write(w http.ResponseWriter) bool {
	if f.Reset {
		reset(w)
		return true
	}
	if f.Status == 0 {
		return false
	}
	ct := "text/plain; charset=utf-8"
	switch b := strings.TrimSpace(f.Body); {
	case strings.HasPrefix(b, "<"):
		ct = "text/html; charset=utf-8"
	case strings.HasPrefix(b, "{"):
		ct = "application/json"
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
	return true
}

// reset drops the connection under w with a TCP reset (no lingering), as a
// server or proxy in trouble does.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // no connection of its own (HTTP/2): abort the stream
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Token is a token pair as the OAuth server issued it, with what it says
// about the pair. Its fields match the client's token type one to one, so a
// test converts it with Token(tok); the simulator shares no code
// with the client.
type Token struct {
	AccessToken    string
	RefreshToken   string
	Expires        time.Time
	MemberID       string
	ClientEndpoint string
	ServerEndpoint string
	Domain         string
	Scope          string
	Status         string
	UserID         int64
}

// issue creates a token chain for userID (s.mu held).
func (s *Sim) issue(p *Portal, userID int64) Token {
	now := s.now()
	at, rt := newHex(35), newHex(35)
	s.access[at] = &accessToken{portal: p, userID: userID, expires: now.Add(s.opts.AccessTTL), gen: p.gen}
	s.refresh[rt] = &refreshToken{portal: p, userID: userID, access: at, issued: now, gen: p.gen}
	return Token{
		AccessToken: at, RefreshToken: rt, Expires: now.Add(s.opts.AccessTTL).Truncate(time.Second),
		MemberID: p.memberID, ClientEndpoint: p.restURL(), ServerEndpoint: s.serverBase(p) + "/rest/",
		Domain: p.domain, Scope: s.opts.Scope, Status: p.status, UserID: userID,
	}
}

func tokenJSON(t Token, ttl time.Duration) map[string]any {
	return map[string]any{
		"access_token": t.AccessToken, "refresh_token": t.RefreshToken,
		"expires": t.Expires.Unix(), "expires_in": int(ttl.Seconds()),
		"scope": t.Scope, "domain": t.Domain, "server_endpoint": t.ServerEndpoint,
		"status": t.Status, "client_endpoint": t.ClientEndpoint, "member_id": t.MemberID,
		"user_id": t.UserID,
	}
}

// serveOAuth is /oauth/token/ of region's server: grant_type=refresh_token
// only (docs/bitrix24-api.md, "Regional OAuth servers").
func (s *Sim) serveOAuth(w http.ResponseWriter, r *http.Request, region string) {
	_ = r.ParseForm()
	q := r.Form
	s.mu.Lock()
	s.oauthCalls[region]++
	clientID, clientSecret := s.credentials(region)
	var fault *OAuthFault
	if len(s.oauthFault) > 0 {
		fault = &s.oauthFault[0]
		s.oauthFault = s.oauthFault[1:]
	}
	s.mu.Unlock()
	if fault != nil && (!fault.wait(r) || fault.write(w)) {
		return
	}
	if q.Get("client_id") != clientID || q.Get("client_secret") != clientSecret {
		s.oauthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client")
		return
	}
	if q.Get("grant_type") != "refresh_token" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "Unsupported grant type"})
		return
	}
	s.mu.Lock()
	rt := s.refresh[q.Get("refresh_token")]
	now := s.now()
	switch {
	case rt == nil || rt.used || now.After(rt.issued.Add(s.unsettled().refreshLifetime(s.opts.RefreshTTL))) || rt.portal.region != region:
		// Another region's server does not know the token at all. The
		// lifetime is read now, so SetUnsettled reaches tokens issued before.
		s.mu.Unlock()
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid grant")
		return
	case rt.portal.lapse == LapseUnpaid:
		s.mu.Unlock()
		s.oauthError(w, http.StatusBadRequest, "PAYMENT_REQUIRED", "Payment required")
		return
	case rt.portal.lapse == LapseRefreshExpired:
		s.mu.Unlock()
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid grant")
		return
	case !rt.portal.installed() || rt.gen != rt.portal.gen:
		// Which error a refresh gets after uninstall is not documented;
		// the portal's AfterUninstall picks one.
		gone := rt.portal.gone
		s.mu.Unlock()
		switch gone {
		case GonePaymentRequired:
			s.oauthError(w, http.StatusBadRequest, "PAYMENT_REQUIRED", "Payment required")
			return
		case GoneInvalidClient:
			s.oauthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client")
			return
		}
		s.oauthError(w, http.StatusBadRequest, "invalid_grant", "Application not installed")
		return
	}
	// A refresh consumes the refresh token and the access token issued with it [TRAIN].
	rt.used = true
	if at := s.access[rt.access]; at != nil {
		at.revoked = true
	}
	tok := s.issue(rt.portal, rt.userID)
	if e := rt.portal.oauthEndpoint; e != "" {
		tok.ClientEndpoint = e
	}
	s.refreshes++
	ttl, server := s.opts.AccessTTL, s.serverBase(rt.portal)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.unsettled().refreshAnswer(tokenJSON(tok, ttl), server))
}

// serveOAuthREST is the OAuth server's own REST (server_endpoint): app.info.
func (s *Sim) serveOAuthREST(w http.ResponseWriter, r *http.Request, region, method string) {
	method = strings.TrimSuffix(strings.ToLower(method), ".json")
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("INVALID_REQUEST", err.Error()))
		return
	}
	s.mu.Lock()
	at, ok := s.access[authOf(r, params)]
	if !ok || at.revoked || at.gen != at.portal.gen || !at.portal.installed() || at.portal.region != region {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, s.unsettled().errBody("invalid_token", "The access token provided is invalid"))
		return
	}
	if s.now().After(at.expires) {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, errBody("expired_token", "The access token provided has expired"))
		return
	}
	p := at.portal
	clientID, _ := s.credentials(region)
	res := map[string]any{
		"client_id": clientID, "member_id": p.memberID, "user_id": at.userID,
		"install": map[string]any{"installed": p.state == stateInstalled, "uri": p.url + "/", "domain": p.domain,
			"client_endpoint": p.restURL(), "version": 1, "status": p.status},
	}
	s.mu.Unlock()
	if method != "app.info" {
		writeJSON(w, http.StatusNotFound, errBody("ERROR_METHOD_NOT_FOUND", "Method not found!"))
		return
	}
	writeJSON(w, http.StatusOK, envelope(s.unsettled().oauthAppInfo(res), nil, nil))
}
