package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/activation"
	"b24learn/internal/bitrix24"
	"b24learn/internal/config"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/learn"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// settingsEnv is the settings endpoints on a private database, with the
// Learn check and the Bitrix24 tree replaced by recorders.
type settingsEnv struct {
	t    testing.TB
	s    *Server
	h    http.Handler
	pool *pgxpool.Pool
	kr   *secret.Keyring

	mu       sync.Mutex
	checks   []learn.Credentials
	checkErr error
	depts    []orgDept
	treeErr  error
}

func newSettingsEnv(t testing.TB) *settingsEnv {
	t.Helper()
	e := &settingsEnv{t: t, pool: pgtest.NewPool(t), kr: newTestKeyring(t)}
	rc := apptest.Inserter(t, e.pool)
	e.s = newServer(Deps{Log: slog.New(slog.DiscardHandler), Config: &config.Config{Keyring: e.kr}, Pool: e.pool, River: rc,
		Metrics: metrics.New()})
	e.s.check, e.s.org, e.s.profiles = learnCheckFunc(e.check), e, fakeProfiles{}
	// The real router, with the middleware in the order the app runs it.
	e.h = e.s.routes()
	return e
}

func newTestKeyring(t testing.TB) *secret.Keyring {
	t.Helper()
	kr, err := secret.NewKeyring("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") // 32 bytes
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func (e *settingsEnv) check(_ context.Context, c learn.Credentials) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.checks = append(e.checks, c)
	return e.checkErr
}

func (e *settingsEnv) OrgTree(context.Context, store.Portal) ([]orgDept, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.depts, e.treeErr
}

func (e *settingsEnv) setCheckErr(err error) {
	e.mu.Lock()
	e.checkErr = err
	e.mu.Unlock()
}

func (e *settingsEnv) checkCalls() []learn.Credentials {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]learn.Credentials(nil), e.checks...)
}

