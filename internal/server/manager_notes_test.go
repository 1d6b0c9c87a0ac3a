package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/manager"
)

// A manager's notes are free text, but not bytes the database refuses (a
// NUL, a broken character: a 500 and nothing saved) nor characters that
// show other managers another text than the one stored (a bidi override):
// both notes fields refuse them with 400, in the manager's language, and
// keep what was there.
func TestConsoleNotesRefuseBadText(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	pid, rid := e.request("notes.bitrix24.ru", time.Now(), olgaAsks("notes.bitrix24.ru"))
	b := e.browser("10.0.0.1")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	csrf := csrfOf(t, b.do("GET", "/manager/requests", nil).Body.String())
	requestPath := "/manager/requests/" + strconv.FormatInt(rid, 10)
	activationPath := "/manager/portals/" + strconv.FormatInt(pid, 10) + "/activation"

	for name, text := range map[string]string{
		"NUL":          "called\x00back",
		"BrokenUTF8":   "called \xff back",
		"Control":      "called\x1b[2Jback",
		"BidiOverride": "called \u202eback",
	} {
		t.Run(name, func(t *testing.T) {
			rec := b.do("POST", requestPath, url.Values{"csrf": {csrf}, "status": {"contacted"}, "notes": {text}})
			if rec.Code != http.StatusBadRequest {
				t.Errorf("request notes %q: %d %s, want 400", text, rec.Code, rec.Body.String())
			}
			rec = b.do("POST", activationPath, url.Values{"csrf": {csrf}, "state": {"active"}, "note": {text}})
			if rec.Code != http.StatusBadRequest {
				t.Errorf("activation note %q: %d %s, want 400", text, rec.Code, rec.Body.String())
			}
		})
	}
	var status, notes string
	if err := e.pool.QueryRow(ctx, `SELECT status, notes FROM activation_requests WHERE id = $1`, rid).Scan(&status, &notes); err != nil {
		t.Fatal(err)
	}
	if status != "new" || notes != "" {
		t.Errorf("request after refusals: status %q notes %q, want unchanged", status, notes)
	}
	if st := e.state(pid); st == "active" {
		t.Errorf("portal activated by a refused form")
	}

	// Line breaks and tabs are how notes are written; they stay allowed.
	rec := b.do("POST", requestPath, url.Values{"csrf": {csrf}, "status": {"contacted"}, "notes": {"called Olga\r\n\tback on Monday"}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("plain notes: %d %s", rec.Code, rec.Body.String())
	}
	if rec := b.do("POST", activationPath, url.Values{"csrf": {csrf}, "state": {"active"}, "note": {"paid\r\ninvoice 12"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("plain note: %d %s", rec.Code, rec.Body.String())
	}
	if !strings.Contains(e.state(pid), "active") {
		t.Errorf("portal not activated")
	}
}

// The limits are characters, as the form's maxlength and the message say:
// a Russian note of 1,500 letters (3,000 bytes) is taken, with its line
// breaks sent as CRLF counted once, and a note past the limit is refused.
func TestConsoleNotesLimitCountsCharacters(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	pid, rid := e.request("notes.bitrix24.ru", time.Now(), olgaAsks("notes.bitrix24.ru"))
	b := e.browser("10.0.0.1")
	if rec := b.signIn("anna@ispring.example", "long enough password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	csrf := csrfOf(t, b.do("GET", "/manager/requests", nil).Body.String())
	requestPath := "/manager/requests/" + strconv.FormatInt(rid, 10)
	activationPath := "/manager/portals/" + strconv.FormatInt(pid, 10) + "/activation"

	notes := strings.Repeat("перезвонить\r\n", 4000/12) // 4,000 characters with one per line break
	if rec := b.do("POST", requestPath, url.Values{"csrf": {csrf}, "status": {"contacted"}, "notes": {notes}}); rec.Code != http.StatusSeeOther {
		t.Errorf("request notes of 4,000 Cyrillic characters: %d %s", rec.Code, rec.Body.String())
	}
	note := strings.Repeat("оплачено\r\n", 2000/9)
	if rec := b.do("POST", activationPath, url.Values{"csrf": {csrf}, "state": {"active"}, "note": {note}}); rec.Code != http.StatusSeeOther {
		t.Errorf("activation note of 2,000 Cyrillic characters: %d %s", rec.Code, rec.Body.String())
	}
	if rec := b.do("POST", requestPath, url.Values{"csrf": {csrf}, "status": {"contacted"}, "notes": {strings.Repeat("я", 4001)}}); rec.Code != http.StatusBadRequest {
		t.Errorf("request notes of 4,001 characters: %d, want 400", rec.Code)
	}
	if rec := b.do("POST", activationPath, url.Values{"csrf": {csrf}, "state": {"active"}, "note": {strings.Repeat("я", 2001)}}); rec.Code != http.StatusBadRequest {
		t.Errorf("activation note of 2,001 characters: %d, want 400", rec.Code)
	}
}
