package server

import (
	"container/list"
	"slices"
	"time"

	"golang.org/x/time/rate"
)

// addressesPerUser is how many of a user's most recent addresses are
// remembered: office, home and phone, say. More would let one user with many
// addresses (IPv6 /64s are cheap) spend their portal's users' bucket alone.
const addressesPerUser = 3

// userAddrs remembers, per portal, the addresses each user opened the app
// from: the user's last addressesPerUser, until the user has not opened it
// for ttl. At most max users are kept, the least recently seen dropped first.
// It lives in the process: after a restart nothing is remembered. Each user
// has a bucket (perUser) all their addresses share: a fresh address brings a
// full address bucket, so the user's last few addresses alone would not
// bound what one user with many addresses spends.
type userAddrs struct {
	ttl     time.Duration
	max     int
	perUser Bucket
	order   *list.List // of *portalUser, most recently seen first
	users   map[userKey]*list.Element
	addrs   map[addrKey][]*portalUser // the remembered users who hold the address
}

type userKey struct {
	memberID string
	userID   int64
}

type addrKey struct{ memberID, addr string }

type portalUser struct {
	key   userKey
	addrs []string      // most recent first
	seen  time.Time     // the user's last verified open
	lim   *rate.Limiter // the user's bucket; nil: no limit
}

func newUserAddrs(ttl time.Duration, maxUsers int, perUser Bucket) *userAddrs {
	return &userAddrs{ttl: ttl, max: maxUsers, perUser: perUser, order: list.New(), users: map[userKey]*list.Element{},
		addrs: map[addrKey][]*portalUser{}}
}

// add remembers that userID of the portal memberID opened the app from addr
// at now.
func (u *userAddrs) add(now time.Time, memberID, addr string, userID int64) {
	if u.ttl <= 0 {
		return
	}
	u.expire(now)
	key := userKey{memberID, userID}
	el, ok := u.users[key]
	if !ok {
		for u.order.Len() >= u.max {
			u.drop(u.order.Back())
		}
		el = u.order.PushFront(&portalUser{key: key, lim: newLimiter(u.perUser)})
		u.users[key] = el
	}
	u.order.MoveToFront(el)
	pu := el.Value.(*portalUser)
	pu.seen = now
	if i := slices.Index(pu.addrs, addr); i >= 0 {
		pu.addrs = slices.Delete(pu.addrs, i, i+1)
	} else {
		k := addrKey{memberID, addr}
		u.addrs[k] = append(u.addrs[k], pu)
	}
	pu.addrs = slices.Insert(pu.addrs, 0, addr)
	if len(pu.addrs) > addressesPerUser {
		u.release(pu, pu.addrs[addressesPerUser])
		pu.addrs = pu.addrs[:addressesPerUser]
	}
}

// has reports whether a user of the portal memberID is remembered at addr.
func (u *userAddrs) has(now time.Time, memberID, addr string) bool {
	u.expire(now)
	return len(u.addrs[addrKey{memberID, addr}]) > 0
}

// bucket is the fullest bucket of the users remembered at addr for the
// portal memberID (nil: none, or no limit): an address its users share
// takes from whichever has tokens.
func (u *userAddrs) bucket(now time.Time, memberID, addr string) *rate.Limiter {
	u.expire(now)
	var best *rate.Limiter
	for _, pu := range u.addrs[addrKey{memberID, addr}] {
		if pu.lim != nil && (best == nil || pu.lim.TokensAt(now) > best.TokensAt(now)) {
			best = pu.lim
		}
	}
	return best
}

// anyUser says whether one of the users remembered at addr for the portal
// memberID is one that is(userID) says yes to.
func (u *userAddrs) anyUser(now time.Time, memberID, addr string, is func(userID int64) bool) bool {
	u.expire(now)
	for _, pu := range u.addrs[addrKey{memberID, addr}] {
		if is(pu.key.userID) {
			return true
		}
	}
	return false
}

// expire forgets the users not seen for ttl. The list is in the order they
// were seen, so they are at its back.
func (u *userAddrs) expire(now time.Time) {
	for el := u.order.Back(); el != nil && now.Sub(el.Value.(*portalUser).seen) >= u.ttl; el = u.order.Back() {
		u.drop(el)
	}
}

func (u *userAddrs) drop(el *list.Element) {
	pu := u.order.Remove(el).(*portalUser)
	delete(u.users, pu.key)
	for _, a := range pu.addrs {
		u.release(pu, a)
	}
}

// release forgets that pu holds addr.
func (u *userAddrs) release(pu *portalUser, addr string) {
	k := addrKey{pu.key.memberID, addr}
	if u.addrs[k] = slices.DeleteFunc(u.addrs[k], func(o *portalUser) bool { return o == pu }); len(u.addrs[k]) == 0 {
		delete(u.addrs, k)
	}
}

func (u *userAddrs) len() int { return u.order.Len() }
