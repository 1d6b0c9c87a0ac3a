package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

func testKeyring(t *testing.T) *secret.Keyring {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	kr, err := secret.NewKeyring(base64.StdEncoding.EncodeToString(k))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func install(member, appToken string) store.PortalInstall {
	return store.PortalInstall{
		PortalInfo: store.PortalInfo{MemberID: member, Domain: "acme.bitrix24.com", ClientEndpoint: "https://acme.bitrix24.com/rest/",
			ServerEndpoint: "https://oauth.bitrix.info/rest/", Scope: "user_basic,department", Lang: "de"},
		AccessToken: "access-" + member, RefreshToken: "refresh-" + member,
		TokenExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second), ApplicationToken: appToken,
	}
}

func TestUpsertPortalKeepsOneRowAndEncrypts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := testKeyring(t)

	p1, err := store.UpsertPortal(ctx, pool, kr, install("m1", "apptok-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !p1.Installed() || !p1.HasAppToken || p1.Lang != "de" || p1.Origin() != "https://acme.bitrix24.com" {
		t.Fatalf("after install: %+v", p1)
	}
	// Installer opened again without APPLICATION_TOKEN: same row, token kept.
	p2, err := store.UpsertPortal(ctx, pool, kr, install("m1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if p2.ID != p1.ID || !p2.HasAppToken {
		t.Fatalf("second install: id %d→%d, has app token %v", p1.ID, p2.ID, p2.HasAppToken)
	}
	if tok, _ := store.ApplicationToken(ctx, pool, kr, p1.ID); tok != "apptok-1" {
		t.Fatalf("application token = %q", tok)
	}

	// Raw columns hold ciphertext, never the plaintext.
	var access, refresh, app []byte
	if err := pool.QueryRow(ctx, `SELECT access_token, refresh_token, application_token FROM portals WHERE id = $1`, p1.ID).
		Scan(&access, &refresh, &app); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]byte{
		"access": {access, []byte("access-m1")}, "refresh": {refresh, []byte("refresh-m1")}, "app": {app, []byte("apptok-1")},
	} {
		if len(pair[0]) == 0 || bytes.Contains(pair[0], pair[1]) {
			t.Errorf("%s token column is empty or holds the plaintext", name)
		}
		if plain, err := kr.Decrypt(pair[0]); err != nil || !bytes.Equal(plain, pair[1]) {
			t.Errorf("%s token does not decrypt to the stored value: %v", name, err)
		}
	}

	// Uninstall, then reinstall without an application token: the old one is
	// gone (each install has its own), the row is the same.
	if _, err := store.MarkPortalUninstalled(ctx, pool, p1.ID); err != nil {
		t.Fatal(err)
	}
	u, _ := store.GetPortal(ctx, pool, p1.ID)
	if u.Installed() || u.UninstalledAt.IsZero() {
		t.Fatalf("after uninstall: %+v", u)
	}
	p3, err := store.UpsertPortal(ctx, pool, kr, install("m1", ""))
	if err != nil {
		t.Fatal(err)
	}
	if p3.ID != p1.ID || !p3.Installed() || p3.HasAppToken || !p3.UninstalledAt.IsZero() {
		t.Fatalf("reinstall: %+v", p3)
	}
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM portals`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d portal rows, want 1", n)
	}
	if _, err := store.GetPortalByMemberID(ctx, pool, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown member id: %v", err)
	}
}

func TestErasePortalDataTouchesOnlyThatPortal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := testKeyring(t)
	a, err := store.UpsertPortal(ctx, pool, kr, install("ma", "tok-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.UpsertPortal(ctx, pool, kr, install("mb", "tok-b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{a.ID, b.ID} {
		if _, err := settings.Save(ctx, pool, kr, id, 1, func(s *settings.Settings) {
			s.LearnURL, s.Password = "https://x.ispringlearn.com", "learn-pass"
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A mapping table of a later migration, if present, is covered too.
	if _, err := pool.Exec(ctx, `CREATE TABLE erase_probe (portal_id bigint NOT NULL REFERENCES portals(id), v text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO erase_probe VALUES ($1, 'a'), ($2, 'b')`, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}

	// A failed sync's error is a remote server's message about the
	// portal's data.
	if _, err := pool.Exec(ctx, `UPDATE portals SET last_sync_error = 'learn: 409: ivan@corp.example exists',
		sync_failures = 3, needs_attention = true`); err != nil {
		t.Fatal(err)
	}

	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return store.ErasePortalData(ctx, tx, a.ID) }); err != nil {
		t.Fatal(err)
	}
	count := func(q string, id int64) int {
		var n int
		if err := pool.QueryRow(ctx, q, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, a.ID) != 0 ||
		count(`SELECT count(*) FROM erase_probe WHERE portal_id = $1`, a.ID) != 0 {
		t.Fatal("portal A's per-portal rows survived the erase")
	}
	if count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, b.ID) != 1 ||
		count(`SELECT count(*) FROM erase_probe WHERE portal_id = $1`, b.ID) != 1 {
		t.Fatal("portal B's rows were touched")
	}
	if count(`SELECT count(*) FROM portals WHERE id = $1 AND access_token IS NULL AND refresh_token IS NULL AND application_token IS NULL`, a.ID) != 1 {
		t.Fatal("portal A's secrets survived the erase")
	}
	if count(`SELECT count(*) FROM portals WHERE id = $1 AND last_sync_error = '' AND NOT needs_attention`, a.ID) != 1 {
		t.Fatal("portal A's last sync error survived the erase")
	}
	if count(`SELECT count(*) FROM portals WHERE id = $1 AND access_token IS NOT NULL AND application_token IS NOT NULL
		AND last_sync_error <> ''`, b.ID) != 1 {
		t.Fatal("portal B's secrets were erased")
	}
}
