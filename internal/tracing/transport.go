package tracing

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Transport wraps base so that each request is a client span named
// "<service> <name(req)>". name must say what was called without anything
// secret (a REST method, a path without ids); the span carries that, the
// method, the host and the answer's status, never the URL, its query or a
// header, so tokens, passwords and webhook codes stay out of the traces.
// No trace context is sent: the calls go to other companies' servers.
// With a provider that records nothing, base is returned as it is.
func Transport(tp trace.TracerProvider, service string, name func(*http.Request) string, base http.RoundTripper, attrs ...attribute.KeyValue) http.RoundTripper {
	if !On(tp) {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{tracer: Tracer(tp), service: service, name: name, base: base, attrs: attrs}
}

type transport struct {
	tracer  trace.Tracer
	service string
	name    func(*http.Request) string
	base    http.RoundTripper
	attrs   []attribute.KeyValue
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := t.name(req)
	attrs := append([]attribute.KeyValue{
		attribute.String("peer.service", t.service),
		attribute.String("rpc.method", op),
		attribute.String("http.request.method", req.Method),
		attribute.String("server.address", req.URL.Hostname()),
	}, t.attrs...)
	ctx, span := t.tracer.Start(req.Context(), t.service+" "+op,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		// Not the error's text: a wrapped *url.Error quotes the whole URL,
		// query and all.
		span.SetStatus(codes.Error, "transport error")
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	return resp, nil
}
