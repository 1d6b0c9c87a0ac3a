package b24sim

// What tests read from a portal (deliveries, bindings, counters) and the
// faults, limits and renames they set on it.

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Deliveries returns the event POSTs made so far.
func (p *Portal) Deliveries() []Delivery {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return slices.Clone(p.deliveries)
}

// Bindings returns "EVENT handler" strings of the current event bindings.
func (p *Portal) Bindings() []string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	var out []string
	for _, b := range p.bindings {
		out = append(out, b.event+" "+b.handler)
	}
	return out
}

// Leads returns the crm.lead.add calls received on the webhook.
func (p *Portal) Leads() []Lead {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return slices.Clone(p.leads)
}

// Requests returns HTTP requests per method (a batch counts once, as "batch").
func (p *Portal) Requests() map[string]int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return maps.Clone(p.requests)
}

// TotalRequests is the number of REST HTTP requests; Throttled how many of
// them were refused with QUERY_LIMIT_EXCEEDED.
func (p *Portal) TotalRequests() int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	n := 0
	for _, v := range p.requests {
		n += v
	}
	return n
}

func (p *Portal) Throttled() int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return p.throttle
}

// Commands returns methods run per name, batch commands included.
func (p *Portal) Commands() map[string]int {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	return maps.Clone(p.commands)
}

// ResetCounters zeroes request counters.
func (p *Portal) ResetCounters() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.requests, p.commands, p.throttle = map[string]int{}, map[string]int{}, 0
}

// SetRateLimit changes the bucket (rate ≤ 0 disables it) and empties it.
func (p *Portal) SetRateLimit(rate float64, burst int) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.rate, p.burst, p.level = rate, float64(burst), 0
}

// SetCountRefused makes a request refused with QUERY_LIMIT_EXCEEDED add to
// the bucket like an admitted one. The docs say each incoming request raises
// the counter and requests past the threshold are blocked; whether a blocked
// one raises it too is not said (docs/bitrix24-api.md, "Request rate").
func (p *Portal) SetCountRefused(on bool) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.countRefused = on
}

// SetOAuthClientEndpoint makes the OAuth server's refresh answers for the
// portal's tokens name endpoint as client_endpoint, as a server that lies or
// was subverted might; "" restores the portal's own.
func (p *Portal) SetOAuthClientEndpoint(endpoint string) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.oauthEndpoint = endpoint
}

// FillBucket makes the bucket full, as if other apps had used it.
func (p *Portal) FillBucket() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.level, p.last = p.burst, time.Now()
}

// SetLatency sets the delay added to each REST request.
func (p *Portal) SetLatency(d time.Duration) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.latency = d
}

// InjectFault queues a fault.
func (p *Portal) InjectFault(f Fault) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	p.faults = append(p.faults, f)
}

// ClearFaults drops the faults still queued, as when an outage ends.
func (p *Portal) ClearFaults() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.faults = nil
}

// ExpireTokens makes every access token of the portal expired.
func (p *Portal) ExpireTokens() {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, at := range s.access {
		if at.portal == p {
			at.expires = past
		}
	}
}

// Rename moves the portal to a new domain; the old address answers 302. For a
// hosted portal under Start the new domain is a new listener and newDomain is
// ignored. It returns the new domain.
func (p *Portal) Rename(newDomain string) string {
	s := p.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	old := p.domain
	if p.hosted {
		if s.listen == nil {
			panic("b24sim: renaming a hosted portal needs Start")
		}
		u := s.listen()
		p.domain, p.url = strings.TrimPrefix(u, "http://"), u
	} else {
		p.domain = strings.ToLower(newDomain)
		p.url = s.base + "/p/" + p.domain
	}
	delete(s.portals, old)
	s.portals[p.domain] = p
	for k, v := range s.renamed {
		if v == old { // a portal renamed twice still redirects from its first name
			s.renamed[k] = p.domain
		}
	}
	s.renamed[old] = p.domain
	return p.domain
}

// LimitAccess limits the app to users, as a portal admin can in the app's
// settings: every REST call with another user's token is refused with
// user_access_error (docs/bitrix24-api.md, "Errors"). No users refuses
// everyone; OpenAccess lifts the limit.
func (p *Portal) LimitAccess(users ...int64) {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.access = map[int64]bool{}
	for _, u := range users {
		p.access[u] = true
	}
}

// OpenAccess gives every user the app again.
func (p *Portal) OpenAccess() {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.access = nil
}
