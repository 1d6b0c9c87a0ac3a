// Package mailsim is a mail server that keeps what it is sent: SMTP on a
// listener of the caller's (plain, STARTTLS or implicit TLS, optionally
// with AUTH PLAIN), the last messages in memory, and a page that shows
// them. The demo sends its e-mails here, so an admin can open an alert
// address's confirmation link and a manager can read an activation request;
// the tests' SMTP server (smtptest) is this one. Like the other simulators
// it can fail on purpose: SetDown refuses every session as an outage does.
package mailsim

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mode is how clients connect, named as SMTP_URL's scheme.
type Mode string

const (
	Plain    Mode = "smtp"
	StartTLS Mode = "smtp+starttls"
	TLS      Mode = "smtps"
)

// Limits of what one sender can make the server hold.
const (
	DefaultKeep     = 500     // messages kept; older ones are dropped
	maxMessageBytes = 1 << 20 // per message, as a relay's limit
	maxRecipients   = 50      // per message
)

// Options configure a Server.
type Options struct {
	Mode Mode // Plain when ""
	// TLS serves StartTLS and TLS; required for them.
	TLS *tls.Config
	// With User set, AUTH PLAIN with User and Password is required.
	User, Password string
	// Keep is how many messages are kept (DefaultKeep when 0).
	Keep int
	// From is the sender the URL suggests (its "from" parameter).
	From string
}

// Message is one accepted message.
type Message struct {
	// HELO is the name the client greeted with (EHLO or HELO): relays
	// write it into the Received header every recipient sees.
	HELO string
	From string
	To   []string
	Data []byte
	At   time.Time
}

// Server is a running mail server.
type Server struct {
	// URL is an SMTP_URL that reaches the server.
	URL *url.URL

	srv  *smtp.Server
	opts Options

	mu      sync.Mutex
	msgs    []Message
	down    bool
	refused int
}

// Serve starts a server on ln; Close stops it.
func Serve(ln net.Listener, o Options) (*Server, error) {
	if o.Mode == "" {
		o.Mode = Plain
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Mode != Plain && o.TLS == nil {
		return nil, errors.New("mailsim: " + string(o.Mode) + " needs a TLS configuration")
	}
	s := &Server{opts: o}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = maxRecipients
	srv.AllowInsecureAuth = o.Mode == Plain
	srv.TLSConfig = o.TLS
	if o.Mode == TLS {
		ln = tls.NewListener(ln, o.TLS)
	}
	s.srv = srv
	u := &url.URL{Scheme: string(o.Mode), Host: ln.Addr().String()}
	if o.From != "" {
		u.RawQuery = url.Values{"from": {o.From}}.Encode()
	}
	if o.User != "" {
		u.User = url.UserPassword(o.User, o.Password)
	}
	s.URL = u
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// SetDown makes the server refuse every new session (421) while down.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Messages returns the kept messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Refused counts sessions refused while down.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (s *Server) keep(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) >= s.opts.Keep {
		s.msgs = append(s.msgs[:0], s.msgs[len(s.msgs)-s.opts.Keep+1:]...)
	}
	s.msgs = append(s.msgs, m)
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.refused++
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available"}
	}
	return &session{s: s, conn: c}, nil
}

type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	msg    Message
}

func (se *session) AuthMechanisms() []string {
	if se.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != se.s.opts.User || password != se.s.opts.Password {
			return errors.New("invalid credentials")
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opts.User != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.msg = Message{HELO: se.conn.Hostname(), From: from}
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.msg.To = append(se.msg.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.msg.Data, se.msg.At = b, time.Now()
	se.s.keep(se.msg)
	return nil
}

func (se *session) Reset()        { se.msg = Message{} }
func (se *session) Logout() error { return nil }
