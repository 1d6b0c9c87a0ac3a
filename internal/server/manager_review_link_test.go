package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/activation"
	"b24learn/internal/manager"
)

// The "review" link of the activation e-mail, as the mail server received
// it, opens for a signed-in manager the console's list at a page showing
// that request's row, though newer requests push it off the first page and
// others were sent in the same instant.
func TestActivationMailReviewLinkOpens(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var pid, id int64
	const requests, picked = consolePageSize + 15, 7
	for i := range requests {
		domain := fmt.Sprintf("review%d.bitrix24.ru", i)
		// Three requests a second: the picked one shares its instant.
		p, r := e.request(domain, base.Add(time.Duration(i/3)*time.Second), olgaAsks(domain))
		if i == picked {
			pid, id = p, r
		}
	}

	srv, mailer := plainMailer(t)
	f := &activation.Forwarder{Log: slog.New(slog.DiscardHandler), Pool: e.pool, Mail: mailer,
		To: []string{"anna@ispring.example"}, ConsoleURL: "https://app.example/manager"}
	if err := f.Forward(ctx, pid, id, true); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	link := regexp.MustCompile(`https://app\.example(/manager/\S+)`).FindStringSubmatch(msgs[0].Decode(t).Body)
	if link == nil {
		t.Fatal("the mail has no console link")
	}
	path, fragment, _ := strings.Cut(link[1], "#")
	row := "request-" + strconv.FormatInt(id, 10)

	b := e.browser("10.0.0.7")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	if first := b.do("GET", "/manager/requests", nil).Body.String(); strings.Contains(first, `id="`+row+`"`) {
		t.Fatal("the picked request is on the first page; the test needs it further down")
	}
	rec := b.do("GET", path, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d, want 200", path, rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `id="`+row+`"`) || !strings.Contains(body, fmt.Sprintf("review%d.bitrix24.ru", picked)) {
		t.Fatalf("GET %s does not show request %d", path, id)
	}
	if fragment != row {
		t.Fatalf("link %s ends in #%s, want #%s", link[1], fragment, row)
	}
}
