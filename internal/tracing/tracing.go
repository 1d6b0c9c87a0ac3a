// Package tracing is the app's OpenTelemetry glue: whether a tracer
// provider records at all, client spans named without secrets, and trace ids
// in the log lines. The provider itself is built from the OTEL_* variables in
// cmd/b24learn, so that packages tracing their work link only the API.
package tracing

import (
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// On reports whether tp records anything: nil and the no-op provider do
// not, and the HTTP wrappers then stay out of the way entirely.
func On(tp trace.TracerProvider) bool {
	if tp == nil {
		return false
	}
	_, off := tp.(noop.TracerProvider)
	return !off
}

// Tracer is tp's tracer for the app's own spans, a no-op one for nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("b24learn")
}
