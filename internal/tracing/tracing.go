// Package tracing is the app's OpenTelemetry setup: a tracer provider built
// from the standard OTEL_* variables when an OTLP endpoint is set, and a
// no-op one otherwise, so that an operator who sets nothing pays nothing.
// It also names outgoing calls' spans and puts trace ids in the logs.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the service.name of the app's spans unless
// OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "b24learn"

// Tracing is the process's tracer provider and how to flush it on exit.
type Tracing struct {
	Provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider // nil: nothing is exported
}

// Exporting reports whether spans leave the process.
func (t *Tracing) Exporting() bool { return t.sdk != nil }

// Shutdown exports what is still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// Off is the no-op setup: nothing is recorded or exported.
func Off() *Tracing { return &Tracing{Provider: noop.NewTracerProvider()} }

// FromEnv builds the tracer provider. Only when OTEL_EXPORTER_OTLP_ENDPOINT
// (or its traces-only form) is set and OTEL_SDK_DISABLED is not "true" is an
// exporter created; everything else (protocol, headers, sampler, batching,
// resource) the OpenTelemetry SDK reads from the environment itself.
func FromEnv(ctx context.Context) (*Tracing, error) {
	return fromEnv(ctx, os.Getenv)
}

func fromEnv(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") ||
		getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return Off(), nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("trace exporter (OTEL_EXPORTER_OTLP_*, OTEL_TRACES_EXPORTER): %w", err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return Off(), nil
	}
	// Later options override earlier ones: the environment's service name
	// wins over the default.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(ServiceName)),
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
	return &Tracing{Provider: tp, sdk: tp}, nil
}

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
