package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/jobs"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
	"b24learn/internal/syncer"
	"b24learn/internal/tracing"
)

// collector is an OTLP/HTTP endpoint in the test: it keeps every span sent
// to /v1/traces (protobuf, as the SDK sends by default).
type collector struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	names map[string]bool // resource service.name values seen
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.names[a.GetValue().GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&collectortracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (c *collector) all() []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tracepb.Span(nil), c.spans...)
}

func attr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}

// One sync run through River by `serve` and one page request reach an
// OTLP collector as one trace per job: the job's span, the sync's phases
// as its children, and the Bitrix24 and Learn calls under the phase that
// made them; the page request is a server span named by its route.
func TestServeExportsTraces(t *testing.T) {
	ctx := context.Background()
	col := &collector{names: map[string]bool{}}
	csrv := httptest.NewServer(col)
	t.Cleanup(csrv.Close)
	// The SDK reads these itself (the process environment).
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", csrv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "b24learn-test")

	dbURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const learnEmail, learnPassword = "admin@learn.trace", "learn-trace-password"
	ls := learnsim.New(learnsim.Options{Seed: 3, Mount: learnsim.MountAccountHost})
	lsrv := httptest.NewServer(ls.Handler())
	t.Cleanup(lsrv.Close)
	if _, err := ls.AddAccount(learnsim.AccountOptions{URL: lsrv.URL, Email: learnEmail, Password: learnPassword}); err != nil {
		t.Fatal(err)
	}
	bs := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1})
	t.Cleanup(bs.Close)
	bp := bs.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(7, 20, 3)})

	env := map[string]string{
		"DATABASE_URL": dbURL, "HTTP_ADDR": "127.0.0.1:0", "PUBLIC_URL": "http://127.0.0.1:1",
		"B24_CLIENT_ID": bs.ClientID(), "B24_CLIENT_SECRET": bs.ClientSecret(), "B24_OAUTH_URL": bs.URL,
		"SECRET_KEYS": testKey, "LEARN_ALLOW_PRIVATE_HOSTS": "true", "B24_ALLOW_PRIVATE_HOSTS": "true",
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	// Migrate before the portal is stored; serve itself does not.
	mp, _, err := openDatabase(ctx, dbURL, slog.New(slog.DiscardHandler), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	mp.Close()
	p := apptest.InstallPortal(t, pool, cfg.Keyring, bp)
	apptest.Configure(t, pool, cfg.Keyring, p.ID, apptest.Settings{LearnURL: lsrv.URL, LearnEmail: learnEmail,
		LearnPassword: learnPassword, FirstRun: "06:00", Selected: []int64{bp.Departments()[0].ID}}, true)

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))
	sctx, stop := context.WithCancel(ctx)
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- serve(sctx, cfg, log, serveOptions{noMigrate: true, ready: func(a string) { addrc <- a }})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-served:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}

	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inserter.Insert(ctx, jobs.SyncArgs{PortalID: p.ID, Trigger: syncer.TriggerManual}, nil); err != nil {
		t.Fatal(err)
	}
	var runID int64
	var status string
	deadline := time.Now().Add(time.Minute)
	for status == "" || status == "running" {
		if time.Now().After(deadline) {
			t.Fatalf("no finished run within a minute; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
		_ = pool.QueryRow(ctx, `SELECT id, status FROM sync_runs WHERE portal_id = $1`, p.ID).Scan(&runID, &status)
	}
	if status != syncer.RunSucceeded && status != syncer.RunPartial {
		t.Fatalf("run %d: %s; log:\n%s", runID, status, logs.String())
	}
	resp, err := http.Get("http://" + addr + "/manager/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Stopping serve flushes the batch to the collector.
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}

	spans := col.all()
	t.Logf("%d spans: %v", len(spans), names(spans))
	if !col.names["b24learn-test"] {
		t.Errorf("service names %v, want OTEL_SERVICE_NAME's b24learn-test", col.names)
	}
	byName := map[string][]*tracepb.Span{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
		// Names and attributes hold no secret and no URL query.
		for _, text := range append([]string{s.Name}, attrTexts(s)...) {
			if strings.Contains(text, "?") || strings.Contains(text, "auth") || strings.Contains(text, learnPassword) ||
				strings.Contains(text, bs.ClientSecret()) {
				t.Errorf("span %q carries %q", s.Name, text)
			}
		}
	}
	jobSpans := byName["river.work/sync"]
	if len(jobSpans) != 1 {
		t.Fatalf("%d river.work/sync spans, want 1; spans: %v", len(jobSpans), names(spans))
	}
	job := jobSpans[0]
	if job.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("job span kind %v", job.Kind)
	}
	if v := attr(job, "run_id"); v.GetIntValue() != runID {
		t.Errorf("job span run_id %v, want %d", v, runID)
	}
	if v := attr(job, "portal_id"); v.GetIntValue() != p.ID {
		t.Errorf("job span portal_id %v, want %d", v, p.ID)
	}
	phase := map[string]*tracepb.Span{}
	for _, name := range []string{"sync.read_bitrix24", "sync.read_learn", "sync.plan", "sync.apply"} {
		ss := byName[name]
		if len(ss) != 1 {
			t.Fatalf("%d %s spans, want 1; spans: %v", len(ss), name, names(spans))
		}
		if !bytes.Equal(ss[0].ParentSpanId, job.SpanId) || !bytes.Equal(ss[0].TraceId, job.TraceId) {
			t.Errorf("%s is not a child of the job span", name)
		}
		phase[name] = ss[0]
	}
	// Each phase's calls are its children: Bitrix24's under the Bitrix24
	// read, Learn's listing under the Learn read, its writes under apply.
	children := func(parent *tracepb.Span, prefix string) int {
		n := 0
		for _, s := range spans {
			if bytes.Equal(s.ParentSpanId, parent.SpanId) && strings.HasPrefix(s.Name, prefix) {
				if s.Kind != tracepb.Span_SPAN_KIND_CLIENT {
					t.Errorf("%s: kind %v, want client", s.Name, s.Kind)
				}
				n++
			}
		}
		return n
	}
	if children(phase["sync.read_bitrix24"], "bitrix24 ") == 0 {
		t.Errorf("no bitrix24 call under sync.read_bitrix24; spans: %v", names(spans))
	}
	if children(phase["sync.read_learn"], "learn GET ") == 0 {
		t.Errorf("no learn read under sync.read_learn; spans: %v", names(spans))
	}
	if children(phase["sync.apply"], "learn ") == 0 {
		t.Errorf("no learn write under sync.apply; spans: %v", names(spans))
	}

	page := byName["GET /manager/signin"]
	if len(page) != 1 || page[0].Kind != tracepb.Span_SPAN_KIND_SERVER || attr(page[0], "http.response.status_code").GetIntValue() != 200 {
		t.Errorf("page request spans %v, want one server span answering 200; spans: %v", page, names(spans))
	}
	// The run's log lines carry the portal, the run and the job's trace.
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `msg="sync finished"`) {
			for _, want := range []string{"portal_id=", "run_id=", "trace_id=" + hex.EncodeToString(job.TraceId)} {
				if !strings.Contains(line, want) {
					t.Errorf("log line %q lacks %s", line, want)
				}
			}
			return
		}
	}
	t.Errorf("no sync finished line in the log:\n%s", logs.String())
}

