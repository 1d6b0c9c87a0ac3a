package server

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"b24learn/internal/tracing"
)

// traceRequests makes each request a server span named by its route
// pattern ("GET /manager/portals/{id}"), never by its path or query, which
// carry ids and Bitrix24's tokens. Without tracing it is not in the chain.
// Incoming trace context is not honoured: the callers are browsers and
// Bitrix24, not services of ours.
func traceRequests(tp trace.TracerProvider) func(http.Handler) http.Handler {
	if !tracing.On(tp) {
		return func(next http.Handler) http.Handler { return next }
	}
	tracer := tracing.Tracer(tp)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			method := knownMethod(r.Method)
			ctx, span := tracer.Start(r.Context(), method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", method)))
			defer span.End()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			r = r.WithContext(ctx)
			next.ServeHTTP(ww, r)
			// chi fills the pattern in while routing, in the context's
			// RouteContext, which this request shares.
			if route := chi.RouteContext(r.Context()).RoutePattern(); route != "" {
				span.SetName(method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, strconv.Itoa(status))
			}
		})
	}
}

// knownMethod is the request's method if it is a standard one, else
// "_OTHER" (OpenTelemetry's convention): the method is the client's free
// text, and an anonymous client must not choose span names or metric
// series.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
