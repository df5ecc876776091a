package store

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// Backend is the backend name in effect results, metrics and sanitized
// error texts.
const Backend = "postgres"

// Classify turns a PostgreSQL or driver failure into an *infraerr.Error of
// transport db:
//   - connection exceptions (08…), server shutdown (57P01–57P03), dropped
//     connections and network errors → connection (retriable);
//   - serialization failures, deadlocks, lock timeouts → connection
//     (retriable: the spec files lock contention under InfraConnectionError);
//   - statement timeouts, cancelled queries and deadlines → timeout;
//   - insufficient resources (53…: too many connections, disk full) →
//     unavailable (retriable);
//   - authentication and privilege failures (28…, 42501) → authentication;
//   - data exceptions (22…), integrity violations (23…) and program limits
//     (54…: e.g. an index row too large) → content: the intent itself is bad
//     and will fail the same way every time;
//   - anything else → runtime (unknown).
//
// An error that already is an *infraerr.Error keeps its kind.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	ictx := infraerr.Context{Transport: infraerr.TransportDB, Operation: op, Target: Backend}
	var ie *infraerr.Error
	if errors.As(err, &ie) {
		return infraerr.Wrap(err, ictx, "")
	}
	kind, known := kindOf(err)
	if !known {
		if k, ok := infraerr.KindOf(err); ok {
			kind = k
		}
	}
	return infraerr.New(kind, ictx, "postgres "+op, err)
}

func kindOf(err error) (infraerr.Kind, bool) {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		code := pg.Code
		switch {
		case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03":
			return infraerr.KindConnection, true
		case code == "40001", code == "40P01", code == "55P03":
			return infraerr.KindConnection, true
		case code == "57014":
			return infraerr.KindTimeout, true
		case strings.HasPrefix(code, "53"):
			return infraerr.KindUnavailable, true
		case strings.HasPrefix(code, "28"), code == "42501":
			return infraerr.KindAuthentication, true
		case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"), strings.HasPrefix(code, "54"):
			return infraerr.KindContent, true
		}
		return infraerr.KindRuntime, false
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return infraerr.KindTimeout, true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return infraerr.KindConnection, true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return infraerr.KindConnection, true
	}
	// pgx reports a connection that died under a statement without a typed
	// error ("conn closed", "unexpected EOF" inside its own wrapping).
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"conn closed", "connection reset", "broken pipe", "unexpected eof", "connection refused", "closed pool"} {
		if strings.Contains(msg, s) {
			return infraerr.KindConnection, true
		}
	}
	return infraerr.KindRuntime, false
}

// IsDataError reports whether err says the written data itself was refused
// (content kind): retrying cannot help, the intent is poison.
func IsDataError(err error) bool {
	k, ok := infraerr.KindOf(err)
	return ok && k == infraerr.KindContent
}

// Error codes of a failed projector effect result (spec 6.1).
const (
	CodeConnection = "POSTGRES_CONNECTION_ERROR"
	CodeTimeout    = "POSTGRES_TIMEOUT_ERROR"
	CodeAuth       = "POSTGRES_AUTH_ERROR"
	CodeUpsert     = "POSTGRES_UPSERT_ERROR"
	CodeUnknown    = "POSTGRES_UNKNOWN_ERROR"
)

// ResultCode maps a classified failure to the effect result's error_code:
// timeouts → POSTGRES_TIMEOUT_ERROR; connection, unavailable (an open
// breaker too) and rate limited → POSTGRES_CONNECTION_ERROR; authentication
// → POSTGRES_AUTH_ERROR; refused data and bad payloads →
// POSTGRES_UPSERT_ERROR; anything else → POSTGRES_UNKNOWN_ERROR.
func ResultCode(err error) string {
	k, _ := infraerr.KindOf(err)
	switch k {
	case infraerr.KindTimeout:
		return CodeTimeout
	case infraerr.KindConnection, infraerr.KindUnavailable, infraerr.KindRateLimited:
		return CodeConnection
	case infraerr.KindAuthentication:
		return CodeAuth
	case infraerr.KindContent, infraerr.KindConfiguration:
		return CodeUpsert
	}
	return CodeUnknown
}

// ResultError is the sanitized error text of a failed result: the spec's
// allowlist summary ("postgres operation failed: connection refused"). An
// open breaker and exhausted server resources read "postgres operation
// failed: service unavailable".
func ResultError(err error) string {
	if k, _ := infraerr.KindOf(err); k == infraerr.KindUnavailable {
		return infraerr.SanitizeBackendError(Backend, "service unavailable")
	}
	return infraerr.SanitizeBackendError(Backend, err.Error())
}
