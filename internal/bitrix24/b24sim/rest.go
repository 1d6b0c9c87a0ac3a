package b24sim

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// restErr is a REST error answer.
type restErr struct {
	status int
	code   string
	desc   string
}

// restOK is a REST success answer.
type restOK struct {
	result      any
	total, next *int
}

func intp(n int) *int { return &n }

// serveREST handles /rest/<method> and the inbound webhook /rest/<user>/<code>/<method>.
func (s *Sim) serveREST(w http.ResponseWriter, r *http.Request, p *Portal, path string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	method := strings.TrimSuffix(strings.ToLower(parts[len(parts)-1]), ".json")
	webhook := len(parts) == 3
	if len(parts) != 1 && !webhook {
		writeJSON(w, http.StatusNotFound, errBody("ERROR_METHOD_NOT_FOUND", "Method not found!"))
		return
	}
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("INVALID_REQUEST", err.Error()))
		return
	}

	s.mu.Lock()
	p.requests[method]++
	latency := p.latency
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}

	s.mu.Lock()
	if e := p.admit(method); e != nil {
		s.mu.Unlock()
		s.writeRestErr(w, e)
		return
	}
	var userID int64
	if webhook {
		if p.webhook == "" || parts[1] != p.webhook {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, errBody("INVALID_CREDENTIALS", "Invalid request credentials"))
			return
		}
		userID, _ = strconv.ParseInt(parts[0], 10, 64)
	} else {
		var e *restErr
		userID, e = s.authenticate(p, method, authOf(r, params))
		if e != nil {
			s.mu.Unlock()
			s.writeRestErr(w, e)
			return
		}
	}
	var ok *restOK
	var e *restErr
	tb := s.unsettled().timeBlock(timeBlock(p.zone())) // batch itself has no operating time
	if method == "batch" {
		ok, e = s.batch(p, userID, webhook, params)
	} else {
		ok, e = s.execTimed(p, userID, webhook, method, params)
		tb = s.methodTime(p, method)
	}
	s.mu.Unlock()
	if e != nil {
		s.writeRestErr(w, e)
		return
	}
	env := envelope(ok.result, ok.total, ok.next)
	env["time"] = tb
	writeJSON(w, http.StatusOK, env)
}

