package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"b24learn/internal/learn"
	"b24learn/internal/manager"
	"b24learn/internal/settings"
)

// The settings page's connection check sends the e-mail and password the
// admin typed to the Learn account they named, and says whether Learn took
// them: a password oracle against any Learn account, from the app's address.
// The per-portal bound (learnCheckLimit) does not stop an attacker with many
// portals (a trial portal is free), so failed checks are also counted per
// target, the account's host and the login, across all portals.
//
// As the console's sign-in limits leave the right password a way in from an
// address it was used from before, a portal whose saved settings already
// hold this target is not held by the target's bound, only by its own: an
// attack on the account cannot keep its rightful admin from changing the
// password or the run times. Settings are saved only after Learn accepted
// them, so saved credentials are ones Learn accepted.
//
// A check with an API key sends no password, only the key's token
// (docs/learn-api.md, "Authentication"): it guesses nothing about the
// target, so it is neither counted nor held by the target's bound, which
// anyone naming the target can keep spent. Held, a portal that signs in
// with a key (which holds no target) could save nothing during an attack.

// learnTargetSlots is how many targets are counted apart. An attacker can
// name any number of hosts and logins, so a target is counted in one of a
// fixed number of slots (its hash), which caps the counters (rows of
// rate_limits) at this many per window. Two targets that share a slot share
// a bound; an attacker who aims at a victim's slot gains nothing, as naming
// the victim's target holds it just as well, and the victim's own portal is
// not held by either.
const learnTargetSlots = 1 << 16

// learnTarget is the account's host and login a check names: the host
// without the port (NormalizeAccountURL lowercased it), the login trimmed and
// lowercased. Its host is "" when the URL has none.
type learnTarget struct{ host, login string }

func targetOf(accountURL, login string) learnTarget {
	u, err := url.Parse(accountURL)
	if err != nil {
		return learnTarget{}
	}
	return learnTarget{
		host:  strings.TrimSuffix(strings.ToLower(u.Hostname()), "."),
		login: strings.ToLower(strings.TrimSpace(login)),
	}
}

// key is the target's counter, one of learnTargetSlots.
func (t learnTarget) key() string {
	sum := sha256.Sum256([]byte(t.host + "\x00" + t.login))
	return fmt.Sprintf("learn-check:target:%x", binary.BigEndian.Uint32(sum[:4])%learnTargetSlots)
}

// holdsTarget reports whether the portal's saved settings are of the target
// itself. Sharing its counter is not enough: anyone can find a login of their
// own server that shares a victim's slot, and Learn's acceptance of that
// login says nothing about the victim's account. Nor are settings with an
// API key: the key's token picks its own account whatever the address and
// login typed (docs/learn-api.md, "One account, several portals"), so only
// a password check proved them.
func holdsTarget(cur settings.Settings, t learnTarget) bool {
	return cur.HasAccount() && !cur.HasAPIKey() && t.host != "" && targetOf(cur.LearnURL, cur.LearnEmail) == t
}

// takeTargetTurn counts a check of target as a failure before it is made, so
// that parallel guesses cannot all pass a bound read before any of them
// failed; settleTargetTurn gives the place back unless Learn refused the
// credentials. Over the bound it returns *manager.RateLimitedError and the
// check must not be made.
func (s *Server) takeTargetTurn(ctx context.Context, target learnTarget, now time.Time) error {
	err := manager.Hit(ctx, s.pool, target.key(), learnTargetLimit, now)
	var rl *manager.RateLimitedError
	if errors.As(err, &rl) {
		// A refused check is no failure: it does not push the wait further.
		if rerr := manager.Release(ctx, s.pool, target.key(), learnTargetLimit, now); rerr != nil {
			return rerr
		}
	}
	return err
}

// settleTargetTurn keeps the turn taken at now only when Learn refused the
// credentials (401 or 403): a check that got in, or that never reached Learn,
// guessed nothing.
func (s *Server) settleTargetTurn(ctx context.Context, target learnTarget, now time.Time, checkErr error) error {
	var ce *learn.CheckError
	if errors.As(checkErr, &ce) && (ce.Code == learn.CheckBadCredentials || ce.Code == learn.CheckNoAPIAccess) {
		return nil
	}
	return manager.Release(ctx, s.pool, target.key(), learnTargetLimit, now)
}
