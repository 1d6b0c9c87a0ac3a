// Package activation is the admin's activation request (validated,
// rate-limited, stored with its forwarding job in one transaction), its
// forwarding to the iSpring managers by e-mail and as a lead in iSpring's
// Bitrix24 CRM, and the portal's activation state as the managers set it.
package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/clientaddr"
	"b24learn/internal/manager"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// Status is a request's state as the managers move it, as stored in
// activation_requests.status.
type Status string

const (
	StatusNew       Status = "new"
	StatusContacted Status = "contacted"
	StatusActivated Status = "activated"
	StatusRejected  Status = "rejected"
)

// Statuses lists them in workflow order.
var Statuses = []Status{StatusNew, StatusContacted, StatusActivated, StatusRejected}

// ParseStatus returns the status s names, or false when it names none.
func ParseStatus(s string) (Status, bool) {
	st := Status(s)
	return st, slices.Contains(Statuses, st)
}

// Delivery is the state of one forwarding channel of a request.
type Delivery string

const (
	DeliveryPending   Delivery = "pending"
	DeliveryDelivered Delivery = "delivered"
	DeliveryFailed    Delivery = "failed"
	DeliverySkipped   Delivery = "skipped"
)

// Skip is why a channel was skipped, or why a pending one waits
// (Channel.Skip).
type Skip string

const (
	// SkipNotConfigured: the channel's settings are missing (SMTP_URL or
	// MANAGER_EMAILS; LEAD_WEBHOOK_URL).
	SkipNotConfigured Skip = "not_configured"
	// SkipNoRecipients: every address on MANAGER_EMAILS has a disabled
	// console account (manager.DisabledAddrs), so nobody was e-mailed.
	SkipNoRecipients Skip = "no_recipients"
	// SkipOverLimit: the hourly bound on that channel across every portal
	// (Forwarder.Bounds) was reached. Not final: the channel stays pending
	// and is sent once the hour is over.
	SkipOverLimit Skip = "over_limit"
)

// Summary is what the managers need to know about the portal's setup.
type Summary struct {
	LearnURL         string  `json:"learn_url"`
	Departments      []int64 `json:"departments"`          // selected Bitrix24 department ids
	Excluded         []int64 `json:"excluded"`             // sub-departments cut out
	EmployeesInScope int     `json:"employees_in_scope"`   // -1 when not known yet
	FirstRun         string  `json:"first_run,omitempty"`  // "06:00" UTC
	SecondRun        string  `json:"second_run,omitempty"` // "" when none
	SendLoginEmail   bool    `json:"send_login_email"`
	HeadsAsManagers  bool    `json:"heads_as_managers"`
	ParentHeads      bool    `json:"parent_heads_as_supervisors"`
}

// Channel is the delivery state of one channel.
type Channel struct {
	State    Delivery
	Attempts int
	Error    string
	At       *time.Time
	// Skip says why a skipped channel was skipped (SkipNotConfigured,
	// SkipNoRecipients), or why a pending one waits (SkipOverLimit); ""
	// for one skipped before the reason was kept.
	Skip Skip
}

// Request is one stored activation request.
type Request struct {
	ID           int64
	PortalID     int64
	PortalDomain string
	B24UserID    int64
	Contact
	Summary       Summary
	Status        Status
	Notes         string
	Revision      int
	Submissions   int
	EmailDelivery Channel
	CRMDelivery   Channel
	CRMLeadID     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Open says whether a repeat submission would update this request.
func (r *Request) Open() bool { return r.Status == StatusNew || r.Status == StatusContacted }

// Failed says whether a channel gave up after its last attempt.
func (r *Request) Failed() bool {
	return r.EmailDelivery.State == DeliveryFailed || r.CRMDelivery.State == DeliveryFailed
}

// ErrNotFound is returned for a request, portal or manager that does not exist.
var ErrNotFound = errors.New("not found")

// Submission is one press of "Send request".
type Submission struct {
	PortalID  int64
	B24UserID int64
	IP        string
	Contact   Contact
	// EmployeesInScope is the number of employees the selected departments
	// hold, when the caller knows it; nil leaves it unknown.
	EmployeesInScope *int
	// CountEmployees, when set and EmployeesInScope is nil, counts them:
	// a read of the portal's whole org, so Submit asks it only once the
	// submission is valid and within the limits.
	CountEmployees func(context.Context) *int
}

// Enqueue inserts the forwarding job for a request inside tx. The caller
// (a handler) supplies it, so this package never depends on the job package.
type Enqueue func(ctx context.Context, tx pgx.Tx, portalID, requestID int64) error

// Result says what Submit did.
type Result struct {
	RequestID int64
	Updated   bool // an open request was updated instead of a new one added
	// Unchanged: the open request already said all this (contact details
	// equal up to case of the e-mail, same settings) and nothing of it
	// failed, so nothing is forwarded again.
	Unchanged bool
}

// sameAsOpen counts a repeat of the portal's open request that changes
// nothing and returns its id; 0 when there is no open request, it differs,
// or a channel of it failed (a repeat is then the admin's way to try again).
// The managers already have the details: an e-mail and a lead more would
// tell them nothing, and a script pressing "Send" must not multiply them.
// A changed request is forwarded again however soon: a corrected phone is
// what the managers need, and the per-portal limit and the bounds across
// portals (Forwarder.Bounds) cap how often.
func sameAsOpen(ctx context.Context, tx pgx.Tx, portalID int64, c Contact, summary []byte, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `
		SELECT id FROM activation_requests
		WHERE portal_id = $1 AND status IN ('new', 'contacted')
			AND name = $2 AND lower(email) = lower($3) AND phone = $4 AND summary = $5::jsonb
			AND email_state <> 'failed' AND crm_state <> 'failed'
		FOR UPDATE`, portalID, c.Name, c.Email, c.Phone, summary).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("compare with the open activation request: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE activation_requests SET submissions = submissions + 1, updated_at = $2 WHERE id = $1`,
		id, now); err != nil {
		return 0, fmt.Errorf("count unchanged activation request: %w", err)
	}
	return id, nil
}

