package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// serviceName is the service.name of the app's spans unless
// OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const serviceName = "b24learn"

// traceSetup is the process's tracer provider and how to flush it on exit.
type traceSetup struct {
	provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil: nothing is exported
}

// exporting reports whether spans leave the process.
func (t *traceSetup) exporting() bool { return t.sdk != nil }

// shutdown exports what is still buffered and stops the exporter.
func (t *traceSetup) shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

func tracingOff() *traceSetup { return &traceSetup{provider: noop.NewTracerProvider()} }

// tracingFromEnv builds the tracer provider. Only when
// OTEL_EXPORTER_OTLP_ENDPOINT (or its traces-only form) is set and
// OTEL_SDK_DISABLED is not "true" is an exporter made; everything else
// (exporter, protocol, headers, sampler, batching, resource) the
// OpenTelemetry SDK reads from the process environment itself.
func tracingFromEnv(ctx context.Context) (*traceSetup, error) {
	return tracingFrom(ctx, os.Getenv)
}

func tracingFrom(ctx context.Context, getenv func(string) string) (*traceSetup, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") ||
		getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return tracingOff(), nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if err := checkOTLPHeaders(getenv(v)); err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("trace exporter (OTEL_EXPORTER_OTLP_*, OTEL_TRACES_EXPORTER): %w", err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return tracingOff(), nil
	}
	// Later options override earlier ones: the environment's service name
	// wins over the default.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("trace resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): %w", err)
	}
	// The sampler (OTEL_TRACES_SAMPLER) and the batching (OTEL_BSP_*) come
	// from the environment when no option sets them.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &traceSetup{provider: tp, sdk: tp}, nil
}

// checkOTLPHeaders checks the OTLP headers' form (comma-separated
// key=value, keys HTTP header names, values percent-encoded), as the SDK
// parses them. The SDK skips a malformed header, logging its value, an API
// key as often as not, and exports without it; the error here names only
// the entry's position.
func checkOTLPHeaders(raw string) error {
	for i, part := range strings.Split(raw, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if _, err := url.PathUnescape(v); !ok || !isHeaderName(strings.TrimSpace(k)) || err != nil {
			return fmt.Errorf("entry %d is not key=value with a header name as key (letters, digits, !#$%%&'*+-.^_`|~) and a percent-encoded value, e.g. api-key=abc123", i+1)
		}
	}
	return nil
}

// isHeaderName reports whether k is an HTTP field name (an RFC 9110
// token), the test the SDK applies before it drops a header.
func isHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)
		if !ok {
			return false
		}
	}
	return true
}
