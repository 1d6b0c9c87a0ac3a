package server

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"b24learn/internal/store"
)

// Every employee of a portal can spend the portal's shared buckets (the
// verification gate's, the frame opens', the /app requests'), and so lock
// its admins out of the settings. So the users Bitrix24 has proven admins
// of a portal in this process draw on per-portal shares of their own
// instead (the PerPortalAdmins buckets in limits.go), which no employee
// reaches. Each user's own bucket still applies.

// provenAdmins remembers, in the process, the users Bitrix24 last said are
// admins of their portal: set by an open of the app or an admin proof that
// Bitrix24 answered, cleared by its "no" and by a demotion found in the
// database (another instance heard the "no"). At most max users are kept (maxAdminsPerPortal of one portal),
// the least recently proven dropped first: a dropped admin only draws on
// the employees' buckets until proven again. A nil *provenAdmins knows none.
type provenAdmins struct {
	mu        sync.Mutex
	max       int
	order     *list.List // of *provenAdmin, most recently proven first
	byMember  map[userKey]*list.Element
	byPortal  map[portalUserKey]*list.Element
	perPortal map[string]int // by member_id, how many of order are its
}

// maxAdminsPerPortal bounds the users one portal keeps remembered: a
// portal's Bitrix24 may answer as its owner likes (a self-hosted one), its
// profile calls naming a new admin at every open, and without a bound of
// its own it would evict every other portal's admins. Over it the portal's
// own least recently proven go first.
const maxAdminsPerPortal = 64

// provenAdmin names one admin both ways: the verification gate and the
// frame opens know a portal by member_id, the /app requests by its id.
type provenAdmin struct {
	member userKey
	portal portalUserKey
}

type portalUserKey struct{ portalID, userID int64 }

func newProvenAdmins(maxUsers int) *provenAdmins {
	return &provenAdmins{max: max(maxUsers, 1), order: list.New(), byMember: map[userKey]*list.Element{},
		byPortal: map[portalUserKey]*list.Element{}, perPortal: map[string]int{}}
}

// set records Bitrix24's answer on whether userID is an admin of p.
func (a *provenAdmins) set(p store.Portal, userID int64, admin bool) {
	if a == nil || p.MemberID == "" || userID <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := provenAdmin{member: userKey{p.MemberID, userID}, portal: portalUserKey{p.ID, userID}}
	if el, ok := a.byMember[k.member]; ok {
		a.drop(el)
	}
	if el, ok := a.byPortal[k.portal]; ok {
		a.drop(el)
	}
	if !admin {
		return
	}
	if a.perPortal[p.MemberID] >= maxAdminsPerPortal {
		// The list is most recent first: the portal's oldest is nearest
		// the back.
		for el := a.order.Back(); el != nil; el = el.Prev() {
			if el.Value.(*provenAdmin).member.memberID == p.MemberID {
				a.drop(el)
				break
			}
		}
	}
	for a.order.Len() >= a.max {
		a.drop(a.order.Back())
	}
	el := a.order.PushFront(&k)
	a.byMember[k.member], a.byPortal[k.portal] = el, el
	a.perPortal[p.MemberID]++
}

func (a *provenAdmins) drop(el *list.Element) {
	k := a.order.Remove(el).(*provenAdmin)
	delete(a.byMember, k.member)
	delete(a.byPortal, k.portal)
	if a.perPortal[k.member.memberID]--; a.perPortal[k.member.memberID] <= 0 {
		delete(a.perPortal, k.member.memberID)
	}
}

// hasMember says whether userID is remembered as an admin of the portal
// memberID.
func (a *provenAdmins) hasMember(memberID string, userID int64) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.byMember[userKey{memberID, userID}]
	return ok
}

// hasPortal says whether userID is remembered as an admin of the portal
// portalID.
func (a *provenAdmins) hasPortal(portalID, userID int64) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.byPortal[portalUserKey{portalID, userID}]
	return ok
}

func (a *provenAdmins) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.order.Len()
}

// provenAdmin says whether the user of the portal memberID that a frame
// open's OAuth answer names is an admin proven in this process and not
// demoted since: a demotion another instance heard from Bitrix24 is only in
// the database (portal_demoted_users), so it is read there, and only for
// the users remembered as admins, so employees' opens cost no read.
func (s *Server) provenAdmin(ctx context.Context, memberID string, userID int64) (bool, error) {
	if userID <= 0 || !s.admins.hasMember(memberID, userID) {
		return false, nil
	}
	p, err := store.GetPortalByMemberID(ctx, s.pool, memberID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("proven admin: %w", err)
	}
	d, err := demoted(ctx, s.pool, p.ID, userID)
	if err != nil {
		return false, err
	}
	if d {
		s.admins.set(p, userID, false)
	}
	return !d, nil
}
