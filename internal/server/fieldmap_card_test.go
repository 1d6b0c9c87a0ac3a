package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
	"b24learn/internal/settings"
)

// The first save of the Learn account makes the Profile fields card
// available there and then: the page asks GET /app/fieldmap for the card
// and puts it in place, so the admin is not sent to reopen the app.
// Before the account is saved the card says the fields come with the save;
// it is for admins only.
func TestFieldMapCardAfterSave(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("card", "en")
	_, tok := e.session(p, 1, true, "en")
	e.s.fields = stubFields{
		learn: []learn.FieldInfo{{Name: "job_title", Label: "Position", Type: "string", Order: 1}},
		b24:   []bitrix24.UserField{{Name: "UF_USR_1", Type: "string", Label: "Own"}},
	}

	r := e.do(http.MethodGet, "/app/fieldmap", tok, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="fieldmap-pending"`) || strings.Contains(r.body, "data-map=") {
		t.Fatalf("before the account is saved: %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "reopen") {
		t.Errorf("the pending card sends the admin to reopen the app: %s", r.body)
	}

	if _, err := settings.Save(context.Background(), e.pool, e.kr, p.ID, 1, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://card.ispringlearn.test", "admin@card.test", "pw"
	}); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodGet, "/app/fieldmap", tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("after the save: %d %s", r.status, r.body)
	}
	for _, want := range []string{`<section class="s-section" data-field="field_map" id="field-map">`, `data-map="job_title"`,
		`id="fieldmap-sources"`, "UF_USR_1", `id="field_map-input"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the card lacks %q: %s", want, r.body)
		}
	}
	if strings.Contains(r.body, "fieldmap-pending") {
		t.Errorf("the card still says the fields come later: %s", r.body)
	}

	_, userTok := e.session(p, 2, false, "en")
	if r := e.do(http.MethodGet, "/app/fieldmap", userTok, nil); r.status != http.StatusForbidden {
		t.Errorf("a non-admin got %d, want 403", r.status)
	}
}
