package activation

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Mailer sends plain-text e-mail through the SMTP server of SMTP_URL:
// smtp:// (no TLS), smtp+starttls:// (STARTTLS required) or smtps://
// (TLS from the first byte). User and password in the URL turn on SMTP AUTH;
// ?from= sets the sender.
type Mailer struct {
	host     string
	port     int
	mode     string
	user     string
	password string
	from     string
	tls      *tls.Config
	timeout  time.Duration
}

// NewMailer reads an SMTP_URL. defaultFrom is the sender when the URL has no
// ?from=. tlsConfig may be nil (system roots); tests pass their own CA.
func NewMailer(u *url.URL, defaultFrom string, tlsConfig *tls.Config) (*Mailer, error) {
	if u == nil || u.Hostname() == "" {
		return nil, errors.New("smtp url: host missing")
	}
	m := &Mailer{host: u.Hostname(), mode: u.Scheme, from: defaultFrom, timeout: 30 * time.Second}
	switch u.Scheme {
	case "smtp":
		m.port = 25
	case "smtp+starttls":
		m.port = 587
	case "smtps":
		m.port = 465
	default:
		return nil, fmt.Errorf("smtp url: unknown scheme %q", u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("smtp url: bad port %q", p)
		}
		m.port = n
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.password, _ = u.User.Password()
	}
	if f := u.Query().Get("from"); f != "" {
		m.from = f
	}
	if tlsConfig != nil {
		m.tls = tlsConfig.Clone()
	} else {
		m.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if m.tls.ServerName == "" {
		m.tls.ServerName = m.host
	}
	return m, nil
}

// Addr is host:port, for logs.
func (m *Mailer) Addr() string { return net.JoinHostPort(m.host, strconv.Itoa(m.port)) }

// Mail is one message.
type Mail struct {
	To      []string
	ReplyTo string
	Subject string
	Body    string // text/plain, UTF-8
}

// senderDomain is the domain of the sender's address. The Message-ID and
// the SMTP greeting name it where go-mail names the server's host, which
// recipients have no business knowing.
func (m *Mailer) senderDomain() string {
	if a, err := mail.ParseAddress(m.from); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 && at < len(a.Address)-1 {
			return a.Address[at+1:]
		}
	}
	return "b24learn.invalid"
}

// messageID is a random id on the sender's domain.
func (m *Mailer) messageID() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b) + "@" + m.senderDomain(), nil
}

// Send delivers msg in one SMTP session.
func (m *Mailer) Send(ctx context.Context, msg Mail) error {
	// No User-Agent or X-Mailer: the recipients are anyone a portal admin
	// names, and the library's name and version are no business of theirs.
	gm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := gm.From(m.from); err != nil {
		return fmt.Errorf("sender %q: %w", m.from, err)
	}
	if err := gm.To(msg.To...); err != nil {
		return fmt.Errorf("recipients: %w", err)
	}
	if msg.ReplyTo != "" {
		if err := gm.ReplyTo(msg.ReplyTo); err != nil {
			return fmt.Errorf("reply-to: %w", err)
		}
	}
	gm.Subject(msg.Subject)
	gm.SetDate()
	id, err := m.messageID()
	if err != nil {
		return err
	}
	gm.SetMessageIDWithValue(id)
	// Every message the app sends is made by a machine: out-of-office
	// replies and other robots should not answer it (RFC 3834).
	gm.SetGenHeader("Auto-Submitted", "auto-generated")
	gm.SetBodyString(gomail.TypeTextPlain, msg.Body)

	opts := []gomail.Option{gomail.WithPort(m.port), gomail.WithTimeout(m.timeout), gomail.WithTLSConfig(m.tls),
		gomail.WithHELO(m.senderDomain())}
	switch m.mode {
	case "smtp":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "smtp+starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "smtps":
		opts = append(opts, gomail.WithSSL())
	}
	if m.user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.user), gomail.WithPassword(m.password))
	}
	c, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, gm); err != nil {
		return fmt.Errorf("send mail via %s: %w", m.Addr(), err)
	}
	return nil
}