func (e *settingsEnv) addPortal(member, lang string) store.Portal {
	e.t.Helper()
	p, err := store.UpsertPortal(context.Background(), e.pool, e.kr, store.PortalInstall{
		PortalInfo:  store.PortalInfo{MemberID: member, Domain: member + ".bitrix24.com", ClientEndpoint: "https://" + member + ".bitrix24.com/rest/", Lang: lang},
		AccessToken: "a-" + member, RefreshToken: "r-" + member, TokenExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *settingsEnv) session(p store.Portal, userID int64, admin bool, lang string) (Session, string) {
	e.t.Helper()
	sess, tok, err := e.s.newSession(p, userID, admin, lang, fakeAuth(userID, admin))
	if err != nil {
		e.t.Fatal(err)
	}
	return sess, tok
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (e *settingsEnv) do(method, path, token string, form url.Values) resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("X-Session", token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return resp{w.Code, w.Body.String(), w.Header()}
}

func (e *settingsEnv) save(token string, form url.Values) (resp, saveResult) {
	e.t.Helper()
	r := e.do(http.MethodPost, "/app/settings", token, form)
	var sr saveResult
	if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal([]byte(r.body), &sr); err != nil {
			e.t.Fatalf("decode %q: %v", r.body, err)
		}
	}
	return r, sr
}

// page renders the settings page as renderApp does.
func (e *settingsEnv) page(p store.Portal, sess Session, token string) string {
	e.t.Helper()
	w := httptest.NewRecorder()
	e.s.renderSettings(w, httptest.NewRequest(http.MethodPost, "/b24/app", nil), p, sess, token, activation.Contact{})
	if w.Code != http.StatusOK {
		e.t.Fatalf("page: %d %s", w.Code, w.Body.String())
	}
	return w.Body.String()
}

func (e *settingsEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func validForm() url.Values {
	return url.Values{
		"learn_url":                   {"acme.ispringlearn.ru/app/dashboard"},
		"learn_email":                 {"admin@acme.ru"},
		"learn_password":              {"Pa ss<word>&\"1"},
		"first_run":                   {"03:00"},
		"second_run":                  {"15:30"},
		"send_login_email":            {"0", "1"},
		"heads_as_managers":           {"0", "1"},
		"parent_heads_as_supervisors": {"0"},
		"departments":                 {`{"selected":[1,7],"excluded":[9]}`},
	}
}

func with(f url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<absent>" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	return out
}

func TestSaveSettingsValidation(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("val", "en")
	_, tok := e.session(p, 1, true, "en")
	long := strings.Repeat("a", 250)
	many := make([]string, maxDeptIDs+1)
	for i := range many {
		many[i] = strconv.Itoa(i + 1)
	}
	cases := []struct {
		name, field string
		kv          []string
	}{
		{"url missing", "learn_url", []string{"learn_url", "  "}},
		{"url not a URL", "learn_url", []string{"learn_url", "ftp://acme.ispringlearn.ru"}},
		{"url without a dot", "learn_url", []string{"learn_url", "acme"}},
		{"url with credentials", "learn_url", []string{"learn_url", "https://u:p@acme.ispringlearn.ru"}},
		{"url http", "learn_url", []string{"learn_url", "http://acme.ispringlearn.ru"}},
		{"url too long", "learn_url", []string{"learn_url", "https://acme.ispringlearn.ru/" + strings.Repeat("x", maxURLLen)}},
		{"email missing", "learn_email", []string{"learn_email", ""}},
		{"email with space", "learn_email", []string{"learn_email", "ad min@acme.ru"}},
		{"email too long", "learn_email", []string{"learn_email", long + "@acme.ru"}},
		{"password missing", "learn_password", []string{"learn_password", ""}},
		{"password too long", "learn_password", []string{"learn_password", strings.Repeat("p", maxPasswordLen+1)}},
		{"first run missing", "first_run", []string{"first_run", "<absent>"}},
		{"first run bad hour", "first_run", []string{"first_run", "24:00"}},
		{"first run garbage", "first_run", []string{"first_run", "3pm"}},
		{"second run bad minute", "second_run", []string{"second_run", "07:60"}},
		{"second run equals first", "second_run", []string{"second_run", "03:00:00"}},
		{"checkbox garbage", "heads_as_managers", []string{"heads_as_managers", "maybe"}},
		{"departments not JSON", "departments", []string{"departments", "[1,2"}},
		{"departments negative id", "departments", []string{"departments", `{"selected":[-4],"excluded":[]}`}},
		{"departments fraction", "departments", []string{"departments", `{"selected":[1.5],"excluded":[]}`}},
		{"departments unknown key", "departments", []string{"departments", `{"selected":[1],"portal_id":2}`}},
		{"departments overlap", "departments", []string{"departments", `{"selected":[1,2],"excluded":[2]}`}},
		{"departments none", "departments", []string{"departments", `{"selected":[],"excluded":[3]}`}},
		{"departments too many", "departments", []string{"departments", `{"selected":[` + strings.Join(many, ",") + `]}`}},
	}
	for _, c := range cases {
		r, sr := e.save(tok, with(validForm(), c.kv...))
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422 (%s)", c.name, r.status, r.body)
			continue
		}
		if sr.Errors[c.field] == "" || len(sr.Errors) != 1 {
			t.Errorf("%s: errors %v, want exactly one on %s", c.name, sr.Errors, c.field)
		}
	}
	if n := e.count(`SELECT count(*) FROM portal_settings`); n != 0 {
		t.Errorf("invalid forms saved %d rows", n)
	}
	if n := len(e.checkCalls()); n != 0 {
		t.Errorf("invalid forms reached the Learn check %d times", n)
	}

	// Messages follow the portal's language.
	_, ruTok := e.session(p, 1, true, "ru")
	_, sr := e.save(ruTok, with(validForm(), "first_run", "", "learn_email", ""))
	if !strings.Contains(sr.Errors["first_run"], "первого запуска") || !strings.Contains(sr.Errors["learn_email"], "администратора") {
		t.Errorf("Russian messages: %v", sr.Errors)
	}
	if !strings.Contains(sr.Message, "Ничего не сохранено") {
		t.Errorf("Russian summary: %q", sr.Message)
	}
}

func TestSaveSettingsStoresEncryptedAndAudits(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("ok", "en")
	_, tok := e.session(p, 42, true, "en")
	form := validForm()
	r, sr := e.save(tok, form)
	if r.status != http.StatusOK || !sr.OK {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	calls := e.checkCalls()
	if len(calls) != 1 || calls[0].AccountURL != "https://acme.ispringlearn.ru" || calls[0].Password != form.Get("learn_password") {
		t.Fatalf("check calls %+v", calls)
	}
	st, err := settings.Load(context.Background(), e.pool, e.kr, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.LearnURL != "https://acme.ispringlearn.ru" || st.LearnEmail != "admin@acme.ru" || st.Schedule.First() != "03:00" ||
		st.Schedule.Second() != "15:30" || !st.SendLoginEmail || !st.HeadsAsManagers || st.ParentHeadsAsSupervisors ||
		fmt.Sprint(st.Departments) != "{[1 7] [9]}" {
		t.Errorf("stored %+v", st)
	}
	var sealed []byte
	if err := e.pool.QueryRow(context.Background(), `SELECT learn_password FROM portal_settings WHERE portal_id = $1`, p.ID).Scan(&sealed); err != nil ||
		strings.Contains(string(sealed), "ss<word>") {
		t.Errorf("password stored in plaintext (%v)", err)
	}
	if st.Password != form.Get("learn_password") {
		t.Errorf("stored password decrypts to %q", st.Password)
	}

	var userID int64
	var changes string
	if err := e.pool.QueryRow(context.Background(),
		`SELECT user_id, changes::text FROM settings_audit WHERE portal_id = $1`, p.ID).Scan(&userID, &changes); err != nil {
		t.Fatal(err)
	}
	if userID != 42 || !strings.Contains(changes, `"learn_password": "changed"`) || !strings.Contains(changes, `"first_run"`) ||
		strings.Contains(changes, "ss<word>") {
		t.Errorf("audit row: user %d, %s", userID, changes)
	}

	// The same form again changes nothing: no second audit row. A changed
	// time gives a row naming only that field.
	if r, _ := e.save(tok, with(form, "learn_password", "")); r.status != http.StatusOK {
		t.Fatalf("resave: %d %s", r.status, r.body)
	}
	if r, _ := e.save(tok, with(form, "learn_password", "", "second_run", "")); r.status != http.StatusOK {
		t.Fatalf("resave: %d %s", r.status, r.body)
	}
	rows, err := e.pool.Query(context.Background(), `SELECT changes::text FROM settings_audit WHERE portal_id = $1 ORDER BY id`, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	audits, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(audits) != 2 || audits[1] != `{"second_run": {"to": "", "from": "15:30"}}` {
		t.Errorf("audit rows %q", audits)
	}
	if st, _ := settings.Load(context.Background(), e.pool, e.kr, p.ID); st.Schedule.Second() != "" {
		t.Errorf("second run not cleared: %q", st.Schedule.Second())
	}
}

func TestFailedLearnCheckSavesNothing(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("chk", "ru")
	_, tok := e.session(p, 1, true, "ru")
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatalf("first save: %d %s", r.status, r.body)
	}
	before, _ := settings.Load(context.Background(), e.pool, e.kr, p.ID)

	for _, c := range []struct {
		code, field string
	}{
		{learn.CheckBadCredentials, "learn_password"},
		{learn.CheckNoAPIAccess, "learn_email"},
		{learn.CheckNotAccountAdmin, "learn_email"},
		{learn.CheckUnreachable, "learn_url"},
		{learn.CheckServerError, "form"},
	} {
		e.setCheckErr(&learn.CheckError{Code: c.code, Err: errors.New("x")})
		r, sr := e.save(tok, with(validForm(), "learn_password", "wrong", "first_run", "05:00", "heads_as_managers", "0"))
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: status %d", c.code, r.status)
		}
		want := i18n.T(i18n.RU, "check."+c.code)
		if sr.Errors[c.field] != want {
			t.Errorf("%s: errors %v, want %q on %s", c.code, sr.Errors, want, c.field)
		}
	}
	// A transport error that is not a CheckError still reads as unreachable.
	e.setCheckErr(errors.New("boom"))
	if _, sr := e.save(tok, validForm()); sr.Errors["learn_url"] == "" {
		t.Errorf("plain error: %v", sr.Errors)
	}
	after, _ := settings.Load(context.Background(), e.pool, e.kr, p.ID)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("failed checks changed the settings:\n%+v\n%+v", before, after)
	}
	if n := e.count(`SELECT count(*) FROM settings_audit WHERE portal_id = $1`, p.ID); n != 1 {
		t.Errorf("%d audit rows, want 1", n)
	}
}

func TestPasswordIsNeverSentBack(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("pw", "en")
	sess, tok := e.session(p, 1, true, "en")
	const pw = "Zq9-very-secret"
	r, _ := e.save(tok, with(validForm(), "learn_password", pw))
	if r.status != http.StatusOK || strings.Contains(r.body, pw) {
		t.Fatalf("save answered %d %s", r.status, r.body)
	}
	body := e.page(p, sess, tok)
	if strings.Contains(body, pw) || strings.Contains(body, "Zq9") {
		t.Error("the page contains the password")
	}
	if !strings.Contains(body, `name="learn_password" value=""`) {
		t.Error("password field is not empty")
	}
	// An empty field keeps the stored password, and the check uses it.
	r, _ = e.save(tok, with(validForm(), "learn_password", "", "learn_email", "other@acme.ru"))
	if r.status != http.StatusOK || strings.Contains(r.body, pw) {
		t.Fatalf("resave answered %d %s", r.status, r.body)
	}
	calls := e.checkCalls()
	if last := calls[len(calls)-1]; last.Password != pw || last.Email != "other@acme.ru" {
		t.Errorf("check used %+v", last)
	}
	st, _ := settings.Load(context.Background(), e.pool, e.kr, p.ID)
	if got := st.Password; got != pw {
		t.Errorf("stored password %q after an empty field", got)
	}
	var changes string
	_ = e.pool.QueryRow(context.Background(), `SELECT changes::text FROM settings_audit WHERE portal_id = $1 ORDER BY id DESC LIMIT 1`, p.ID).Scan(&changes)
	if strings.Contains(changes, "learn_password") {
		t.Errorf("an unchanged password was audited: %s", changes)
	}
	// A failing check answers without the typed password too.
	e.setCheckErr(&learn.CheckError{Code: learn.CheckBadCredentials, Err: errors.New("401")})
	r, _ = e.save(tok, with(validForm(), "learn_password", "typed-wrong-1"))
	if strings.Contains(r.body, "typed-wrong-1") {
		t.Error("the error answer echoes the password")
	}
}

// The stored Learn password is sent only to the account it was typed for:
// a new address needs the password again, or any portal admin could point
// the app at a host of their own and receive it.
func TestStoredPasswordNotSentToANewAddress(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("pwmove", "en")
	_, tok := e.session(p, 1, true, "en")
	const pw = "Zq9-kept-secret"
	if r, _ := e.save(tok, with(validForm(), "learn_password", pw)); r.status != http.StatusOK {
		t.Fatalf("first save answered %d %s", r.status, r.body)
	}
	before := len(e.checkCalls())
	r, sr := e.save(tok, with(validForm(), "learn_password", "", "learn_url", "https://collector.example"))
	if r.status != http.StatusUnprocessableEntity || sr.Errors["learn_password"] == "" {
		t.Fatalf("new address without a password answered %d %s", r.status, r.body)
	}
	for _, c := range e.checkCalls()[before:] {
		if c.Password == pw {
			t.Fatalf("the stored password was sent to %s", c.AccountURL)
		}
	}
	st, _ := settings.Load(context.Background(), e.pool, e.kr, p.ID)
	if st.LearnURL != "https://acme.ispringlearn.ru" {
		t.Errorf("learn_url changed to %q", st.LearnURL)
	}
	// With the password typed again, the new address is saved.
	if r, _ := e.save(tok, with(validForm(), "learn_password", pw, "learn_url", "https://collector.example")); r.status != http.StatusOK {
		t.Fatalf("new address with the password answered %d %s", r.status, r.body)
	}
}

// Nor through a race: a second admin of the portal keeps a save of their
// own host "with the stored password" in flight (their host answers the
// check slowly) while the Learn admin types the real password for the real
// account. The save that lands last must not join the real password to the
// attacker's host: what is saved is what was checked.
func TestStoredPasswordNotSentToANewAddressByARacingSave(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("pwrace", "en")
	_, attacker := e.session(p, 2, true, "en")
	_, owner := e.session(p, 1, true, "en")
	const evil, real = "https://collector.example", "Zq9-real-secret"
	if r, _ := e.save(attacker, with(validForm(), "learn_url", evil, "learn_password", "attacker-typed")); r.status != http.StatusOK {
		t.Fatalf("attacker's first save answered %d %s", r.status, r.body)
	}

	inCheck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.s.check = learnCheckFunc(func(ctx context.Context, c learn.Credentials) error {
		if c.AccountURL == evil {
			once.Do(func() { close(inCheck) })
			<-release
		}
		return e.check(ctx, c)
	})
	done := make(chan resp, 1)
	go func() {
		r, _ := e.save(attacker, with(validForm(), "learn_url", evil, "learn_password", ""))
		done <- r
	}()
	<-inCheck
	if r, _ := e.save(owner, with(validForm(), "learn_password", real)); r.status != http.StatusOK {
		t.Fatalf("owner's save answered %d %s", r.status, r.body)
	}
	close(release)
	<-done

	st, err := settings.Load(context.Background(), e.pool, e.kr, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.LearnURL == evil && st.Password == real {
		t.Fatalf("the real password is now stored for %s: the next sync sends it there", evil)
	}
	for _, c := range e.checkCalls() {
		if c.AccountURL == evil && c.Password == real {
			t.Fatalf("the real password was sent to %s", evil)
		}
	}
}

// Every save checks the Learn account: requests to an address the admin
// chose. Anyone can open a free Bitrix24 portal and be its admin, so saves
// must not be a way to make the app send requests without end (to a host
// to be flooded, say): past the portal's allowance the save is refused
// before any request goes out.
func TestLearnChecksPerPortalAreBounded(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("checkflood", "en")
	_, tok := e.session(p, 1, true, "en")
	const saves = 40
	refused := 0
	for range saves {
		r, _ := e.save(tok, with(validForm(), "learn_url", "https://victim.example"))
		switch r.status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			refused++
			if r.header.Get("Retry-After") == "" {
				t.Fatal("refused save without Retry-After")
			}
		default:
			t.Fatalf("save answered %d %s", r.status, r.body)
		}
	}
	if n := len(e.checkCalls()); n > learnCheckLimit.Max {
		t.Errorf("%d saves made %d Learn checks, want at most %d", saves, n, learnCheckLimit.Max)
	}
	if refused == 0 {
		t.Error("no save refused")
	}
	// Another portal's admin is not held back by this one.
	q := e.addPortal("checkother", "en")
	_, other := e.session(q, 1, true, "en")
	if r, _ := e.save(other, validForm()); r.status != http.StatusOK {
		t.Fatalf("another portal's save answered %d %s", r.status, r.body)
	}
}

func TestOnlyAdminsChangeSettings(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("adm", "ru")
	sess, tok := e.session(p, 7, false, "ru")
	for _, path := range []string{"/app/settings", "/app/preview", "/app/sync", "/app/approve"} {
		if r := e.do(http.MethodPost, path, tok, validForm()); r.status != http.StatusForbidden {
			t.Errorf("non-admin POST %s: %d", path, r.status)
		}
	}
	if n := e.count(`SELECT count(*) FROM portal_settings`); n != 0 || len(e.checkCalls()) != 0 {
		t.Errorf("a non-admin saved %d rows / ran %d checks", n, len(e.checkCalls()))
	}
	if n := e.count(`SELECT count(*) FROM river_job`); n != 0 {
		t.Errorf("a non-admin queued %d jobs", n)
	}
	body := e.page(p, sess, tok)
	if !strings.Contains(body, "Изменять эти настройки может только администратор портала.") {
		t.Error("the read-only sentence is missing")
	}
	if strings.Contains(body, `id="save-btn"`) || !strings.Contains(body, `id="learn_url" name="learn_url" value="" placeholder="https://learn.ispringlearn.ru" inputmode="url" spellcheck="false" required disabled`) {
		t.Error("a non-admin gets an editable form")
	}
	// No session, or a forged one, gets nothing at all.
	for _, tk := range []string{"", tok + "x"} {
		if r := e.do(http.MethodPost, "/app/settings", tk, validForm()); r.status != http.StatusUnauthorized {
			t.Errorf("token %q: %d", tk, r.status)
		}
	}
}

func TestSessionCannotReachAnotherPortal(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	a := e.addPortal("porta", "en")
	b := e.addPortal("portb", "en")
	_, tokA := e.session(a, 1, true, "en")
	_, tokB := e.session(b, 1, true, "en")
	if r, _ := e.save(tokB, with(validForm(), "learn_email", "b@b.ru")); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	rs := syncer.NewStore(e.pool)
	runB, err := rs.StartRun(context.Background(), b.ID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	// A's admin asks for B's run, by id: not found, no content.
	for _, path := range []string{"/app/runs/" + strconv.FormatInt(runB, 10), "/app/runs/" + strconv.FormatInt(runB, 10) + "/csv"} {
		r := e.do(http.MethodGet, path, tokA, nil)
		if r.status != http.StatusNotFound {
			t.Errorf("%s with A's session: %d %s", path, r.status, r.body)
		}
		if r := e.do(http.MethodGet, path, tokB, nil); r.status != http.StatusOK {
			t.Errorf("%s with B's session: %d", path, r.status)
		}
	}
	// A's save, even naming B in the form, changes only A.
	f := with(validForm(), "learn_email", "a@a.ru", "portal_id", strconv.FormatInt(b.ID, 10), "member_id", "portb")
	if r, _ := e.save(tokA, f); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	sb, _ := settings.Load(context.Background(), e.pool, e.kr, b.ID)
	sa, _ := settings.Load(context.Background(), e.pool, e.kr, a.ID)
	if sb.LearnEmail != "b@b.ru" || sa.LearnEmail != "a@a.ru" {
		t.Errorf("A=%q B=%q", sa.LearnEmail, sb.LearnEmail)
	}
	if n := e.count(`SELECT count(*) FROM settings_audit WHERE portal_id = $1`, b.ID); n != 1 {
		t.Errorf("B has %d audit rows, want its own one", n)
	}
}

func TestStatusActions(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("act", "en")
	_, tok := e.session(p, 1, true, "en")
	if r := e.do(http.MethodPost, "/app/preview", tok, url.Values{}); r.status != http.StatusConflict {
		t.Errorf("preview before settings: %d", r.status)
	}
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	// A preview only reads: it may run before activation; a sync may not.
	if r := e.do(http.MethodPost, "/app/preview", tok, url.Values{}); r.status != http.StatusAccepted {
		t.Errorf("preview of an inactive portal: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/app/sync", tok, url.Values{}); r.status != http.StatusConflict {
		t.Errorf("sync of an inactive portal: %d", r.status)
	}
	// Until activation its previews wait with anyone's installs' previews,
	// not in the activated portals' queue.
	previewQueue := func() (q string) {
		t.Helper()
		if err := e.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(queue, ','), '') FROM river_job
			WHERE kind = 'sync_preview'`).Scan(&q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	if q := previewQueue(); q != queues.TrialPreview {
		t.Errorf("an inactive portal's preview is in queue %q, want %q", q, queues.TrialPreview)
	}
	if _, err := e.pool.Exec(context.Background(), `DELETE FROM river_job WHERE kind = 'sync_preview'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE portals SET activation_state = 'active' WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodPost, "/app/preview", tok, url.Values{}); r.status != http.StatusAccepted {
		t.Errorf("preview: %d %s", r.status, r.body)
	}
	if q := previewQueue(); q != queues.Preview {
		t.Errorf("an active portal's preview is in queue %q, want %q", q, queues.Preview)
	}
	if r := e.do(http.MethodPost, "/app/sync", tok, url.Values{}); r.status != http.StatusAccepted {
		t.Errorf("sync: %d %s", r.status, r.body)
	}
	r := e.do(http.MethodPost, "/app/sync", tok, url.Values{})
	if r.status != http.StatusAccepted || !strings.Contains(r.body, "already") {
		t.Errorf("second sync: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/app/approve", tok, url.Values{}); r.status != http.StatusConflict {
		t.Errorf("approve with nothing held: %d", r.status)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync' AND args->>'trigger' = 'manual' AND (args->>'portal_id')::bigint = $1`, p.ID); n != 1 {
		t.Errorf("%d manual sync jobs, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync_preview'`); n != 1 {
		t.Errorf("%d preview jobs, want 1", n)
	}
}

func TestRunReportAndCSV(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("rep", "en")
	sess, tok := e.session(p, 1, true, "en")
	ctx := context.Background()
	rs := syncer.NewStore(e.pool)
	run, err := rs.StartRun(ctx, p.ID, syncer.TriggerScheduled)
	if err != nil {
		t.Fatal(err)
	}
	evil := "=HYPERLINK(\"http://x\")<img src=x onerror=alert(1)>"
	if err := rs.RecordItems(ctx, p.ID, run, []syncer.RunItem{
		{Kind: syncer.KindDepartment, B24ID: 5, Action: syncer.ActionCreate, After: map[string]string{"name": evil}, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 9, Action: syncer.ActionDeactivate, Before: map[string]string{"first_name": "Ann", "last_name": "Lee"},
			Reason: syncer.Reasons{{Code: syncer.ReasonDismissed}, {Code: syncer.ReasonHeld}}, Status: syncer.ItemHeld},
		// Written before reasons had codes: its English text stays.
		{Kind: syncer.KindUser, B24ID: 10, Action: syncer.ActionRefuse, Reason: syncer.Reasons{{Code: syncer.ReasonText, Args: []string{"an old reason"}}},
			Status: syncer.ItemRefused},
		// A Learn ID comes from the Learn account, an outside party.
		{Kind: syncer.KindUser, B24ID: 11, LearnID: `=HYPERLINK("http://evil.example","x")`, Action: syncer.ActionUpdate,
			Status: syncer.ItemApplied},
	}); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, run, syncer.RunHeld, map[string]int{"department.create": 1, "user.held": 1}, "", []int64{9}); err != nil {
		t.Fatal(err)
	}
	r := e.do(http.MethodGet, "/app/runs/"+strconv.FormatInt(run, 10), tok, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	for _, want := range []string{`id="report-body"`, " · scheduled · ", `<span class="badge held">held</span>`,
		`<td data-label="Object">department #5</td><td data-label="Name"><span class="s-long">=HYPERLINK(&#34;http://x&#34;)&lt;img</span> src=x onerror=alert(1)&gt;</td><td data-label="Action">create</td><td data-label="Status">applied</td><td data-label="Details"></td>`,
		`<td data-label="Object">user #9</td><td data-label="Name">Ann Lee</td><td data-label="Action">deactivate</td><td data-label="Status">held for approval</td><td data-label="Details">dismissed in Bitrix24; held: waiting for approval`,
		`<td data-label="Details">an old reason</td>`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("report lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "<img") {
		t.Error("a department name reached the report as markup")
	}
	// A Russian admin reads the report in Russian: the words of the page,
	// not the codes of the run.
	_, ruTok := e.session(p, 1, true, "ru")
	if r := e.do(http.MethodGet, "/app/runs/"+strconv.FormatInt(run, 10), ruTok, nil); r.status != 200 ||
		!strings.Contains(r.body, `<td data-label="Объект">пользователь #9</td><td data-label="Название">Ann Lee</td><td data-label="Действие">деактивировать</td><td data-label="Статус">ждёт подтверждения</td>`) ||
		!strings.Contains(r.body, "Подробности") || strings.Contains(r.body, ">deactivate<") ||
		!strings.Contains(r.body, "уволен в Битрикс24; приостановлено: ждёт подтверждения") {
		t.Errorf("Russian report:\n%s", r.body)
	}
	r = e.do(http.MethodGet, "/app/runs/"+strconv.FormatInt(run, 10)+"/csv", tok, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %v", r.status, r.header)
	}
	lines := strings.Split(strings.TrimPrefix(r.body, "\uFEFF"), "\n")
	if lines[0] != "kind,bitrix24_id,learn_id,name,action,status,reason,changes" || !strings.Contains(lines[1], `"'=HYPERLINK(`) ||
		!strings.Contains(lines[2], ",dismissed in Bitrix24; held: waiting for approval,") {
		t.Errorf("csv:\n%s", r.body)
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	var learnCell string
	for _, rec := range records {
		if rec[0] == "user" && rec[1] == "11" {
			learnCell = rec[2]
		}
	}
	if learnCell != `'=HYPERLINK("http://evil.example","x")` {
		t.Errorf("learn_id cell = %q, want the formula defused with a leading apostrophe", learnCell)
	}
	if r := e.do(http.MethodGet, "/app/runs/abc", tok, nil); r.status != http.StatusNotFound {
		t.Errorf("bad id: %d", r.status)
	}

	// The panel shows the held run with its Approve button; approving needs
	// an active portal and queues an approved sync.
	if _, err := e.pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	p, _ = store.GetPortal(ctx, e.pool, p.ID)
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	body := e.page(p, sess, tok)
	if !strings.Contains(body, `data-action="approve"`) || !strings.Contains(body, `data-report="`+strconv.FormatInt(run, 10)+`"`) {
		t.Error("the page lacks the approve button or the report link")
	}
	if r := e.do(http.MethodPost, "/app/approve", tok, url.Values{}); r.status != http.StatusAccepted {
		t.Errorf("approve: %d %s", r.status, r.body)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync' AND args->>'trigger' = 'approved'`); n != 1 {
		t.Errorf("%d approved jobs", n)
	}
}

func TestPageShowsStoredValuesAndEscapesNames(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("esc", "de") // not Russian: English page
	sess, tok := e.session(p, 1, true, "de")
	e.depts = []orgDept{
		{ID: 1, Name: "Acme", Employees: 2},
		{ID: 2, Parent: 1, Name: `<img src=x onerror=alert(1)>`, Employees: 3},
		{ID: 3, Parent: 1, Name: `</script><script>alert(2)</script>`, Employees: 1},
	}
	if r, _ := e.save(tok, with(validForm(), "learn_email", `"><b>x@y`)); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	body := e.page(p, sess, tok)
	for _, bad := range []string{"<img src=x", "<script>alert", `"><b>`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{`\u003cimg src=x onerror=alert(1)\u003e`, `value="https://acme.ispringlearn.ru"`,
		`value="03:00"`, `value="15:30"`, `name="send_login_email" id="send_login_email" value="1" checked`,
		`"selected":[1,7]`, "Administrator account URL", `data-utc="`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// A portal whose syncs keep failing says so, escaped.
	if _, err := e.pool.Exec(context.Background(), `UPDATE portals SET needs_attention = true,
		last_sync_error = '<b>learn said no</b>' WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	// As every request does, the page renders the portal as stored now.
	p, err := store.GetPortal(context.Background(), e.pool, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The stored error follows a sentence, as the detail for support.
	if body := e.page(p, sess, tok); !strings.Contains(body, "Syncs keep failing. The last error: <span class=\"s-run-error\">The run failed on an iSpring Learn request.</span>") ||
		!strings.Contains(body, "Details for support: <code>&lt;b&gt;learn said no&lt;/b&gt;</code>") {
		t.Error("the attention note is missing or unescaped")
	}
	// When Bitrix24 cannot be read, the page still renders, says so, and
	// sends no departments field, so a save keeps the stored selection.
	e.treeErr = errors.New("bitrix24 down")
	body = e.page(p, sess, tok)
	if !strings.Contains(body, `id="tree-error"`) || strings.Contains(body, `name="departments"`) {
		t.Error("tree failure not shown")
	}
	if r, _ := e.save(tok, with(validForm(), "departments", "<absent>", "learn_password", "")); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	if st, _ := settings.Load(context.Background(), e.pool, e.kr, p.ID); fmt.Sprint(st.Departments) != "{[1 7] [9]}" {
		t.Errorf("selection after a save without the tree: %v", st.Departments)
	}
}

func TestBuildTree(t *testing.T) {
	t.Parallel()
	tr := buildTree([]orgDept{
		{ID: 5, Parent: 1, Name: "B", Sort: 500},
		{ID: 1, Name: "Root", Sort: 100},
		{ID: 4, Parent: 1, Name: "A", Sort: 500},
		{ID: 6, Parent: 4, Name: "A1", Sort: 100},
		{ID: 7, Parent: 99, Name: "Orphan"},
		{ID: 8, Parent: 9, Name: "Cycle8"},
		{ID: 9, Parent: 8, Name: "Cycle9"},
		{ID: 4, Parent: 5, Name: "dup"},
	})
	if got := fmt.Sprint(tr.ID); got != "[7 1 4 6 5 8 9]" {
		t.Errorf("order %s", got)
	}
	if got := fmt.Sprint(tr.Parent); got != "[-1 -1 1 2 1 -1 5]" {
		t.Errorf("parents %s", got)
	}
}

// genDepts builds a tree of n departments, 8 children per node, with long
// names and a few employees each.
func genDepts(n int) []orgDept {
	ds := make([]orgDept, n)
	for i := range ds {
		ds[i] = orgDept{ID: int64(i + 1), Name: fmt.Sprintf("Отдел продаж и развития № %d", i+1), Employees: i % 7}
		if i > 0 {
			ds[i].Parent = int64(i/8 + 1)
		}
	}
	return ds
}

func BenchmarkSettingsPage5000(b *testing.B) {
	e := newSettingsEnv(b)
	p := e.addPortal("bench", "ru")
	sess, tok := e.session(p, 1, true, "ru")
	e.depts = genDepts(5000)
	// An account with 200 profile fields, and a portal with 30 fields of
	// its own: the field mapping renders 200 rows of 42 choices.
	if _, err := settings.Save(context.Background(), e.pool, e.kr, p.ID, 1, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://bench.ispringlearn.test", "admin@bench.test", "pw"
	}); err != nil {
		b.Fatal(err)
	}
	fields := stubFields{}
	for i := range 200 {
		fields.learn = append(fields.learn, learn.FieldInfo{Name: fmt.Sprintf("user_defined_field%d", i), Label: fmt.Sprintf("Field %d", i),
			Type: "string", Required: i%50 == 0, Order: i})
	}
	for i := range 30 {
		fields.b24 = append(fields.b24, bitrix24.UserField{Name: fmt.Sprintf("UF_USR_%d", i), Type: "string", Label: fmt.Sprintf("Own %d", i)})
	}
	e.s.fields = fields
	var size int
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.s.renderSettings(w, httptest.NewRequest(http.MethodPost, "/b24/app", nil), p, sess, tok, activation.Contact{})
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
		size = w.Body.Len()
		if !strings.Contains(w.Body.String(), `id="field_map.user_defined_field199"`) {
			b.Fatal("the page has no field mapping")
		}
	}
	b.ReportMetric(float64(size)/1024, "KB/page")
}

// The field mapping's choices are written once, not once per Learn field:
// with 200 fields and 42 choices each they were 530 KB of a 915 KB page.
func TestFieldMapChoicesAreWrittenOnce(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("choices", "en")
	sess, tok := e.session(p, 1, true, "en")
	if _, err := settings.Save(context.Background(), e.pool, e.kr, p.ID, 1, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password = "https://choices.ispringlearn.test", "admin@choices.test", "pw"
		s.FieldMap = map[string]string{"user_defined_field3": "UF_USR_7", "user_defined_field4": "UF_GONE"}
	}); err != nil {
		t.Fatal(err)
	}
	fields := stubFields{}
	for i := range 20 {
		fields.learn = append(fields.learn, learn.FieldInfo{Name: fmt.Sprintf("user_defined_field%d", i), Label: fmt.Sprintf("Field %d", i), Type: "string", Order: i})
	}
	for i := range 10 {
		fields.b24 = append(fields.b24, bitrix24.UserField{Name: fmt.Sprintf("UF_USR_%d", i), Type: "string", Label: fmt.Sprintf("Own %d", i)})
	}
	e.s.fields = fields
	w := httptest.NewRecorder()
	e.s.renderSettings(w, httptest.NewRequest(http.MethodPost, "/b24/app", nil), p, sess, tok, activation.Contact{})
	page := w.Body.String()
	if n := strings.Count(page, `"UF_USR_2"`); n != 1 {
		t.Errorf("an unchosen choice is written %d times, want once", n)
	}
	if n := strings.Count(page, `<option value="UF_USR_7" selected>Own 7 (UF_USR_7)</option>`); n != 1 {
		t.Errorf("the saved choice is not selected in its row (%d)", n)
	}
	if strings.Contains(page, `value="UF_GONE"`) {
		t.Error("a choice no longer offered is shown as chosen")
	}
}

// stubFields answers the field mapping's questions without Learn or Bitrix24.
type stubFields struct {
	learn []learn.FieldInfo
	b24   []bitrix24.UserField
}

func (f stubFields) LearnFields(context.Context, int64, learn.Credentials, string) ([]learn.FieldInfo, error) {
	return f.learn, nil
}

func (f stubFields) B24Fields(context.Context, store.Portal, string) ([]bitrix24.UserField, error) {
	return f.b24, nil
}

func TestCountEmployees(t *testing.T) {
	t.Parallel()
	ds := []bitrix24.Department{{ID: 1, Name: "Root"}, {ID: 2, Parent: 1, Name: "Child", Sort: 300}}
	us := []bitrix24.User{
		{ID: 1, Active: true, Departments: []int64{1}},
		{ID: 2, Active: true, Departments: []int64{1, 2}}, // counted in both
		{ID: 3, Active: false, Departments: []int64{2}},   // fired
		{ID: 4, Active: true, UserType: "extranet", Departments: []int64{2}},
		{ID: 5, Active: true}, // no department: extranet
	}
	var n employeeCounts
	n.add(us)
	got := n.depts(ds)
	if fmt.Sprint(got) != "[{1 0 Root 0 2} {2 1 Child 300 1}]" {
		t.Errorf("counts %v", got)
	}
}

// A check that passes but could not confirm the user's administrator rights
// (learn.CheckUnconfirmedAdmin: Learn's reads show no role) saves, and the
// admin reads the warning in the save's message, in their language.
func TestLearnCheckWarningShownOnSave(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("warn", "ru")
	_, tok := e.session(p, 1, true, "ru")
	e.s.check = learnCheckedFunc(func(context.Context, learn.Credentials) (learn.Checked, error) {
		return learn.Checked{Warning: learn.CheckUnconfirmedAdmin}, nil
	})
	r, sr := e.save(tok, validForm())
	if r.status != http.StatusOK || !sr.OK {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	if want := i18n.T(i18n.RU, "check."+learn.CheckUnconfirmedAdmin); !strings.Contains(sr.Message, want) {
		t.Errorf("message %q, want the warning %q", sr.Message, want)
	}
}
