package server

import (
	"testing"

	"b24learn/internal/store"
)

// The attacker: a portal whose Bitrix24 answers as its owner likes (a
// self-hosted one), its profile calls naming a new admin at every open.
// Each open records a "proven admin" of that portal; before there was a cap
// per portal, enough of them evicted every other portal's admins from the
// memory, and their employees could lock them out again. Now the hostile
// portal evicts only its own.
func TestOnePortalCannotEvictOtherPortalsAdmins(t *testing.T) {
	a := newProvenAdmins(1000)
	victim := store.Portal{ID: 1, PortalInfo: store.PortalInfo{MemberID: "victim"}}
	a.set(victim, 42, true)
	hostile := store.Portal{ID: 2, PortalInfo: store.PortalInfo{MemberID: "hostile"}}
	for uid := int64(1); uid <= 5000; uid++ {
		a.set(hostile, uid, true)
	}
	if !a.hasMember("victim", 42) || !a.hasPortal(1, 42) {
		t.Fatalf("the victim portal's admin was evicted by another portal's %d made-up admins", a.len()-1)
	}
	if n := a.len(); n > 1+maxAdminsPerPortal {
		t.Fatalf("remembered %d users; want at most %d", n, 1+maxAdminsPerPortal)
	}
	// The hostile portal's own latest are kept, its oldest dropped.
	if !a.hasMember("hostile", 5000) || a.hasMember("hostile", 1) {
		t.Fatal("the portal's own least recently proven admins should go first")
	}
}