func attrTexts(s *tracepb.Span) []string {
	var out []string
	for _, a := range s.Attributes {
		out = append(out, a.Key+"="+a.GetValue().GetStringValue())
	}
	return out
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Without an OTLP endpoint no exporter is made, whatever else is set: the
// provider is the no-op one, its spans record nothing, and the wrappers
// leave the HTTP clients as they are.
func TestNoEndpointNoExporter(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"nothing set":       {},
		"only the protocol": {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "x"},
		"sdk disabled":      {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
	} {
		t.Run(name, func(t *testing.T) {
			tr, err := tracingFrom(context.Background(), envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if tr.exporting() || tracing.On(tr.provider) {
				t.Fatalf("exporting %v, on %v: want neither", tr.exporting(), tracing.On(tr.provider))
			}
			_, span := tracing.Tracer(tr.provider).Start(context.Background(), "x")
			if span.IsRecording() {
				t.Error("a no-op span records")
			}
			base := http.DefaultTransport
			if tracing.Transport(tr.provider, "learn", nil, base) != base {
				t.Error("the transport was wrapped")
			}
			if err := tr.shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

// With the endpoint set (here in the process environment, which the SDK
// reads), an exporter is made; a protocol the SDK does not know is refused
// with the variables' names.
func TestEndpointMakesExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tr, err := tracingFromEnv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !tr.exporting() || !tracing.On(tr.provider) {
		t.Fatal("no exporter with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing to flush; do not wait for the closed port
	_ = tr.shutdown(ctx)

	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, err := tracingFromEnv(context.Background()); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_") {
		t.Fatalf("unknown protocol: %v", err)
	}
}

// Headers hold API keys. The SDK, given malformed ones, logs the value on
// stderr and exports without them (every span then refused by the
// collector): serve stops instead, naming the variable, not the value.
func TestMalformedOTLPHeadersStopServe(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, bad := range []string{"api-key=sekretVALUE%zz", "sekretVALUE", "a=1,sekretVALUE", "=sekretVALUE",
			// keys the SDK drops as not HTTP header names (RFC 9110 tokens)
			"api key=sekretVALUE", "x-tenant=7, api:key=sekretVALUE", "ключ=sekretVALUE", "api/key=sekretVALUE"} {
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", v: bad}
			_, err := tracingFrom(context.Background(), envOf(env))
			if err == nil || !strings.Contains(err.Error(), v) || strings.Contains(err.Error(), "sekret") {
				t.Errorf("%s=%q: %v, want an error naming the variable without its value", v, bad, err)
			}
		}
	}
	ok := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, x-tenant=7"}
	tr, err := tracingFrom(context.Background(), envOf(ok))
	if err != nil {
		t.Fatalf("well-formed headers: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = tr.shutdown(ctx)
}
