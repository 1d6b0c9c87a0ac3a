package learnsim

import (
	"slices"
	"sync"
)

// Sent is one update or move request an account received, as the tests of
// minimal writes need it: which keys the body carried.
type Sent struct {
	Route   string   // e.g. "POST /user/{id}"
	ID      string   // the {id} of the path
	Keys    []string // sorted: top-level body keys, and "fields.<name>" per profile field
	UserIDs []string // a move's userIds
	Status  int      // the answer's status
}

// sentLogMax bounds the log of a long-running simulator (the demo); the
// oldest entries go first.
const sentLogMax = 10_000

type sentLog struct {
	mu   sync.Mutex
	list []Sent
}

func (l *sentLog) add(s Sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) >= sentLogMax {
		l.list = slices.Delete(l.list, 0, len(l.list)-sentLogMax+1)
	}
	l.list = append(l.list, s)
}

func (l *sentLog) snapshot(reset bool) []Sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.list)
	if reset {
		l.list = nil
	}
	return out
}

// bodyKeys lists a request body's keys, a profile field as "fields.<name>".
func bodyKeys(body map[string]any, fields map[string]string) []string {
	var keys []string
	for k := range body {
		if k != "fields" {
			keys = append(keys, k)
		}
	}
	for k := range fields {
		keys = append(keys, "fields."+k)
	}
	slices.Sort(keys)
	return keys
}

// Sent returns the update and move requests the account at accountURL
// received since the last ResetCounts (POST /user/{id}, POST
// /department/{id}, POST /department/{id}/user/move, POST
// /department/{id}/subordination), oldest first.
func (s *Sim) Sent(accountURL string) []Sent {
	a := s.account(accountURL)
	if a == nil {
		return nil
	}
	return a.sent.snapshot(false)
}
