package alert

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"golang.org/x/net/idna"

	"b24learn/internal/activation"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/settings"
	"b24learn/internal/store"
)

// The alert address is a portal admin's own entry and anyone can make a
// portal, so alerts go only to an address whose owner confirmed it (double
// opt-in): saving a new address queues a confirmation e-mail (ConfirmArgs)
// with a link to PUBLIC_URL/alerts/confirm; pressing the button there
// (Confirm) records the address in alert_confirmed for the portal.
const (
	// ConfirmPortalCap confirmation e-mails per portal in ConfirmWindow.
	ConfirmPortalCap = 3
	// ConfirmRecipientCap confirmation e-mails to one recipient in
	// ConfirmWindow, from all portals together; it refuses only portals
	// iSpring has not activated (RequestConfirmation says why).
	ConfirmRecipientCap = 3
	ConfirmWindow       = 24 * time.Hour
	// TokenTTL is how long a confirmation link works.
	TokenTTL = 7 * 24 * time.Hour
	// ConfirmPath is the link's path under PUBLIC_URL.
	ConfirmPath = "/alerts/confirm"
	// maxTokenLen bounds what is hashed of a presented token; ours are 43.
	maxTokenLen = 100
)

var (
	// ErrCapped: the portal or the recipient reached its cap of
	// confirmation e-mails; nothing was queued.
	ErrCapped = errors.New("confirmation e-mail cap reached")
	// ErrTokenUnknown: no such link (mistyped, forged or long expired).
	ErrTokenUnknown = errors.New("unknown confirmation token")
	// ErrTokenExpired: the link is older than TokenTTL.
	ErrTokenExpired = errors.New("confirmation token expired")
	// ErrTokenUsed: the link was used already.
	ErrTokenUsed = errors.New("confirmation token already used")
)

// Key is how addresses are compared: lower-cased. Mail servers treat the
// domain without case and in practice the local part too.
func Key(address string) string { return strings.ToLower(strings.TrimSpace(address)) }

// recipient is the cap's key for one mailbox: the address lower-cased and
// without a "+tag" in its local part, which most providers deliver to the
// same mailbox; the domain as mail servers resolve it (IDNA: full-width,
// circled and invisible characters fold, Unicode and punycode are one);
// Gmail's local part without its dots, which Gmail ignores; and Yandex's
// domains as one, its dots and hyphens alike. Folding two mailboxes into one
// key only makes the cap stricter.
func recipient(address string) string {
	k := Key(address)
	at := strings.LastIndexByte(k, '@')
	if at < 0 {
		return k
	}
	local, domain := k[:at], k[at+1:]
	if plus := strings.IndexByte(local, '+'); plus > 0 {
		local = local[:plus]
	}
	if d, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = d
	}
	domain = strings.TrimSuffix(domain, ".")
	switch {
	case domain == "googlemail.com" || domain == "gmail.com":
		domain, local = "gmail.com", strings.ReplaceAll(local, ".", "")
	case yandexDomain(domain):
		// Yandex delivers name.surname and name-surname to one mailbox,
		// under each of its domains.
		domain, local = "yandex.ru", strings.ReplaceAll(local, ".", "-")
	}
	return local + "@" + domain
}

// yandexDomain says whether domain is one of the domains of a Yandex mailbox.
func yandexDomain(domain string) bool {
	switch domain {
	case "yandex.ru", "ya.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "narod.ru":
		return true
	}
	return false
}

// AddressState is what the settings page says of the saved address.
type AddressState string

const (
	StateNone      AddressState = ""          // no address saved
	StateConfirmed AddressState = "confirmed" // alerts go to it
	StatePending   AddressState = "pending"   // a link was sent, not yet used
	StateUnsent    AddressState = "unsent"    // never sent a link (saved before the opt-in, or capped)
)

// AddressStateOf says whether the portal's address is confirmed, waiting for its
// link, or neither.
func AddressStateOf(ctx context.Context, db store.DBTX, portalID int64, address string) (AddressState, error) {
	if strings.TrimSpace(address) == "" {
		return StateNone, nil
	}
	var confirmed, sent bool
	err := db.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM alert_confirmed WHERE portal_id = $1 AND address = $2),
		EXISTS (SELECT 1 FROM alert_confirm_tokens WHERE portal_id = $1 AND address = $2 AND used_at IS NULL AND expires_at > now())
		OR EXISTS (SELECT 1 FROM alert_confirm_sends WHERE portal_id = $1 AND address = $2)`,
		portalID, Key(address)).Scan(&confirmed, &sent)
	if err != nil {
		return "", fmt.Errorf("read alert address state of portal %d: %w", portalID, err)
	}
	switch {
	case confirmed:
		return StateConfirmed, nil
	case sent:
		return StatePending, nil
	}
	return StateUnsent, nil
}

// Confirmed reports whether alerts of the portal may go to address.
func Confirmed(ctx context.Context, db store.DBTX, portalID int64, address string) (bool, error) {
	var ok bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alert_confirmed WHERE portal_id = $1 AND address = $2)`,
		portalID, Key(address)).Scan(&ok); err != nil {
		return false, fmt.Errorf("read alert address confirmation of portal %d: %w", portalID, err)
	}
	return ok, nil
}

