package syncer

import (
	"context"
	"testing"

	"b24learn/internal/secret"
	"b24learn/internal/settings"
)

// saveRow saves a portal's settings row through the settings package, as
// the settings page does, so the row keeps its rules (sealed secrets, the
// stored root cleared with a new address). Runs load their settings from the
// test's source, not from here; the row is what other portals' runs and the
// account checks read.
func saveRow(tb testing.TB, db settings.Beginner, kr *secret.Keyring, portalID int64, edit func(*settings.Settings)) {
	tb.Helper()
	if _, err := settings.Save(context.Background(), db, kr, portalID, 1, edit); err != nil {
		tb.Fatal(err)
	}
}

func (e *simEnv) saveRow(portalID int64, edit func(*settings.Settings)) {
	e.t.Helper()
	saveRow(e.t, e.pool, e.kr, portalID, edit)
}
