package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"b24learn/internal/apptest"
	"b24learn/internal/browsertest"
	"b24learn/internal/manager"
)

// A manager turns on two-step sign-in in a real browser: the enrol page
// shows the secret and its otpauth link, a code computed here confirms it;
// after signing out, the password alone or with a wrong code is refused and
// the password with a current code gets in. The secret is never logged.
func TestConsoleTOTPInBrowser(t *testing.T) {
	t.Parallel()
	b := browsertest.Start(t, "en-US", 2*time.Minute)
	e := newConsoleEnv(t)
	logs := &apptest.Logs{}
	e.s.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const email, password = "gina@ispring.example", "gina's long password"
	if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), email, password); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)

	js := func(expr string) {
		t.Helper()
		if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[chromedp.Void](expr)); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent.trim()`, sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitFor polls until a selector matches; navigation in between makes
	// single evaluations fail, which only means "not yet".
	waitFor := func(what, sel string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](fmt.Sprintf(`document.readyState === 'complete' && !!document.querySelector(%q)`, sel)))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	submit := func(form string) {
		js(fmt.Sprintf(`document.querySelector('form[action=%q] button[type=submit]').click()`, form))
	}
	signIn := func(code string) (signedIn bool) {
		t.Helper()
		if _, err := chromedp.Run(b.Ctx, chromedp.Navigate(srv.URL+"/manager/signin")); err != nil {
			t.Fatal(err)
		}
		waitFor("the sign-in form", "#email")
		js(fmt.Sprintf(`document.getElementById('email').value = %q; document.getElementById('password').value = %q;
			document.getElementById('code').value = %q`, email, password, code))
		submit("/manager/signin")
		waitFor("the answer to signing in", `[data-testid="signin-error"], form[action="/manager/signout"]`)
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`!!document.querySelector('form[action="/manager/signout"]')`))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	if !signIn("") {
		t.Fatal("password sign-in before two-step sign-in was on failed")
	}
	js(`document.querySelector('a[href="/manager/totp"]').click()`)
	waitFor("the enrol page", `[data-testid="totp-secret"]`)
	secret, uri := text(`[data-testid="totp-secret"]`), text(`[data-testid="totp-uri"]`)
	if len(secret) < 26 || !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("enrol page shows secret %q, link %q", secret, uri)
	}
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	js(fmt.Sprintf(`document.getElementById('totp-password').value = %q; document.getElementById('totp-code').value = %q`,
		password, code(time.Now().Add(-10*time.Minute))))
	submit("/manager/totp")
	waitFor("the wrong code refused", `[data-testid="totp-error"]`)
	js(fmt.Sprintf(`document.getElementById('totp-password').value = %q; document.getElementById('totp-code').value = %q`,
		password, code(time.Now())))
	submit("/manager/totp")
	waitFor("two-step sign-in on", `[data-testid="totp-enabled"]`)
	if enabled := text(`[data-testid="totp-enabled"]`); !strings.Contains(enabled, email) {
		t.Fatalf("after confirming: %q", enabled)
	}
	submit("/manager/signout")
	waitFor("the sign-in form after signing out", "#email")

	for name, c := range map[string]string{"NoCode": "", "WrongCode": code(time.Now().Add(-10 * time.Minute))} {
		if signIn(c) {
			t.Fatalf("%s: signed in without a valid code", name)
		}
		if msg := text(`[data-testid="signin-error"]`); !strings.Contains(msg, "Wrong e-mail, password or authenticator code") {
			t.Fatalf("%s: error %q", name, msg)
		}
	}
	// The confirming code is spent: the app's next code signs in.
	if !signIn(code(time.Now().Add(30 * time.Second))) {
		t.Fatalf("password and code did not sign in: %q", text("body"))
	}
	if errs := b.JSErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}
	if l := logs.String(); strings.Contains(l, secret) || strings.Contains(strings.ToLower(l), strings.ToLower(secret)) {
		t.Fatal("the TOTP secret is in the log")
	}
}
