package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// Run is a sync run as the console shows it.
type Run struct {
	ID         int64
	Trigger    string
	Status     string
	StartedAt  time.Time
	FinishedAt *time.Time
	Error      string
}

// PortalRow is a portal as the console lists it: store.Portal's identity
// with the settings, health and last run the list shows, read in one query.
type PortalRow struct {
	ID              int64
	Domain          string
	MemberID        string
	InstallState    string
	ActivationState string
	LearnURL        string
	NeedsReconnect  bool
	NeedsAttention  bool
	// Held: the latest finished run held deactivations for approval
	// (the alert state internal/alert keeps).
	Held bool
	// TokensRefusedAt is since when Bitrix24 has refused an installed
	// portal's tokens without a break; zero when it does not.
	TokensRefusedAt time.Time
	// EraseWarnedAt is when the admin was warned of the erase; zero when
	// not yet.
	EraseWarnedAt time.Time
	// Recheck: the portal was uninstalled while Bitrix24 only refused its
	// tokens, which are kept to ask Bitrix24 hourly whether the app works
	// again (uninstall.EraseDelay); RecheckClean: the uninstall had CLEAN,
	// so the recheck's end erases the data. UninstalledAt is when the
	// uninstall was taken.
	Recheck, RecheckClean bool
	UninstalledAt         time.Time
	CreatedAt             time.Time
	LastRun               *Run
}

// RecheckUntil is when the recheck of a portal uninstalled on refused
// tokens ends, erasing a CLEAN uninstall's data or keeping the data of one
// without CLEAN; zero when the portal is not in recheck. Bitrix24
// answering nothing then may delay the end (uninstall.RecheckUnanswered).
func (p *PortalRow) RecheckUntil() time.Time {
	if !p.Recheck || p.UninstalledAt.IsZero() {
		return time.Time{}
	}
	return p.UninstalledAt.Add(uninstall.EraseDelay)
}

// EraseAt is when the hourly maintenance erases the data of a portal
// whose tokens Bitrix24 keeps refusing (uninstall.RefusedEraseAt); zero
// when no erase is scheduled. Bitrix24 answering nothing at that moment
// may delay it by up to uninstall.RefusedUnanswered.
func (p *PortalRow) EraseAt() time.Time {
	if p.TokensRefusedAt.IsZero() {
		return time.Time{}
	}
	return uninstall.RefusedEraseAt(p.TokensRefusedAt, p.EraseWarnedAt)
}

// Attention says whether the portal needs someone to look at it.
func (p *PortalRow) Attention() bool {
	return p.NeedsAttention || p.NeedsReconnect || (p.LastRun != nil && p.LastRun.Status == "failed")
}

const portalQuery = `
	SELECT p.id, p.domain, p.member_id, p.install_state, p.activation_state, coalesce(s.learn_url, ''),
	       p.needs_reconnect, p.needs_attention,
	       EXISTS (SELECT 1 FROM portal_alerts a WHERE a.portal_id = p.id AND a.state = 'held' AND a.active),
	       CASE WHEN p.install_state = 'installed' AND p.needs_reconnect THEN p.tokens_refused_at END, p.erase_warned_at,
	       p.install_state = 'uninstalled' AND p.uninstall_recheck, p.uninstall_clean, p.uninstalled_at,
	       p.created_at,
	       r.id, r.trigger, r.status, r.started_at, r.finished_at, r.error
	FROM portals p
	LEFT JOIN portal_settings s ON s.portal_id = p.id
	LEFT JOIN LATERAL (
		SELECT id, trigger, status, started_at, finished_at, error FROM sync_runs
		WHERE portal_id = p.id AND trigger <> 'preview' ORDER BY started_at DESC, id DESC LIMIT 1
	) r ON true`

func scanPortalRow(row pgx.Row) (*PortalRow, error) {
	var p PortalRow
	var (
		runID              *int64
		trig, status, rerr *string
		started            *time.Time
		finished           *time.Time
		refused, warned    *time.Time
		uninstalled        *time.Time
	)
	err := row.Scan(&p.ID, &p.Domain, &p.MemberID, &p.InstallState, &p.ActivationState, &p.LearnURL,
		&p.NeedsReconnect, &p.NeedsAttention, &p.Held, &refused, &warned, &p.Recheck, &p.RecheckClean, &uninstalled,
		&p.CreatedAt, &runID, &trig, &status, &started, &finished, &rerr)
	if err != nil {
		return nil, err
	}
	if uninstalled != nil {
		p.UninstalledAt = *uninstalled
	}
	if refused != nil {
		p.TokensRefusedAt = *refused
	}
	if warned != nil {
		p.EraseWarnedAt = *warned
	}
	if runID != nil {
		p.LastRun = &Run{ID: *runID, Trigger: *trig, Status: *status, StartedAt: *started, FinishedAt: finished, Error: *rerr}
	}
	return &p, nil
}

// The console's portal filters: the states the portals' admins are alerted
// about, and the portals uninstalled on refused tokens that wait for the
// recheck of their uninstall (PortalRow.Recheck).
const (
	FilterNeedsAttention = "needs_attention"
	FilterNoAccess       = "needs_reconnect"
	FilterHeld           = "held"
	FilterRecheck        = "recheck"
)

// PortalFilters lists the filters in the order the console shows them.
var PortalFilters = []string{FilterNeedsAttention, FilterNoAccess, FilterHeld, FilterRecheck}

// ErrBadFilter is a filter PagePortals does not know.
var ErrBadFilter = errors.New("unknown portal filter")

var filterSQL = map[string]string{
	"":                   `true`,
	FilterNeedsAttention: `p.needs_attention`,
	FilterNoAccess:       `p.needs_reconnect`,
	FilterHeld:           `EXISTS (SELECT 1 FROM portal_alerts a WHERE a.portal_id = p.id AND a.state = 'held' AND a.active)`,
	// As portalQuery reads PortalRow.Recheck.
	FilterRecheck: `p.install_state = 'uninstalled' AND p.uninstall_recheck`,
}

// PortalQuery picks the portals a console page lists: a state filter (""
// every portal) and text to find in the domain ("" any).
type PortalQuery struct {
	Filter string
	Search string
}

// PagePortals reads one page of the portals q picks, newest first, with
// their count.
func PagePortals(ctx context.Context, db store.DBTX, q PortalQuery, c store.Cursor, size int) (store.Page[*PortalRow], error) {
	where, ok := filterSQL[q.Filter]
	if !ok {
		return store.Page[*PortalRow]{}, fmt.Errorf("%w %q", ErrBadFilter, q.Filter)
	}
	l := store.List{What: "list portals", Select: portalQuery, CountFrom: "portals p", Where: where,
		At: "p.created_at", ID: "p.id"}
	if q.Search != "" {
		l.Where += ` AND p.domain ILIKE $1`
		l.Args = []any{store.Contains(q.Search)}
	}
	return store.PageOf(ctx, db, l, c, size, scanPortalRow, func(p *PortalRow) store.Key {
		return store.Key{At: p.CreatedAt, ID: p.ID}
	})
}

// GetPortal loads one portal for the console.
func GetPortal(ctx context.Context, db store.DBTX, id int64) (*PortalRow, error) {
	p, err := scanPortalRow(db.QueryRow(ctx, portalQuery+` WHERE p.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load portal: %w", err)
	}
	return p, nil
}
