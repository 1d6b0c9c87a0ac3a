package b24sim

// A portal's install, update and uninstall, and the events it sends the app.

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Install is the admin installing the app from the Market: it creates the
// application_token and leaves the app "installing" until FinishInstall
// (BX24.installFinish). Installing again after an uninstall starts afresh.
// It returns a token pair for the admin.
//
// Under Unsettled.InstallEventEarly a fresh install also sends ONAPPINSTALL
// to the install event handler URL (Options.AppURL + "/b24/events") before
// the installer page opens, with the pair the admin's first installer frame
// then carries.
func (p *Portal) Install() Token {
	s := p.sim
	var tok Token
	p.emit(context.Background(), func() ([]string, url.Values) {
		fresh := p.state == stateNone
		if fresh {
			p.gen++
			p.appToken = newHex(16)
			p.state = stateInstalling
		}
		tok = s.issue(p, p.adminLocked())
		if !fresh || p.legacy || !s.unsettled().InstallEventEarly || s.opts.AppURL == "" {
			return nil, nil
		}
		first := tok
		p.firstFrame = &first
		return []string{strings.TrimRight(s.opts.AppURL, "/") + "/b24/events"}, p.eventForm("ONAPPINSTALL", url.Values{
			"data[VERSION]": {strconv.Itoa(p.version)}, "data[ACTIVE]": {"Y"}, "data[INSTALLED]": {"N"}, "data[LANGUAGE_ID]": {p.lang},
		}, &tok)
	})
	return tok
}

func (p *Portal) adminLocked() int64 {
	best := int64(0)
	for id, u := range p.users {
		if u.Active && u.Admin && (best == 0 || id < best) {
			best = id
		}
	}
	if best == 0 {
		best = 1
	}
	return best
}

// Tokens issues a new token chain for userID, as Bitrix24 does when a user opens
// the app. It fails when the app is not installed.
func (p *Portal) Tokens(userID int64) (Token, error) {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.installed() {
		return Token{}, fmt.Errorf("app not installed on %s", p.domain)
	}
	return s.issue(p, userID), nil
}

// FinishInstall is BX24.installFinish(): the app counts as installed, and
// ONAPPINSTALL goes to the handlers bound meanwhile.
func (p *Portal) FinishInstall(ctx context.Context) {
	p.emit(ctx, func() ([]string, url.Values) {
		if p.state != stateInstalling {
			return nil, nil
		}
		p.state = stateInstalled
		installer := p.installer
		p.installer = nil
		if p.legacy {
			return nil, nil
		}
		var tok Token
		if installer != nil && p.sim.unsettled().InstallEventTokens == InstallEventInstallers {
			tok = *installer // as the docs' samples show: the installer's own pair
		} else {
			tok = p.sim.issue(p, p.adminLocked())
		}
		form := p.eventForm("ONAPPINSTALL", url.Values{
			"data[VERSION]": {strconv.Itoa(p.version)}, "data[ACTIVE]": {"Y"}, "data[INSTALLED]": {"Y"}, "data[LANGUAGE_ID]": {p.lang},
		}, &tok)
		if p.sim.unsettled().InstallEventSparse {
			for _, k := range []string{"auth[expires]", "auth[user_id]", "data[ACTIVE]", "data[INSTALLED]"} {
				form.Del(k)
			}
		}
		return p.handlersFor("ONAPPINSTALL"), form
	})
}

// Update installs a new app version: bindings are dropped (docs/bitrix24-api.md, "Events"),
// the application_token changes and ONAPPUPDATE goes to the handlers bound
// before the update, or to none (Unsettled.UpdateEvent).
func (p *Portal) Update(ctx context.Context) {
	p.emit(ctx, func() ([]string, url.Values) {
		if p.state != stateInstalled {
			return nil, nil
		}
		prev := p.version
		p.version++
		p.appToken = newHex(16)
		tok := p.sim.issue(p, p.adminLocked())
		form := p.eventForm("ONAPPUPDATE", url.Values{
			"data[VERSION]": {strconv.Itoa(p.version)}, "data[PREVIOUS_VERSION]": {strconv.Itoa(prev)}, "data[LANGUAGE_ID]": {p.lang},
		}, &tok)
		targets := p.handlersFor("ONAPPUPDATE")
		if p.sim.unsettled().UpdateEvent == UpdateEventLost {
			targets = nil
		}
		p.bindings = nil
		return targets, form
	})
}

// SetAfterUninstall changes how the tokens of an uninstalled app are refused.
func (p *Portal) SetAfterUninstall(a AfterUninstall) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.gone = a
}

// SetLapse makes the installed app's tokens lapse (or work again with
// LapseNone) without an uninstall.
func (p *Portal) SetLapse(l Lapse) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.lapse = l
}

// ReopenInstaller is an app update that shows the installer again, as one
// may (no source says): until FinishInstall the app counts as installing,
// so app.info answers INSTALLED false, while its tokens keep working.
func (p *Portal) ReopenInstaller() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if p.state == stateInstalled {
		p.state = stateInstalling
	}
}

