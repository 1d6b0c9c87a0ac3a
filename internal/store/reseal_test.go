package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// Reseal writes each secret through its table's primary key: with 10,000
// portals a full scan per secret would be 30,000 scans of the table at every
// start. auto_explain sends the plan of every statement Reseal runs back as
// a notice; with sequential scans priced out, an UPDATE that cannot use the
// index still shows a Seq Scan.
func TestResealUpdatesByIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		plans []string
	)
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;
			SET auto_explain.log_level = notice; SET enable_seqscan = off; SET jit = off`)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	const oldKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
	oldRing, _ := secret.NewKeyring(oldKey)
	newRing, _ := secret.NewKeyring("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=," + oldKey)
	for i := range 3 {
		if _, err := store.UpsertPortal(ctx, pool, oldRing, store.PortalInstall{
			PortalInfo:  store.PortalInfo{MemberID: strings.Repeat(string(rune('a'+i)), 32), Domain: "acme.bitrix24.com", Lang: "en"},
			AccessToken: "access", RefreshToken: "refresh", TokenExpiresAt: time.Now().Add(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	plans = nil
	mu.Unlock()

	res, err := store.Reseal(ctx, pool, newRing)
	if err != nil || res.Resealed != 6 {
		t.Fatalf("reseal: %+v, %v; want 6 resealed", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	updates := 0
	for _, p := range plans {
		if !strings.Contains(p, "Update on portals") {
			continue
		}
		updates++
		if strings.Contains(p, "Seq Scan") {
			t.Errorf("an UPDATE of portals scans the whole table:\n%s", p)
		}
	}
	if updates != 6 {
		t.Errorf("%d UPDATE plans of portals seen, want 6 (is auto_explain loaded?)", updates)
	}
}
