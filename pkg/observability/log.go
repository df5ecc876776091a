// Package observability gives every service the same logging, metrics and
// health plumbing: slog JSON with a correlation_id on every line that concerns a
// message, one Prometheus registry, and /healthz, /readyz and /metrics on one
// HTTP server.
package observability

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/google/uuid"
)

type ctxKey int

const (
	correlationKey ctxKey = iota
	loggerKey
)

// NewLogger returns a JSON slog.Logger writing to w at the level named by
// level (debug, info, warn, error; case-insensitive; anything else is info).
// Every record carries service=name.
func NewLogger(w io.Writer, service, level string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: ParseLevel(level)})
	return slog.New(h).With("service", service)
}

// ParseLevel maps the spec's ONEX_LOG_LEVEL values to slog levels.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "critical":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// WithCorrelation returns a context carrying id and a logger that stamps
// correlation_id on every line. A nil id leaves the context unchanged, so a
// message without a usable id does not pollute logs with zero UUIDs.
func WithCorrelation(ctx context.Context, base *slog.Logger, id uuid.UUID) context.Context {
	if id == uuid.Nil {
		return ctx
	}
	if base == nil {
		base = Logger(ctx)
	}
	ctx = context.WithValue(ctx, correlationKey, id)
	return context.WithValue(ctx, loggerKey, base.With("correlation_id", id.String()))
}

// WithLogger returns a context whose Logger is l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// CorrelationID returns the correlation id carried by ctx, or uuid.Nil.
func CorrelationID(ctx context.Context) uuid.UUID {
	id, _ := ctx.Value(correlationKey).(uuid.UUID)
	return id
}

// Logger returns the logger carried by ctx, or slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