// Uninstall removes the app: ONAPPUNINSTALL (with data[CLEAN]) goes to bound
// handlers, bindings are deleted, and every token of the installation stops
// working, as the portal's AfterUninstall says (by default REST answers
// APPLICATION_NOT_FOUND, refresh invalid_grant). Bitrix24 revokes the tokens
// before it sends the event, and so does the simulator.
func (p *Portal) Uninstall(ctx context.Context, clean bool) {
	p.emit(ctx, func() (targets []string, form url.Values) {
		if p.state == stateNone {
			return nil, nil
		}
		if p.state == stateInstalled {
			c := "0"
			if clean {
				c = "1"
			}
			form = p.eventForm("ONAPPUNINSTALL", url.Values{"data[LANGUAGE_ID]": {p.lang}, "data[CLEAN]": {c}}, nil)
			targets = p.handlersFor("ONAPPUNINSTALL")
		}
		p.state = stateNone
		p.bindings = nil
		p.appToken = ""
		return targets, form
	})
}

// SendEvent delivers an arbitrary event (e.g. ONUSERADD) to bound handlers,
// with an auth block of userID's tokens minus the refresh token.
func (p *Portal) SendEvent(ctx context.Context, event string, data url.Values, userID int64) {
	p.emit(ctx, func() ([]string, url.Values) {
		if p.state != stateInstalled {
			return nil, nil
		}
		tok := p.sim.issue(p, userID)
		tok.RefreshToken = ""
		return p.handlersFor(strings.ToUpper(event)), p.eventForm(strings.ToUpper(event), data, &tok)
	})
}

// emit runs change under s.mu, then, with the lock released, delivers the
// event form it returns to its targets (none: nothing is sent).
func (p *Portal) emit(ctx context.Context, change func() (targets []string, form url.Values)) {
	p.sim.mu.Lock()
	targets, form := change()
	p.sim.mu.Unlock()
	for _, h := range targets {
		p.sim.deliver(ctx, p, h, form)
	}
}

func (p *Portal) handlersFor(event string) []string { // s.mu held
	var hs []string
	for _, b := range p.bindings {
		if b.event == event {
			hs = append(hs, b.handler)
		}
	}
	return hs
}

// eventForm builds an event payload shaped like the event samples (docs/bitrix24-api.md, "Events") (s.mu held).
func (p *Portal) eventForm(event string, data url.Values, tok *Token) url.Values {
	f := url.Values{"event": {event}, "ts": {strconv.FormatInt(p.sim.now().Unix(), 10)}}
	for _, b := range p.bindings {
		if b.event == event {
			f.Set("event_handler_id", strconv.Itoa(b.id))
			break
		}
	}
	for k, v := range data {
		f[k] = v
	}
	f.Set("auth[domain]", p.domain)
	f.Set("auth[server_endpoint]", p.sim.serverBase(p)+"/rest/")
	f.Set("auth[client_endpoint]", p.restURL())
	f.Set("auth[member_id]", p.memberID)
	f.Set("auth[application_token]", p.appToken)
	if tok != nil {
		f.Set("auth[access_token]", tok.AccessToken)
		f.Set("auth[expires]", strconv.FormatInt(tok.Expires.Unix(), 10))
		f.Set("auth[expires_in]", strconv.Itoa(int(p.sim.opts.AccessTTL.Seconds())))
		f.Set("auth[scope]", tok.Scope)
		f.Set("auth[status]", p.status)
		f.Set("auth[user_id]", strconv.FormatInt(tok.UserID, 10))
		if tok.RefreshToken != "" {
			f.Set("auth[refresh_token]", tok.RefreshToken)
		}
	}
	return f
}

// UserAdded sends ONUSERADD for user id, as Bitrix24 does when the user
// completes registration, to the handlers bound to it. data[ACTIVE] takes
// the form Unsettled.UserAddActive says; the auth block has no refresh token.
func (p *Portal) UserAdded(ctx context.Context, id int64) {
	p.emit(ctx, func() ([]string, url.Values) {
		u := p.users[id]
		if p.state != stateInstalled || u == nil {
			return nil, nil
		}
		data := url.Values{
			"data[ID]":            {strconv.FormatInt(u.ID, 10)},
			"data[ACTIVE]":        {p.sim.unsettled().userAddActive(u.Active)},
			"data[NAME]":          {u.Name},
			"data[LAST_NAME]":     {u.LastName},
			"data[EMAIL]":         {u.Email},
			"data[WORK_POSITION]": {u.WorkPosition},
			"data[DATE_REGISTER]": {u.DateRegister.In(p.zone()).Format(isoOffset)},
		}
		for i, d := range u.Departments {
			data.Set("data[UF_DEPARTMENT]["+strconv.Itoa(i)+"]", strconv.FormatInt(d, 10))
		}
		tok := p.sim.issue(p, u.ID)
		tok.RefreshToken = ""
		return p.handlersFor("ONUSERADD"), p.eventForm("ONUSERADD", data, &tok)
	})
}