// RequestConfirmation queues a confirmation e-mail to address in lang,
// within the caps: ErrCapped when the portal or the recipient reached
// theirs. Call it in the transaction that saved the address, with the
// portal row locked (settings.Save locks it), so the portal's count is not
// raced; the recipient's count is serialised by an advisory lock.
//
// The recipient's cap is shared by every portal, and anyone can make one:
// a single new portal, saving a victim's address and pressing "send the
// link" twice, fills it for ConfirmWindow, again every day, in advance of
// anything the victim's own portal asks, so the mailbox's rightful admin
// could never get a link. So the shared cap refuses only portals iSpring
// has not activated (free to make, and without syncs to alert about); an
// activated portal, which a manager reviewed and switched on, is bounded by
// its own cap alone, which nobody outside its admins can spend. Its sends
// still count against the recipient's cap for the other portals.
func RequestConfirmation(ctx context.Context, tx pgx.Tx, ins Inserter, portalID int64, address, lang string) error {
	p, err := store.GetPortal(ctx, tx, portalID)
	if err != nil {
		return fmt.Errorf("read portal %d: %w", portalID, err)
	}
	rcpt := recipient(address)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('alert-confirm:' || $1, 0))`, rcpt); err != nil {
		return fmt.Errorf("lock confirmation recipient: %w", err)
	}
	// Rows older than twice the window are no longer counted.
	if _, err := tx.Exec(ctx, `DELETE FROM alert_confirm_sends WHERE (portal_id = $1 OR recipient = $2)
		AND sent_at < now() - 2 * $3::interval`, portalID, rcpt, ConfirmWindow); err != nil {
		return fmt.Errorf("prune confirmation sends: %w", err)
	}
	var byPortal, byRecipient int
	if err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM alert_confirm_sends WHERE portal_id = $1 AND sent_at > now() - $3::interval),
		(SELECT count(*) FROM alert_confirm_sends WHERE recipient = $2 AND sent_at > now() - $3::interval)`,
		portalID, rcpt, ConfirmWindow).Scan(&byPortal, &byRecipient); err != nil {
		return fmt.Errorf("count confirmation sends: %w", err)
	}
	if byPortal >= ConfirmPortalCap || (byRecipient >= ConfirmRecipientCap && !p.Activated()) {
		return ErrCapped
	}
	res, err := ins.InsertTx(ctx, tx, ConfirmArgs{PortalID: portalID, Address: address, Lang: lang}, nil)
	if err != nil {
		return fmt.Errorf("queue alert address confirmation of portal %d: %w", portalID, err)
	}
	if res.UniqueSkippedAsDuplicate {
		return nil // the e-mail already waiting is this one
	}
	if _, err := tx.Exec(ctx, `INSERT INTO alert_confirm_sends (portal_id, address, recipient) VALUES ($1, $2, $3)`,
		portalID, Key(address), rcpt); err != nil {
		return fmt.Errorf("record confirmation send: %w", err)
	}
	return nil
}

// ConfirmArgs is one confirmation e-mail. The token is made when the job
// runs, so its raw form is never stored (not even in the job's args).
type ConfirmArgs struct {
	PortalID int64  `json:"portal_id" river:"unique"`
	Address  string `json:"address" river:"unique"`
	Lang     string `json:"lang"`
}

func (ConfirmArgs) Kind() string { return "alert_confirm" }

func (ConfirmArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.System, MaxAttempts: attempts, UniqueOpts: queues.WaitingOnce()}
}

// ConfirmWorker sends the confirmation e-mails.
type ConfirmWorker struct {
	river.WorkerDefaults[ConfirmArgs]
	Log  *slog.Logger
	Pool *pgxpool.Pool
	// Mail is nil when SMTP_URL is unset: the jobs complete unsent.
	Mail Sender
	// PublicURL is PUBLIC_URL, the links' base ("" sends none).
	PublicURL string
}

// Timeout covers one SMTP session, bounded at 30 s by the mailer.
func (w *ConfirmWorker) Timeout(*river.Job[ConfirmArgs]) time.Duration { return time.Minute }