// Submit validates s, applies the rate limits, and stores the request (or
// updates the portal's open one) together with its forwarding job in one
// transaction, so a crash can lose neither. The portal's activation state
// becomes 'requested' unless it is active already. Errors: FieldErrors for
// bad input, *RateLimitedError over a limit.
func Submit(ctx context.Context, pool *pgxpool.Pool, limits manager.Limits, now time.Time, s Submission, enqueue Enqueue) (Result, error) {
	c, err := Validate(s.Contact)
	if err != nil {
		return Result{}, err
	}
	// Counted outside the transaction so a refused or failed attempt still
	// counts; only valid submissions count, so typos cost nothing.
	if err := manager.Hit(ctx, pool, fmt.Sprintf("activation:portal:%d", s.PortalID), limits.SubmitPerPortal, now); err != nil {
		return Result{}, err
	}
	if s.IP != "" {
		// Keyed by the subscriber's address: one IPv6 /64 is one bucket.
		if err := manager.Hit(ctx, pool, "activation:ip:"+clientaddr.Key(s.IP), limits.SubmitPerIP, now); err != nil {
			return Result{}, err
		}
	}
	if s.EmployeesInScope == nil && s.CountEmployees != nil {
		s.EmployeesInScope = s.CountEmployees(ctx)
	}
	var res Result
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		summary, err := LoadSummary(ctx, tx, s.PortalID)
		if err != nil {
			return err
		}
		if s.EmployeesInScope != nil {
			summary.EmployeesInScope = *s.EmployeesInScope
		}
		sj, err := json.Marshal(summary)
		if err != nil {
			return fmt.Errorf("encode summary: %w", err)
		}
		same, err := sameAsOpen(ctx, tx, s.PortalID, c, sj, now)
		if err != nil || same != 0 {
			res = Result{RequestID: same, Updated: true, Unchanged: true}
			return err
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO activation_requests (portal_id, b24_user_id, name, email, phone, summary, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
			ON CONFLICT (portal_id) WHERE status IN ('new', 'contacted') DO UPDATE SET
				b24_user_id = EXCLUDED.b24_user_id, name = EXCLUDED.name, email = EXCLUDED.email,
				phone = EXCLUDED.phone, summary = EXCLUDED.summary,
				revision = activation_requests.revision + 1,
				submissions = activation_requests.submissions + 1,
				email_state = 'pending', email_attempts = 0, email_error = '', email_skip = '',
				crm_state = 'pending', crm_attempts = 0, crm_error = '', crm_skip = '',
				updated_at = EXCLUDED.updated_at
			RETURNING id, submissions > 1`,
			s.PortalID, s.B24UserID, c.Name, c.Email, c.Phone, sj, now).Scan(&res.RequestID, &res.Updated)
		if err != nil {
			return fmt.Errorf("store activation request: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE portals SET activation_state = $3, updated_at = $2
			WHERE id = $1 AND activation_state <> $4`, s.PortalID, now, store.ActivationRequested, store.ActivationActive); err != nil {
			return fmt.Errorf("mark portal requested: %w", err)
		}
		if err := enqueue(ctx, tx, s.PortalID, res.RequestID); err != nil {
			return fmt.Errorf("enqueue forwarding: %w", err)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// LoadSummary reads the portal's settings into a Summary; a portal that has
// not saved its settings yet gets an empty one.
func LoadSummary(ctx context.Context, db store.DBTX, portalID int64) (Summary, error) {
	sum := Summary{EmployeesInScope: -1}
	st, err := settings.Load(ctx, db, nil, portalID)
	if err != nil {
		return sum, fmt.Errorf("load settings summary: %w", err)
	}
	if !st.Saved {
		return sum, nil
	}
	sum.LearnURL, sum.SendLoginEmail, sum.HeadsAsManagers, sum.ParentHeads =
		st.LearnURL, st.SendLoginEmail, st.HeadsAsManagers, st.ParentHeadsAsSupervisors
	sum.FirstRun, sum.SecondRun = st.Schedule.First(), st.Schedule.Second()
	sum.Departments, sum.Excluded = st.Departments.Selected, st.Departments.Excluded
	return sum, nil
}

const requestColumns = `r.id, r.portal_id, p.domain, r.b24_user_id, r.name, r.email, r.phone, r.summary,
	r.status, r.notes, r.revision, r.submissions,
	r.email_state, r.email_attempts, r.email_error, r.email_at, r.email_skip,
	r.crm_state, r.crm_attempts, r.crm_error, r.crm_at, r.crm_skip, r.crm_lead_id, r.created_at, r.updated_at`

func scanRequest(row pgx.Row) (*Request, error) {
	var r Request
	var sum []byte
	err := row.Scan(&r.ID, &r.PortalID, &r.PortalDomain, &r.B24UserID, &r.Name, &r.Email, &r.Phone, &sum,
		&r.Status, &r.Notes, &r.Revision, &r.Submissions,
		&r.EmailDelivery.State, &r.EmailDelivery.Attempts, &r.EmailDelivery.Error, &r.EmailDelivery.At, &r.EmailDelivery.Skip,
		&r.CRMDelivery.State, &r.CRMDelivery.Attempts, &r.CRMDelivery.Error, &r.CRMDelivery.At, &r.CRMDelivery.Skip, &r.CRMLeadID, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return nil, err
	}
	r.Summary.EmployeesInScope = -1
	_ = json.Unmarshal(sum, &r.Summary) // written by us; an odd row still shows
	return &r, nil
}

// GetRequest loads one request of one portal.
func GetRequest(ctx context.Context, db store.DBTX, portalID, id int64) (*Request, error) {
	r, err := scanRequest(db.QueryRow(ctx, `SELECT `+requestColumns+`
		FROM activation_requests r JOIN portals p ON p.id = r.portal_id
		WHERE r.portal_id = $1 AND r.id = $2`, portalID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load activation request: %w", err)
	}
	return r, nil
}

// LatestRequest is the portal's most recent request, for the status panel;
// nil when it never sent one.
func LatestRequest(ctx context.Context, db store.DBTX, portalID int64) (*Request, error) {
	r, err := scanRequest(db.QueryRow(ctx, `SELECT `+requestColumns+`
		FROM activation_requests r JOIN portals p ON p.id = r.portal_id
		WHERE r.portal_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT 1`, portalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load latest activation request: %w", err)
	}
	return r, nil
}

// ListRequests lists requests for the console, newest first; status ""
// means all, portalID 0 every portal. The console is cross-tenant by design:
// managers see every portal.
func ListRequests(ctx context.Context, db store.DBTX, status Status, portalID int64, limit int) ([]*Request, error) {
	return store.QueryAll(ctx, db, "list activation requests", scanRequest, `SELECT `+requestColumns+`
		FROM activation_requests r JOIN portals p ON p.id = r.portal_id
		WHERE ($1 = '' OR r.status = $1) AND ($2 = 0 OR r.portal_id = $2)
		ORDER BY r.created_at DESC, r.id DESC LIMIT $3`, status, portalID, limit)
}

// RequestQuery picks the requests a console page lists: a status (""
// every status) and text to find in the portal's domain or the contact's
// e-mail ("" any).
type RequestQuery struct {
	Status Status
	Search string
}

// PageRequests reads one page of the requests q picks, newest first by
// when they were first sent (a key that never changes, so a request saved
// while a manager pages does not jump between pages), with their count.
// Like ListRequests it spans every portal.
func PageRequests(ctx context.Context, db store.DBTX, q RequestQuery, c store.Cursor, size int) (store.Page[*Request], error) {
	const from = `activation_requests r JOIN portals p ON p.id = r.portal_id`
	l := store.List{What: "list activation requests", Select: `SELECT ` + requestColumns + ` FROM ` + from,
		CountFrom: from, Where: `$1 = '' OR r.status = $1`, Args: []any{q.Status}, At: "r.created_at", ID: "r.id"}
	if q.Search != "" {
		l.Where = `(` + l.Where + `) AND (p.domain ILIKE $2 OR r.email ILIKE $2)`
		l.Args = append(l.Args, store.Contains(q.Search))
	}
	return store.PageOf(ctx, db, l, c, size, scanRequest, func(r *Request) store.Key {
		return store.Key{At: r.CreatedAt, ID: r.ID}
	})
}
