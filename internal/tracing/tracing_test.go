package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func recorder(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

// A client span is named by what name makes of the request and carries
// neither the URL nor its query, where the tokens are.
func TestTransportSpanHasNoURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	defer srv.Close()
	rec, tp := recorder(t)
	hc := &http.Client{Transport: Transport(tp, "bitrix24", func(*http.Request) string { return "user.get" }, nil)}
	resp, err := hc.Get(srv.URL + "/rest/user.get.json?auth=SECRET-TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "bitrix24 user.get" || spans[0].SpanKind() != trace.SpanKindClient {
		t.Fatalf("spans %v", spans)
	}
	for _, a := range spans[0].Attributes() {
		if v := a.Value.Emit(); strings.Contains(v, "SECRET") || strings.Contains(v, "/rest") {
			t.Errorf("attribute %s=%s", a.Key, v)
		}
	}
	if spans[0].Status().Description != "418" {
		t.Errorf("status %+v", spans[0].Status())
	}
}

// Lines logged in a span carry its ids once, also through a logger that
// was given them already.
func TestLogHandlerAddsTraceIDs(t *testing.T) {
	_, tp := recorder(t)
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil)))
	id := span.SpanContext().TraceID().String()

	log.InfoContext(ctx, "in span")
	log.Info("no context")
	log.With(LogAttrs(ctx)...).InfoContext(ctx, "given")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines %q", lines)
	}
	if !strings.Contains(lines[0], "trace_id="+id) || !strings.Contains(lines[0], "span_id=") {
		t.Errorf("in span: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("no context: %s", lines[1])
	}
	if strings.Count(lines[2], "trace_id=") != 1 {
		t.Errorf("given: %s", lines[2])
	}
}