// Work makes a token, stores its hash and e-mails the link, while the
// address is still the portal's and unconfirmed. A retried send makes a
// new token; one that never arrived only expires.
func (w *ConfirmWorker) Work(ctx context.Context, job *river.Job[ConfirmArgs]) error {
	a := job.Args
	log := w.Log.With("portal_id", a.PortalID)
	st, err := settings.Load(ctx, w.Pool, nil, a.PortalID)
	if err != nil {
		return err
	}
	if Key(st.AlertEmail) != Key(a.Address) {
		log.InfoContext(ctx, "alert address confirmation not sent: the address changed since")
		return nil
	}
	if ok, err := Confirmed(ctx, w.Pool, a.PortalID, a.Address); err != nil || ok {
		return err
	}
	if w.Mail == nil || w.PublicURL == "" {
		log.WarnContext(ctx, "alert address confirmation not sent: SMTP_URL or PUBLIC_URL is not set")
		return nil
	}
	var domain string
	if err := w.Pool.QueryRow(ctx, `SELECT domain FROM portals WHERE id = $1`, a.PortalID).Scan(&domain); err != nil {
		return fmt.Errorf("read portal %d: %w", a.PortalID, err)
	}
	raw, hash, err := newToken()
	if err != nil {
		return err
	}
	// Links long expired are of no use even for their error page.
	if _, err := w.Pool.Exec(ctx, `DELETE FROM alert_confirm_tokens WHERE portal_id = $1 AND expires_at < now() - $2::interval`,
		a.PortalID, TokenTTL); err != nil {
		return fmt.Errorf("prune confirmation tokens: %w", err)
	}
	if _, err := w.Pool.Exec(ctx, `INSERT INTO alert_confirm_tokens (token_hash, portal_id, address, expires_at)
		VALUES ($1, $2, $3, now() + $4::interval)`, hash, a.PortalID, Key(a.Address), TokenTTL); err != nil {
		return fmt.Errorf("store confirmation token: %w", err)
	}
	// The link's page speaks the e-mail's language, whatever the browser
	// that opens it prefers.
	lang := i18n.FromBitrix24(a.Lang)
	link := strings.TrimRight(w.PublicURL, "/") + ConfirmPath + "?token=" + raw + "&lang=" + lang.String()
	subject, body := ConfirmMessage(lang, domain, link)
	if err := w.Mail.Send(ctx, activation.Mail{To: []string{a.Address}, Subject: subject, Body: body}); err != nil {
		return fmt.Errorf("send alert address confirmation: %w", err)
	}
	log.InfoContext(ctx, "alert address confirmation sent")
	return nil
}

// ConfirmMessage is the confirmation e-mail's subject and body in lang.
func ConfirmMessage(lang i18n.Lang, domain, link string) (string, string) {
	return i18n.T(lang, "alert.confirm.subject", domain),
		i18n.T(lang, "alert.confirm.body", domain, link, int(TokenTTL/(24*time.Hour))) + "\n\n" + i18n.T(lang, "alert.confirm.footer")
}

// newToken is 256 random bits, base64url, and its SHA-256.
func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("make confirmation token: %w", err)
	}
	raw := base64.RawURLEncoding.EncodeToString(b)
	return raw, hashToken(raw), nil
}

func hashToken(raw string) []byte {
	h := sha256.Sum256([]byte(raw))
	return h[:]
}

// Confirmation is what a link confirms.
type Confirmation struct {
	PortalID int64
	Domain   string
	Address  string // lower-cased
}

// Lookup says what a token would confirm, without using it: ErrTokenUnknown,
// ErrTokenExpired or ErrTokenUsed when it cannot.
func Lookup(ctx context.Context, db store.DBTX, raw string) (Confirmation, error) {
	c, _, err := lookup(ctx, db, raw, "")
	return c, err
}

func lookup(ctx context.Context, db store.DBTX, raw, suffix string) (Confirmation, []byte, error) {
	if raw == "" || len(raw) > maxTokenLen {
		return Confirmation{}, nil, ErrTokenUnknown
	}
	hash := hashToken(raw)
	var c Confirmation
	var expired, used bool
	err := db.QueryRow(ctx, `SELECT t.portal_id, p.domain, t.address, t.expires_at <= now(), t.used_at IS NOT NULL
		FROM alert_confirm_tokens t JOIN portals p ON p.id = t.portal_id WHERE t.token_hash = $1`+suffix, hash).
		Scan(&c.PortalID, &c.Domain, &c.Address, &expired, &used)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Confirmation{}, nil, ErrTokenUnknown
	case err != nil:
		return Confirmation{}, nil, fmt.Errorf("look up confirmation token: %w", err)
	case used:
		return c, nil, ErrTokenUsed
	case expired:
		return c, nil, ErrTokenExpired
	}
	return c, hash, nil
}

// Confirm uses a token: it records its address as confirmed for its portal
// and marks the token used, once.
func Confirm(ctx context.Context, db settings.Beginner, raw string) (Confirmation, error) {
	var c Confirmation
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var hash []byte
		var err error
		if c, hash, err = lookup(ctx, tx, raw, ` FOR UPDATE OF t`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE alert_confirm_tokens SET used_at = now() WHERE token_hash = $1`, hash); err != nil {
			return fmt.Errorf("use confirmation token: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_confirmed (portal_id, address) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, c.PortalID, c.Address); err != nil {
			return fmt.Errorf("record confirmed alert address: %w", err)
		}
		return nil
	})
	return c, err
}
