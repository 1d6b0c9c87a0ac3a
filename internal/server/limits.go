package server

import (
	"time"

	"b24learn/internal/manager"
)

// Every rate limit of the server's requests, with why it is set where it
// is. The gates that apply them say what each bounds and why: the OAuth
// verifications in b24_gate.go, the /app requests in session_limit.go, the
// frame opens' profile calls in frame_calls.go, the admin proofs' in
// admin_proof.go, the admins' own shares in admin_share.go. The console's
// sign-in and the activation form's limits are manager.DefaultLimits.

// Bucket is a token bucket: Burst at once, then one every Every. A zero
// Every means no limit.
type Bucket struct {
	Burst int
	Every time.Duration
}

// DefaultVerifyLimits are generous for people (an admin opens the app a few
// times a minute, a portal's employees share an office address) and cap an
// attacker with made-up member_ids at 20 OAuth calls, then 20 a minute, per
// process, whatever the number of addresses; one address (or IPv6 /48) gets
// 3 of those a minute, so it takes about seven to keep a new portal's
// installer out. Knowing a real portal's member_id buys its bucket only, not
// the one of its users' addresses: one user, from any number of addresses,
// can spend at most half of that.
func DefaultVerifyLimits() VerifyLimits {
	return VerifyLimits{
		PerAddress:        Bucket{Burst: 20, Every: 6 * time.Second}, // 10 a minute
		PerPortal:         Bucket{Burst: 30, Every: 2 * time.Second}, // 30 a minute
		PerPortalUsers:    Bucket{Burst: 120, Every: time.Second},    // 60 a minute
		PerPortalUser:     Bucket{Burst: 60, Every: 2 * time.Second}, // half of that
		PerPortalAdmins:   Bucket{Burst: 60, Every: 2 * time.Second}, // 30 a minute, the admins' own
		RememberAddresses: 30 * 24 * time.Hour,
		PerPortalEvents:   Bucket{Burst: 10, Every: 6 * time.Second}, // 10 a minute
		// A portal gets a handful of genuine events a year.
		PerPortalTokenEvents: Bucket{Burst: 5, Every: 30 * time.Second}, // 2 a minute
		Unknown:              Bucket{Burst: 20, Every: 3 * time.Second}, // 20 a minute
		UnknownPerAddress:    Bucket{Burst: 3, Every: 20 * time.Second}, // 3 a minute
		MaxKeys:              10000,
	}
}

// appRequestLimits bound the /app requests.
//
// PerUser: 60 at once, then 120 a minute.
//
// PerPortal: 300 at once, then 600 a minute. Without it a portal with many
// users (any self-hosted portal, or a free trial one, can have as many as it
// likes) multiplies the per-user bucket. An open page polls the status panel
// every 2 s (30 a minute), so it leaves room for some twenty pages polling
// at once plus their opens and searches, far more than a real admin team;
// one user's bucket, at a fifth of it, cannot empty it alone.
//
// PerPortalAdmins: 180 at once, then 360 a minute, room for a few admins'
// pages polling and saving at once.
func appRequestLimits() gateLimits {
	return gateLimits{
		PerUser:         Bucket{Burst: 60, Every: 500 * time.Millisecond},
		PerPortal:       Bucket{Burst: 300, Every: 100 * time.Millisecond},
		PerPortalAdmins: Bucket{Burst: 180, Every: time.Minute / 360},
	}
}

// frameCallLimits bound the frame opens' profile calls.
//
// PerUser: 20 at once, then 4 a minute. An admin opens the app a few times
// a minute at most, and reloads a dozen times in a row when trying settings
// out; one employee's script gets one profile call every 15 s, a thirtieth
// of the portal's budget.
//
// PerPortal: 120 at once, as many as the verification gate lets the
// portal's users' addresses open at once (so a portal's people opening the
// app at 9:00 are held back by neither), then 20 a minute, a sixth of the
// portal's budget, so many employees' scripts cannot multiply the per-user
// bucket.
//
// PerPortalAdmins: 60 at once, then 12 a minute, for a few admins
// reloading while they try settings out.
func frameCallLimits() gateLimits {
	return gateLimits{
		PerUser:         Bucket{Burst: 20, Every: 15 * time.Second},
		PerPortal:       Bucket{Burst: 120, Every: 3 * time.Second},
		PerPortalAdmins: Bucket{Burst: 60, Every: 5 * time.Second},
	}
}

// adminProofCallLimits bound the admin proofs' profile calls.
//
// PerUser: 20 at once, then 20 a minute.
//
// PerPortal: 60 at once, then 30 a minute, so a portal's many sessions
// cannot multiply the per-user bucket.
func adminProofCallLimits() gateLimits {
	return gateLimits{
		PerUser:   Bucket{Burst: 20, Every: 3 * time.Second},
		PerPortal: Bucket{Burst: 60, Every: 2 * time.Second},
	}
}

// learnCheckLimit bounds a portal's Learn checks (each a few requests to the
// address the admin typed): plenty for an admin correcting typos, and no
// way to make the app send requests to a host without end.
var learnCheckLimit = manager.Limit{Max: 20, Window: 10 * time.Minute}

// learnTargetLimit bounds the failed checks of one target from portals that
// do not hold it: a new admin who mistypes the password a few times gets
// through; a guessing campaign gets 5 answers a quarter of an hour, however
// many portals it spreads over.
var learnTargetLimit = manager.Limit{Max: 5, Window: 15 * time.Minute}

// provisionBudget bounds a portal's "Sync this employee" jobs an hour, on
// top of provisionMaxQueued: each is a handful of Learn requests, on an
// account other portals may share, and without it an admin could keep a
// steady stream going by queueing again as each finishes. An admin fixing
// people one by one needs far fewer; a full sync covers everyone. It
// counts the portal's jobs River keeps (a day, longer than the window), so
// every instance sees the same count.
var provisionBudget = manager.Limit{Max: 60, Window: time.Hour}
