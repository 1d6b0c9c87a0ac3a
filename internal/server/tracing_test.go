package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A request with a method of the client's invention is traced as "_OTHER",
// in the span name and its method attribute; a standard method keeps its
// name.
func TestTraceRequestsOtherMethod(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	r := chi.NewRouter()
	r.Use(traceRequests(tp))
	r.HandleFunc("/x", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	for _, m := range []string{"AAAAAAAA", http.MethodGet} {
		req, err := http.NewRequestWithContext(t.Context(), m, srv.URL+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	// chi routes no unknown method, so that span has no route in its name.
	for i, want := range []struct{ name, method string }{{"_OTHER", "_OTHER"}, {"GET /x", http.MethodGet}} {
		s := spans[i]
		var attr string
		for _, kv := range s.Attributes() {
			if kv.Key == "http.request.method" {
				attr = kv.Value.AsString()
			}
		}
		if s.Name() != want.name || attr != want.method {
			t.Errorf("span %q with http.request.method %q, want %q and %q", s.Name(), attr, want.name, want.method)
		}
	}
}
