// Mappings and ownership in the store: sync_mappings, learn_user_owners and learn_user_conflicts.

package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Mappings returns the portal's whole mapping.
func (s *Store) Mappings(ctx context.Context, portalID int64) ([]Mapping, error) {
	return s.readMappings(ctx, portalID, 0, nil)
}

// readMappings reads the portal's mapping into a list of room for about
// size rows. learnID, when set, gives the Learn id of a row as a string the
// caller holds already (the Learn user's own), so that 100,000 rows do not
// each keep a copy; it returns "" for an id it does not know.
func (s *Store) readMappings(ctx context.Context, portalID int64, size int, learnID func(id []byte) string) ([]Mapping, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT kind, b24_id, learn_id, fingerprint, licence_wait_since IS NOT NULL, adopted
		FROM sync_mappings WHERE portal_id = $1 ORDER BY kind, b24_id`, portalID)
	if err != nil {
		return nil, fmt.Errorf("query mappings: %w", err)
	}
	defer rows.Close()
	out := make([]Mapping, 0, size)
	for rows.Next() {
		var m Mapping
		// The row's bytes, valid until the next row: only what is kept is copied.
		var kind, id, fp pgtype.DriverBytes
		if err := rows.Scan(&kind, &m.B24ID, &id, &fp, &m.LicenceWait, &m.Adopted); err != nil {
			return nil, fmt.Errorf("read mappings: %w", err)
		}
		switch Kind(kind) { // the constants, not a copy per row
		case KindUser:
			m.Kind = KindUser
		case KindDepartment:
			m.Kind = KindDepartment
		default:
			m.Kind = Kind(kind)
		}
		if learnID != nil {
			m.LearnID = learnID(id)
		}
		if m.LearnID == "" {
			m.LearnID = string(id)
		}
		m.Fingerprint = string(fp)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read mappings: %w", err)
	}
	return out, nil
}

// userMappingCount is how many users the portal's mapping holds.
func (s *Store) userMappingCount(ctx context.Context, portalID int64) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sync_mappings WHERE portal_id = $1 AND kind = $2`,
		portalID, string(KindUser)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count mappings: %w", err)
	}
	return n, nil
}

// PersonMapping is the stored mapping of one Bitrix24 user, or nil: one
// row by the mapping's key, as the person page asks on every poll.
func (s *Store) PersonMapping(ctx context.Context, portalID, b24ID int64) (*Mapping, error) {
	m := Mapping{Kind: KindUser, B24ID: b24ID}
	err := s.pool.QueryRow(ctx,
		`SELECT learn_id, fingerprint, licence_wait_since IS NOT NULL, adopted
		FROM sync_mappings WHERE portal_id = $1 AND kind = $2 AND b24_id = $3`,
		portalID, string(KindUser), b24ID).Scan(&m.LearnID, &m.Fingerprint, &m.LicenceWait, &m.Adopted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read mapping of user %d: %w", b24ID, err)
	}
	return &m, nil
}

// adopted is how the mapping was made, so it changes only with the Learn
// user: a later step on the same link never clears it.
const upsertMapping = `INSERT INTO sync_mappings (portal_id, kind, b24_id, learn_id, fingerprint, adopted, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, now())
	ON CONFLICT (portal_id, kind, b24_id)
	DO UPDATE SET learn_id = EXCLUDED.learn_id, fingerprint = EXCLUDED.fingerprint,
		adopted = CASE WHEN sync_mappings.learn_id = EXCLUDED.learn_id THEN sync_mappings.adopted ELSE EXCLUDED.adopted END,
		updated_at = now()`

