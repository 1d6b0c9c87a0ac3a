package mailsim

import (
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"strings"
	"testing"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serve(ln, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func send(t *testing.T, s *Server, to, subject, body string) {
	t.Helper()
	msg := "From: app@b24learn.demo\r\nTo: " + to + "\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
	if err := smtp.SendMail(s.URL.Host, nil, "app@b24learn.demo", []string{to}, []byte(msg)); err != nil {
		t.Fatalf("send %q: %v", subject, err)
	}
}

// The server holds at most Keep messages, the newest, whatever a sender
// sends.
func TestKeepsTheNewestMessages(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Keep: 3})
	for i := range 5 {
		send(t, s, "admin@acme.ru", fmt.Sprintf("message %d", i), "text")
	}
	got := s.Messages()
	if len(got) != 3 {
		t.Fatalf("%d messages kept, want 3", len(got))
	}
	for i, m := range got {
		d, err := m.Decode()
		if want := fmt.Sprintf("message %d", i+2); err != nil || d.Subject != want {
			t.Fatalf("message %d: %q (%v), want %q", i, d.Subject, err, want)
		}
	}
}

// While down, sessions are refused with 421 and counted; nothing is kept.
func TestDownRefusesSessions(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	s.SetDown(true)
	err := smtp.SendMail(s.URL.Host, nil, "a@b.ru", []string{"c@d.ru"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.Contains(err.Error(), "421") || s.Refused() < 1 || len(s.Messages()) != 0 {
		t.Fatalf("send while down: %v, refused %d, kept %d", err, s.Refused(), len(s.Messages()))
	}
	s.SetDown(false)
	send(t, s, "c@d.ru", "after", "x")
	if len(s.Messages()) != 1 {
		t.Fatal("the server did not come back")
	}
}

// The page shows the newest message first, its encoded subject decoded, its
// web links as links, and nothing of a message as markup: a script stays
// text and a javascript: address is no link.
func TestPageShowsMessagesAsText(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	send(t, s, "admin@acme.ru", "Подтвердите адрес", "Open https://app.example/alerts/confirm?token=abc&x=1 to confirm.")
	send(t, s, "admin@acme.ru", "<script>alert(1)</script>", "javascript:alert(2) <b>bold</b>")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body, _ := io.ReadAll(rec.Body)
	page := string(body)
	if rec.Code != http.StatusOK || !strings.Contains(page, "Подтвердите адрес") {
		t.Fatalf("page: %d\n%s", rec.Code, page)
	}
	if !strings.Contains(page, `<a href="https://app.example/alerts/confirm?token=abc&amp;x=1"`) {
		t.Fatalf("the confirmation link is not a link:\n%s", page)
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>bold") || strings.Contains(page, `href="javascript`) {
		t.Fatalf("a message's markup reached the page:\n%s", page)
	}
	if strings.Index(page, "&lt;script&gt;") > strings.Index(page, "Подтвердите") {
		t.Fatal("the newest message is not first")
	}
}
