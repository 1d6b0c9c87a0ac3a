package tracing

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler wraps h so that a record logged with a context that holds a
// recording span carries trace_id and span_id, and a log line can be found
// from its trace and back. Loggers that already carry them (With(LogAttrs))
// are left as they are.
func LogHandler(h slog.Handler) slog.Handler { return &logHandler{h: h} }

type logHandler struct {
	h      slog.Handler
	hasIDs bool // trace_id was added with WithAttrs
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if !l.hasIDs {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return l.h.Handle(ctx, r)
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *l
	c.h = l.h.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "trace_id" {
			c.hasIDs = true
		}
	}
	return &c
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	c := *l
	c.h = l.h.WithGroup(name) // the app logs no groups; ids would land in it
	return &c
}

// LogAttrs are the trace_id and span_id of ctx's span, none without one:
// for a logger made once for a whole run (logger.With(LogAttrs(ctx)...)),
// whose lines are not all logged with the run's context.
func LogAttrs(ctx context.Context) []any {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []any{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
}
