package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// The README's rotation: prepend a new key to SECRET_KEYS, run migrate, then
// drop the old key. Every secret stored before must open with the new key
// alone, the Learn password and the application token included, which
// nothing else seals again until someone changes them.
func TestMigrateReseal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const newKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	oldRing, _ := secret.NewKeyring(testKey)
	p, err := store.UpsertPortal(ctx, pool, oldRing, store.PortalInstall{
		PortalInfo:  store.PortalInfo{MemberID: strings.Repeat("ab", 16), Domain: "acme.bitrix24.com", Lang: "en"},
		AccessToken: "access-1", RefreshToken: "refresh-1", TokenExpiresAt: time.Now().Add(time.Hour),
		ApplicationToken: "app-token-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Save(ctx, pool, oldRing, p.ID, 0, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://acme.ispringlearn.com", "admin@acme.example", "learn-password-1"
	}); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"DATABASE_URL": url, "SECRET_KEYS": newKey + "," + testKey}
	var out, logged bytes.Buffer
	if err := run(ctx, []string{"migrate"}, func(k string) string { return env[k] }, nil, &out, &logged); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// The README's sign that the old key may go: 0 left on it, said even
	// when 0.
	if !strings.Contains(logged.String(), `msg="stored secrets still sealed with an older key of SECRET_KEYS" count=0`) {
		t.Errorf("migrate does not report 0 secrets left on an older key:\n%s", logged.String())
	}

	newRing, _ := secret.NewKeyring(newKey)
	if tok, err := store.ApplicationToken(ctx, pool, newRing, p.ID); err != nil || tok != "app-token-1" {
		t.Errorf("application token with the new key alone: %q, %v", tok, err)
	}
	if s, err := settings.Load(ctx, pool, newRing, p.ID); err != nil || s.Password != "learn-password-1" {
		t.Errorf("Learn password with the new key alone: %q, %v", s.Password, err)
	}
	var access, refresh []byte
	if err := pool.QueryRow(ctx, `SELECT access_token, refresh_token FROM portals WHERE id = $1`, p.ID).Scan(&access, &refresh); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][]byte{"access": access, "refresh": refresh} {
		if _, err := newRing.Decrypt(c); err != nil {
			t.Errorf("%s token with the new key alone: %v", name, err)
		}
	}
	// An instance not yet restarted refreshes the portal's tokens with the
	// old key after the reseal: they are still on it, and counted.
	if _, err := store.UpsertPortal(ctx, pool, oldRing, store.PortalInstall{
		PortalInfo:  store.PortalInfo{MemberID: strings.Repeat("ab", 16), Domain: "acme.bitrix24.com", Lang: "en"},
		AccessToken: "access-2", RefreshToken: "refresh-2", TokenExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	bothRing, _ := secret.NewKeyring(newKey + "," + testKey)
	if older, unreadable, err := store.CountSealed(ctx, pool, bothRing); err != nil || older != 2 || unreadable != 0 {
		t.Errorf("after a lagging instance's refresh: %d on an older key, %d unreadable, %v; want 2, 0", older, unreadable, err)
	}
	if res, err := store.Reseal(ctx, pool, bothRing); err != nil || res != (store.ResealResult{Resealed: 2}) {
		t.Errorf("reseal after the refresh: %+v, %v; want 2 resealed, none left", res, err)
	}
	// A key dropped too early: nothing is changed, and the operator is told
	// how many secrets no listed key opens.
	otherRing, _ := secret.NewKeyring("MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=")
	if res, err := store.Reseal(ctx, pool, otherRing); err != nil || res != (store.ResealResult{Unreadable: 4}) {
		t.Errorf("reseal without the sealing key: %+v, %v", res, err)
	}
}