// departmentSent records, before a department create goes to Learn, that
// it is sent: a mapping row without a Learn id, which the create's own
// record replaces. A run killed between the two leaves it, and the next
// run's plan then knows that a department of this name without the code
// under the wanted parent may be the one it made (builder.codeless;
// docs/learn-api.md, "Department codes"). A row naming a department Learn
// no longer has is replaced: the plan creates only what no mapping finds.
func (s *Store) departmentSent(ctx context.Context, portalID, b24ID int64) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO sync_mappings (portal_id, kind, b24_id, learn_id, fingerprint, updated_at)
		VALUES ($1, 'department', $2, '', '', now())
		ON CONFLICT (portal_id, kind, b24_id) DO UPDATE SET learn_id = '', fingerprint = '', updated_at = now()`,
		portalID, b24ID); err != nil {
		return fmt.Errorf("record department create: %w", err)
	}
	return nil
}

// The applier claimed an existing user before writing to it; a user it
// created is claimed here, with its mapping.
const insertOwner = `INSERT INTO learn_user_owners (learn_account, learn_id, portal_id)
	VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`

// AccountKey is how a Learn account address is named: lowercased, without
// scheme and trailing slash, so that two portals typing the same account
// differently share it. A portal's account is AccountOf.
func AccountKey(learnURL string) string {
	u := strings.ToLower(strings.TrimSpace(learnURL))
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	return strings.TrimRight(u, "/")
}

// keyMark joins an address and a Client ID in an account key; a saved
// address is an origin, which holds no '#'.
const keyMark = "#key:"

// AccountOf is the account a portal's settings prove, as the ownership
// tables, the remembered refusals and "the account counts as shared" name
// it: the address (AccountKey) when the portal signs in with a password;
// with an API key (clientID not "") the address and the Client ID, as the
// key's token picks the account, not the address typed (docs/learn-api.md,
// "One account, several portals"). It is the one rule: readers that narrow
// rows by address in SQL decide with it in Go.
func AccountOf(learnURL, clientID string) string {
	a := AccountKey(learnURL)
	if id := strings.TrimSpace(clientID); id != "" {
		a += keyMark + id
	}
	return a
}

// Account is the account the settings prove (AccountOf).
func (s Settings) Account() string { return AccountOf(s.LearnURL, s.LearnClientID) }

// accountAddress is the address part of an account key, which SQL narrows
// rows by.
func accountAddress(account string) string {
	a, _, _ := strings.Cut(account, keyMark)
	return a
}

// settingsClientID is portal_settings' Client ID when a whole key is saved
// (settings.Settings.HasAPIKey), else empty: what AccountOf takes.
const settingsClientID = `CASE WHEN octet_length(learn_client_secret) > 0 THEN learn_client_id ELSE '' END`

// Owners reads who owns the account's Learn users: the ids this portal owns,
// and the others with their owner portal's domain.
func (s *Store) Owners(ctx context.Context, account string, portalID int64) (own map[string]bool, foreign map[string]string, err error) {
	own, err = s.owned(ctx, `SELECT learn_id FROM learn_user_owners WHERE learn_account = $1 AND portal_id = $2`,
		account, portalID)
	if err != nil {
		return nil, nil, err
	}
	if foreign, err = s.Foreign(ctx, account, portalID); err != nil {
		return nil, nil, err
	}
	return own, foreign, nil
}

// Owned reads which of the account's Learn users ids this portal owns. A
// run asks about the users its plan writes to, once the plan is built:
// none in a run that changes nothing, not the 100,000 it owns.
func (s *Store) Owned(ctx context.Context, account string, portalID int64, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return map[string]bool{}, nil
	}
	return s.owned(ctx, `SELECT learn_id FROM learn_user_owners
		WHERE learn_account = $1 AND portal_id = $2 AND learn_id = ANY($3)`, account, portalID, ids)
}

func (s *Store) owned(ctx context.Context, query string, args ...any) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query owned users: %w", err)
	}
	defer rows.Close()
	own := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read owned users: %w", err)
		}
		own[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read owned users: %w", err)
	}
	return own, nil
}

// Foreign reads the account's Learn users other portals own, with their
// owner portal's domain.
func (s *Store) Foreign(ctx context.Context, account string, portalID int64) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.learn_id, p.domain
		FROM learn_user_owners o JOIN portals p ON p.id = o.portal_id WHERE o.learn_account = $1 AND o.portal_id <> $2`,
		account, portalID)
	if err != nil {
		return nil, fmt.Errorf("query owners: %w", err)
	}
	defer rows.Close()
	foreign := map[string]string{}
	for rows.Next() {
		var id, domain string
		if err := rows.Scan(&id, &domain); err != nil {
			return nil, fmt.Errorf("read owners: %w", err)
		}
		foreign[id] = domain
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read owners: %w", err)
	}
	return foreign, nil
}

