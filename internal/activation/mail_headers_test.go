package activation

import (
	"context"
	"net/mail"
	"os"
	"strings"
	"testing"

	"b24learn/internal/activation/smtptest"
)

// The alert and confirmation e-mails go to addresses a portal admin picks:
// their headers must not tell the server's host name (go-mail's default
// Message-ID and SMTP greeting name os.Hostname()) or the mail library and its version
// (its default User-Agent and X-Mailer), and say they are a machine's.
func TestMailHeadersNameNoServerHostOrLibrary(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Plain, "", "")
	m, err := NewMailer(srv.URL, "alerts@b24learn.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), Mail{To: []string{"anna@acme.example"}, Subject: "s", Body: "b"}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(msgs[0].Data)))
	if err != nil {
		t.Fatal(err)
	}
	from, err := mail.ParseAddress(msg.Header.Get("From"))
	if err != nil {
		t.Fatal(err)
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@'):]
	id := msg.Header.Get("Message-Id")
	if !strings.HasSuffix(id, domain+">") {
		t.Errorf("Message-ID = %q, want it on the sender's domain (%s)", id, domain)
	}
	if host, err := os.Hostname(); err == nil && host != "" && strings.Contains(id, "@"+host+">") {
		t.Errorf("Message-ID %q names the server's host %q", id, host)
	}
	// Robots (out-of-office replies) must not answer a machine's message.
	if v := msg.Header.Get("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("Auto-Submitted: %q, want auto-generated", v)
	}
	// The greeting goes into the relay's Received header: the sender's
	// domain, not the server's host name (go-mail's default).
	if helo := msgs[0].HELO; helo != domain[1:] {
		t.Errorf("HELO %q, want the sender's domain %s", helo, domain[1:])
	}
	for _, h := range []string{"User-Agent", "X-Mailer"} {
		if v := msg.Header.Get(h); v != "" {
			t.Errorf("%s: %q tells the mail library", h, v)
		}
	}
}