// admit applies injected faults and the leaky bucket (s.mu held).
func (p *Portal) admit(method string) *restErr {
	for i := range p.faults {
		f := p.faults[i]
		if f.Method == "" || strings.EqualFold(f.Method, method) {
			p.faults[i].Count--
			if p.faults[i].Count <= 0 {
				p.faults = slices.Delete(p.faults, i, i+1)
			}
			return &restErr{f.Status, f.Code, f.Description}
		}
	}
	if p.rate <= 0 {
		return nil
	}
	now := time.Now()
	if !p.last.IsZero() {
		p.level = max(0, p.level-now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	if p.level+1 > p.burst {
		p.throttle++
		if p.countRefused {
			p.level++
		}
		return &restErr{http.StatusServiceUnavailable, "QUERY_LIMIT_EXCEEDED", "Too many requests"}
	}
	p.level++
	return nil
}

// authenticate checks an access token against the portal (s.mu held).
func (s *Sim) authenticate(p *Portal, method, token string) (int64, *restErr) {
	if token == "" {
		return 0, &restErr{http.StatusUnauthorized, "NO_AUTH_FOUND", "Wrong authorization data"}
	}
	at, ok := s.access[token]
	switch {
	case !ok || at.portal != p:
		return 0, &restErr{http.StatusUnauthorized, "invalid_token", "The access token provided is invalid"}
	case at.gen != p.gen || !p.installed():
		return p.goneAnswer(at, method)
	case at.revoked:
		return 0, &restErr{http.StatusUnauthorized, "invalid_token", "The access token provided is invalid"}
	case !s.now().Before(at.expires) || p.lapse != LapseNone:
		return 0, &restErr{http.StatusUnauthorized, "expired_token", "The access token provided has expired"}
	case p.access != nil && !p.access[at.userID]:
		// The docs' table says 403, the auth path's code 401
		// (Unsettled.ScopeErrors403 picks).
		return 0, &restErr{http.StatusUnauthorized, "user_access_error", "The user does not have access to the application"}
	}
	return at.userID, nil
}

// goneAnswer refuses a token of an uninstalled installation as the portal's
// AfterUninstall says (s.mu held). GoneNotInstalled lets app.info through so
// that it can report INSTALLED false.
func (p *Portal) goneAnswer(at *accessToken, method string) (int64, *restErr) {
	switch p.gone {
	case GoneInvalidToken, GonePaymentRequired, GoneInvalidClient:
		return 0, &restErr{http.StatusUnauthorized, "invalid_token", "The access token provided is invalid"}
	case GoneExpiredToken:
		return 0, &restErr{http.StatusUnauthorized, "expired_token", "The access token provided has expired"}
	case GonePortalNotFound:
		return 0, &restErr{http.StatusNotFound, "NOT_FOUND", "Portal not found"}
	case GoneNotInstalled:
		if method == "app.info" && !at.revoked && !p.installed() {
			return at.userID, nil
		}
	}
	return 0, &restErr{http.StatusUnauthorized, "APPLICATION_NOT_FOUND", "Application not found"}
}

// exec runs one method (s.mu held).
func (s *Sim) exec(p *Portal, userID int64, webhook bool, method string, params map[string]any) (*restOK, *restErr) {
	p.commands[method]++
	if webhook && method != "crm.lead.add" && method != "profile" {
		return nil, &restErr{http.StatusUnauthorized, "insufficient_scope", "The request requires higher privileges than provided by the webhook token"}
	}
	switch method {
	case "profile":
		u := p.users[userID]
		if u == nil {
			return nil, &restErr{http.StatusUnauthorized, "authorization_error", "Unable to authorize user"}
		}
		return &restOK{result: map[string]any{"ID": strconv.FormatInt(u.ID, 10), "ADMIN": u.Admin, "NAME": u.Name,
			"LAST_NAME": u.LastName, "PERSONAL_GENDER": "", "TIME_ZONE": ""}}, nil
	case "user.admin":
		u := p.users[userID]
		return &restOK{result: u != nil && u.Admin}, nil
	case "app.info":
		return &restOK{result: map[string]any{"ID": 5, "CODE": s.opts.AppCode, "VERSION": p.version, "STATUS": p.status,
			"INSTALLED": p.state == stateInstalled, "PAYMENT_EXPIRED": "N", "DAYS": nil, "LANGUAGE_ID": p.lang,
			"LICENSE": p.lang + "_ent250", "LICENSE_TYPE": "ent250", "LICENSE_FAMILY": "ent"}}, nil
	case "department.get":
		return p.departmentGet(params)
	case "user.get":
		return p.userGet(userID, params, s.userScope(p))
	case "user.search":
		return p.userSearch(userID, params, s.userScope(p), s.opts.InvitedFilter)
	case "user.userfield.list":
		// user.userfield.* need their own scope (docs/bitrix24-api.md, "Custom user fields").
		if !hasScope(s.opts.Scope, "user.userfield") {
			return nil, &restErr{http.StatusUnauthorized, "insufficient_scope", "The request requires higher privileges than provided by the access token"}
		}
		return p.userFieldList(params)
	case "event.bind":
		return p.eventBind(userID, params)
	case "event.unbind":
		ev, h := strings.ToUpper(str(params["event"])), str(params["handler"])
		n := 0
		p.bindings = slices.DeleteFunc(p.bindings, func(b binding) bool {
			del := b.event == ev && (h == "" || b.handler == h)
			if del {
				n++
			}
			return del
		})
		return &restOK{result: map[string]any{"count": n}}, nil
	case "event.get":
		rows := []any{}
		for _, b := range p.bindings {
			rows = append(rows, map[string]any{"event": b.event, "handler": b.handler, "auth_type": "0", "offline": 0})
		}
		return &restOK{result: rows}, nil
	case "crm.lead.add":
		if !webhook {
			return nil, &restErr{http.StatusUnauthorized, "insufficient_scope", "The request requires higher privileges than provided by the access token"}
		}
		fields, _ := params["fields"].(map[string]any)
		if len(fields) == 0 {
			return nil, &restErr{http.StatusBadRequest, "ERROR_CORE", "Fields are empty"}
		}
		p.leads = append(p.leads, Lead{Fields: fields, At: time.Now()})
		return &restOK{result: len(p.leads)}, nil
	case "batch":
		return nil, &restErr{http.StatusMethodNotAllowed, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"}
	}
	return nil, &restErr{http.StatusNotFound, "ERROR_METHOD_NOT_FOUND", "Method not found!"}
}

// userScope is what the app's scopes let the user listings send.
func (s *Sim) userScope(p *Portal) userScope {
	return userScope{uf: hasScope(s.opts.Scope, "user.userfield"), full: hasScope(s.opts.Scope, "user"), unsettled: s.unsettled(),
		loc: p.zone()}
}

// zone is the portal's time zone, UTC unless PortalOptions.TimeZone is set.
func (p *Portal) zone() *time.Location {
	if p.loc == nil {
		return time.UTC
	}
	return p.loc
}

// bound reports whether handler h is bound to event ev (s.mu held).
func (p *Portal) bound(ev, h string) bool {
	for _, b := range p.bindings {
		if b.event == ev && b.handler == h {
			return true
		}
	}
	return false
}

func (p *Portal) eventBind(userID int64, params map[string]any) (*restOK, *restErr) {
	ev, h := strings.ToUpper(str(params["event"])), str(params["handler"])
	if ev == "" || h == "" {
		return nil, &restErr{http.StatusBadRequest, "ERROR_ARGUMENT", "Event and handler are required"}
	}
	if u, err := url.Parse(h); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, &restErr{http.StatusBadRequest, "ERROR_ARGUMENT", "Wrong handler URL"}
	}
	if u := p.users[userID]; u == nil || !u.Admin {
		return nil, &restErr{http.StatusForbidden, "ACCESS_DENIED", "Access denied! Admin permissions required"}
	}
	if p.bound(ev, h) {
		switch p.sim.unsettled().Rebind {
		case RebindOtherError:
			return nil, &restErr{http.StatusBadRequest, "ERROR_EVENT_HANDLER_EXISTS", "This event handler is registered already"}
		case RebindAccepted:
			return &restOK{result: true}, nil
		case RebindBinded:
			// The text is from b24phpsdk#446; the code is a guess.
			return nil, &restErr{http.StatusBadRequest, "ERROR_CORE", "Handler already binded"}
		}
	}
	p.nextBind++
	p.bindings = append(p.bindings, binding{id: p.nextBind, event: ev, handler: h})
	return &restOK{result: true}, nil
}

// writeRestErr writes a refused REST call as the switches say.
func (s *Sim) writeRestErr(w http.ResponseWriter, e *restErr) {
	u := s.unsettled()
	writeJSON(w, u.restStatus(e), u.errBody(e.code, e.desc))
}