// OtherSignIns reads the Learn logins the other portals whose settings name
// the account sign in with (their saved Learn admin e-mails): those Learn
// users are no employee's either (Options.OtherSignIns). The database only
// narrows the rows to addresses containing the account's; AccountOf, the
// one rule for it, decides.
func (s *Store) OtherSignIns(ctx context.Context, account string, portalID int64) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT learn_url, `+settingsClientID+`, learn_email FROM portal_settings
		WHERE portal_id <> $1 AND learn_email <> '' AND strpos(lower(learn_url), $2) > 0`, portalID, accountAddress(account))
	if err != nil {
		return nil, fmt.Errorf("query other sign-ins: %w", err)
	}
	var out []string
	var learnURL, clientID, email string
	_, err = pgx.ForEachRow(rows, []any{&learnURL, &clientID, &email}, func() error {
		if AccountOf(learnURL, clientID) == account && !slices.Contains(out, email) {
			out = append(out, email)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read other sign-ins: %w", err)
	}
	return out, nil
}

// OtherDepartments reads the Learn departments the mappings of the other
// portals whose settings name the account hold (Actual.OtherDepartments).
// As in OtherSignIns, the database narrows the rows and AccountOf decides.
func (s *Store) OtherDepartments(ctx context.Context, account string, portalID int64) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.learn_url, `+settingsClientID+`, m.learn_id
		FROM sync_mappings m JOIN portal_settings s ON s.portal_id = m.portal_id
		WHERE m.portal_id <> $1 AND m.kind = 'department' AND strpos(lower(s.learn_url), $2) > 0`, portalID, accountAddress(account))
	if err != nil {
		return nil, fmt.Errorf("query other departments: %w", err)
	}
	out := map[string]bool{}
	var learnURL, clientID, id string
	_, err = pgx.ForEachRow(rows, []any{&learnURL, &clientID, &id}, func() error {
		if AccountOf(learnURL, clientID) == account {
			out[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read other departments: %w", err)
	}
	return out, nil
}

// ErrOwnedElsewhere is a Learn user another portal owns.
type ErrOwnedElsewhere struct {
	LearnID string
	Domain  string // the owner portal's domain
}

func (e *ErrOwnedElsewhere) Error() string {
	return fmt.Sprintf("Learn user %s belongs to portal %s, which synced it first; this portal leaves it alone", e.LearnID, e.Domain)
}

// Claim makes the portal the owner of a Learn user unless another portal
// owns it already, which it reports as *ErrOwnedElsewhere. The primary key
// decides between concurrent claims.
func (s *Store) Claim(ctx context.Context, account, learnID string, portalID int64) error {
	var owner int64
	var domain string
	// DO UPDATE (a no-op) rather than DO NOTHING: it returns the winner's
	// row even when a concurrent claim committed after this statement began.
	err := s.pool.QueryRow(ctx, `INSERT INTO learn_user_owners (learn_account, learn_id, portal_id) VALUES ($1, $2, $3)
		ON CONFLICT (learn_account, learn_id) DO UPDATE SET portal_id = learn_user_owners.portal_id
		RETURNING portal_id`, account, learnID, portalID).Scan(&owner)
	if err != nil {
		return fmt.Errorf("claim learn user: %w", err)
	}
	if owner == portalID {
		return nil
	}
	if err := s.pool.QueryRow(ctx, `SELECT domain FROM portals WHERE id = $1`, owner).Scan(&domain); err != nil {
		return fmt.Errorf("read owner portal: %w", err)
	}
	return &ErrOwnedElsewhere{LearnID: learnID, Domain: domain}
}

// Conflict is an employee of one portal whose Learn user another portal owns.
type Conflict struct {
	B24ID   int64
	LearnID string
}

// RecordConflicts replaces the portal's recorded conflicts in the account
// with this run's, so the owners' reports can name this portal.
func (s *Store) RecordConflicts(ctx context.Context, account string, portalID int64, cs []Conflict) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids := make([]int64, len(cs))
		for i, c := range cs {
			ids[i] = c.B24ID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM learn_user_conflicts WHERE portal_id = $1 AND NOT (b24_id = ANY($2))`,
			portalID, ids); err != nil {
			return fmt.Errorf("clear conflicts: %w", err)
		}
		for _, c := range cs {
			if _, err := tx.Exec(ctx, `INSERT INTO learn_user_conflicts (learn_account, learn_id, portal_id, b24_id, owner_portal_id)
				SELECT $1, $2, $3, $4, o.portal_id FROM learn_user_owners o WHERE o.learn_account = $1 AND o.learn_id = $2
				ON CONFLICT (portal_id, b24_id) DO UPDATE SET learn_account = EXCLUDED.learn_account,
					learn_id = EXCLUDED.learn_id, owner_portal_id = EXCLUDED.owner_portal_id, seen_at = now()`,
				account, c.LearnID, portalID, c.B24ID); err != nil {
				return fmt.Errorf("record conflict: %w", err)
			}
		}
		return nil
	})
}

// Contest is a Learn user this portal owns that another portal's employee
// also matches.
type Contest struct {
	B24ID   int64 // this portal's employee
	LearnID string
	Domain  string // the other portal
}

// Contested lists the portal's Learn users in the account that other
// portals' last runs reported as conflicts.
func (s *Store) Contested(ctx context.Context, account string, portalID int64) ([]Contest, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(m.b24_id, 0), c.learn_id, p.domain
		FROM learn_user_conflicts c JOIN portals p ON p.id = c.portal_id
		LEFT JOIN sync_mappings m ON m.portal_id = c.owner_portal_id AND m.kind = 'user' AND m.learn_id = c.learn_id
		WHERE c.owner_portal_id = $1 AND c.learn_account = $2 ORDER BY c.learn_id, p.domain`, portalID, account)
	if err != nil {
		return nil, fmt.Errorf("query contested users: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Contest, error) {
		var c Contest
		return c, r.Scan(&c.B24ID, &c.LearnID, &c.Domain)
	})
	if err != nil {
		return nil, fmt.Errorf("read contested users: %w", err)
	}
	return out, nil
}

const upsertRefusal = `INSERT INTO sync_refusals (portal_id, kind, b24_id, part, fingerprint, reason, learn_account)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (portal_id, kind, b24_id, part)
	DO UPDATE SET fingerprint = EXCLUDED.fingerprint, reason = EXCLUDED.reason,
		learn_account = EXCLUDED.learn_account, refused_at = now()`

// refusals reads the portal's refusals that still hold (refusals.go): given
// by Learn account (its AccountOf key) within refusalTTL. A refused
// deactivation (PartStatus) expires too, though the person's return
// forgets it sooner (forgetLeaves): one remembered for ever would keep a
// leaver's Learn login working unseen once the cause (a supervisor's
// credentials, since replaced) is gone. Those past refusalTTL are deleted
// first: no run reads them again.
func (s *Store) refusals(ctx context.Context, portalID int64, account string) ([]Refusal, error) {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sync_refusals WHERE portal_id = $1 AND refused_at <= now() - $2::interval`,
		portalID, refusalTTL); err != nil {
		return nil, fmt.Errorf("prune refusals: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT kind, b24_id, part, fingerprint, reason FROM sync_refusals
		WHERE portal_id = $1 AND learn_account = $2 AND refused_at > now() - $3::interval
		ORDER BY kind, b24_id, part`, portalID, account, refusalTTL)
	if err != nil {
		return nil, fmt.Errorf("query refusals: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Refusal, error) {
		var f Refusal
		var kind, part string
		err := r.Scan(&kind, &f.B24ID, &part, &f.Fingerprint, &f.Reason)
		f.Kind, f.Part, f.Account = Kind(kind), Part(part), account
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("read refusals: %w", err)
	}
	return out, nil
}

// forgetLeaves forgets the refused deactivations (PartStatus) of the
// Bitrix24 users ids, who are synced again: their next leave is sent.
func (s *Store) forgetLeaves(ctx context.Context, portalID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM sync_refusals WHERE portal_id = $1 AND kind = $2 AND part = $3 AND b24_id = ANY($4)`,
		portalID, string(KindUser), string(PartStatus), ids); err != nil {
		return fmt.Errorf("forget refused deactivations: %w", err)
	}
	return nil
}
