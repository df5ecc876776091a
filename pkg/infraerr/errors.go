// Package infraerr is the error model of the ONEX fleet: a small set of error
// kinds that mirror the Python runtime's exception hierarchy (spec §7.1), the
// structured context every infrastructure error carries (§7.2), the
// retriable/non-retriable and content/infrastructure classifications used by
// consumers and effects (§6.5, §7.1), and the sanitizers that keep secrets out
// of errors, logs, DLQ records and API responses (§7.3).
//
// An *Error is an ordinary Go error value: it wraps its cause (errors.Is and
// errors.As see through it) and is classified by its Kind. Errors that are not
// *Error (standard library, driver or client errors) are classified by
// KindOf, so callers can ask Retriable, IsContent, TypeName and Code about any
// error.
//
// Error() of an *Error is NOT sanitized: it includes the message and the cause
// chain for local debugging. Anything that leaves the process or lands in a
// shared log must go through SanitizeError / SanitizeString first.
package infraerr

import (
	"errors"

	"github.com/google/uuid"
)

// Kind classifies an error. Each kind corresponds to one Python exception
// class (see ClassName) and carries one default error code (see DefaultCode).
// The zero value is KindRuntime, the infrastructure root.
type Kind int

const (
	// KindRuntime is a generic infrastructure/runtime failure
	// (RuntimeHostError). Not retriable (§6.5: unknown failures are permanent).
	KindRuntime Kind = iota
	// KindContent is a content/validation failure of a message or request
	// (pydantic ValidationError). A content error — the message will never
	// succeed — so it is dead-lettered, never retried.
	KindContent
	// KindConfiguration is bad configuration or a protocol/schema mismatch,
	// including an unknown topic and "no dispatcher" (ProtocolConfigurationError).
	// Classified as a content error by the consumer boundary (§7.1).
	KindConfiguration
	// KindSecretResolution is a secret that could not be resolved
	// (SecretResolutionError). Not retriable.
	KindSecretResolution
	// KindConnection is a failure to reach or talk to a backend: refused,
	// reset, broker unavailable, lock contention (InfraConnectionError).
	// Retriable. Its code depends on the transport.
	KindConnection
	// KindTimeout is an operation that did not finish in time
	// (InfraTimeoutError). Retriable.
	KindTimeout
	// KindAuthentication is a 401/403 or key mismatch
	// (InfraAuthenticationError). Not retriable.
	KindAuthentication
	// KindUnavailable is a backend that is known to be unavailable, e.g. 503 or
	// an open circuit breaker (InfraUnavailableError). Retriable; the
	// Context.RetryAfterSeconds says when.
	KindUnavailable
	// KindRateLimited is a 429 or equivalent (InfraRateLimitedError). Retriable.
	KindRateLimited
	// KindRequestRejected is a request the backend refused as invalid
	// (InfraRequestRejectedError). Not retriable.
	KindRequestRejected
	// KindProtocol is a malformed or unexpected response from a backend
	// (InfraProtocolError). Not retriable.
	KindProtocol

	kindCount // sentinel, keep last
)

var kindInfo = [kindCount]struct {
	name      string
	class     string
	code      string
	retriable bool
}{
	KindRuntime:          {"runtime", "RuntimeHostError", CodeOperationFailed, false},
	KindContent:          {"content", "ValidationError", CodeValidationError, false},
	KindConfiguration:    {"configuration", "ProtocolConfigurationError", CodeInvalidConfiguration, false},
	KindSecretResolution: {"secret_resolution", "SecretResolutionError", CodeResourceNotFound, false},
	KindConnection:       {"connection", "InfraConnectionError", CodeServiceUnavailable, true},
	KindTimeout:          {"timeout", "InfraTimeoutError", CodeTimeout, true},
	KindAuthentication:   {"authentication", "InfraAuthenticationError", CodeAuthentication, false},
	KindUnavailable:      {"unavailable", "InfraUnavailableError", CodeServiceUnavailable, true},
	KindRateLimited:      {"rate_limited", "InfraRateLimitedError", CodeRateLimit, true},
	KindRequestRejected:  {"request_rejected", "InfraRequestRejectedError", CodeInvalidInput, false},
	KindProtocol:         {"protocol", "InfraProtocolError", CodeOperationFailed, false},
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool { return k >= 0 && k < kindCount }

// String returns a short, stable, lowercase name for the kind (e.g.
// "timeout", "rate_limited"), suitable for metric labels and logs. An
// undeclared kind returns "runtime".
func (k Kind) String() string {
	if !k.Valid() {
		return kindInfo[KindRuntime].name
	}
	return kindInfo[k].name
}

// ClassName returns the Python exception class name this kind mirrors
// (e.g. "InfraTimeoutError"). It is what the DLQ `error_type` field and the
// replay tool's non-retryable filter match on. An undeclared kind returns
// "RuntimeHostError".
func (k Kind) ClassName() string {
	if !k.Valid() {
		return kindInfo[KindRuntime].class
	}
	return kindInfo[k].class
}

// Retriable reports whether failures of this kind are transient (§6.5):
// connection, timeout, rate-limited and unavailable are; everything else is not.
func (k Kind) Retriable() bool { return k.Valid() && kindInfo[k].retriable }

// Error codes of the ONEX error catalogue (§7.1). They are stable strings and
// safe to log, return to clients and use as metric labels.
const (
	CodeOperationFailed      = "ONEX_CORE_081_OPERATION_FAILED"
	CodeValidationError      = "ONEX_CORE_006_VALIDATION_ERROR"
	CodeInvalidInput         = "ONEX_CORE_007_INVALID_INPUT"
	CodeInvalidConfiguration = "ONEX_CORE_041_INVALID_CONFIGURATION"
	CodeResourceNotFound     = "ONEX_CORE_085_RESOURCE_NOT_FOUND"
	CodeNetworkError         = "ONEX_CORE_090_NETWORK_ERROR"
	CodeTimeout              = "ONEX_CORE_092_TIMEOUT_ERROR"
	CodeDatabaseConnection   = "ONEX_CORE_131_DATABASE_CONNECTION_ERROR"
	CodeRateLimit            = "ONEX_CORE_162_RATE_LIMIT_ERROR"
	CodeAuthentication       = "ONEX_CORE_163_AUTHENTICATION_ERROR"
	CodeServiceUnavailable   = "ONEX_CORE_205_SERVICE_UNAVAILABLE"
)

// Transport types (Python EnumInfraTransportType values, §7.1). Context.Transport
// holds one of these; other values are allowed but get the default code.
const (
	TransportHTTP       = "http"
	TransportDB         = "db"
	TransportKafka      = "kafka"
	TransportInfisical  = "infisical"
	TransportValkey     = "valkey"
	TransportGRPC       = "grpc"
	TransportRuntime    = "runtime"
	TransportMCP        = "mcp"
	TransportFilesystem = "filesystem"
	TransportInMemory   = "inmemory"
	TransportQdrant     = "qdrant"
	TransportGraph      = "graph"
	TransportLLM        = "llm"
	TransportBridge     = "bridge"
	// TransportConsul is not a Python transport value (Consul was removed from
	// the Python runtime) but this fleet talks to Consul; it maps to the
	// generic service-unavailable code like the other non-db/http transports.
	TransportConsul = "consul"
)

// DefaultCode returns the error code the Python runtime assigns to an error
// of kind k raised for transport (§7.1). Only KindConnection depends on the
// transport: db → ONEX_CORE_131, http/grpc → ONEX_CORE_090, runtime/inmemory →
// ONEX_CORE_081, anything else (including "") → ONEX_CORE_205.
func DefaultCode(k Kind, transport string) string {
	if k == KindConnection {
		switch transport {
		case TransportDB:
			return CodeDatabaseConnection
		case TransportHTTP, TransportGRPC:
			return CodeNetworkError
		case TransportRuntime, TransportInMemory:
			return CodeOperationFailed
		default:
			return CodeServiceUnavailable
		}
	}
	if !k.Valid() {
		return CodeOperationFailed
	}
	return kindInfo[k].code
}

// Context is the structured context of an infrastructure error
// (ModelInfraErrorContext, §7.2). All fields are optional, except that an
// *Error built by this package always has a non-nil CorrelationID.
// None of these fields may hold secrets: they are logged and published as is.
type Context struct {
	// Transport is the infrastructure involved (one of the Transport* constants).
	Transport string
	// Operation is what was being done, e.g. "publish", "handle_introspection_event".
	Operation string
	// Target names the resource or endpoint, e.g. a topic or "kafka.local".
	Target string
	// Namespace is a service-specific namespace.
	Namespace string
	// CorrelationID ties the error to the request/message that caused it.
	CorrelationID uuid.UUID
	// RetryAfterSeconds is retry guidance (≥ 0); circuit-open errors carry the
	// remaining open time. Nil when unknown.
	RetryAfterSeconds *float64
	// OriginalErrorType preserves the type name of a wrapped foreign error.
	OriginalErrorType string
}

// WithCorrelation returns ctx with CorrelationID set to id, or to a new random
// (v4) UUID when id is uuid.Nil — every error must carry a correlation id
// (the Python with_correlation() factory). An existing id in ctx is replaced
// only by a non-nil id.
func WithCorrelation(ctx Context, id uuid.UUID) Context {
	switch {
	case id != uuid.Nil:
		ctx.CorrelationID = id
	case ctx.CorrelationID == uuid.Nil:
		ctx.CorrelationID = uuid.New()
	}
	return ctx
}

// Error is a classified ONEX error. Build it with New or one of the helpers so
// that Code and Context.CorrelationID are filled; a zero-value or literal
// *Error is still valid (an empty Code is reported as DefaultCode).
type Error struct {
	// Kind classifies the error (retriable, content, Python class name).
	Kind Kind
	// Code is the ONEX error code (ONEX_CORE_…); see DefaultCode.
	Code string
	// Message is a human-readable description. It should not contain secrets,
	// but it is sanitized anyway before it leaves the process.
	Message string
	// Context is the structured infrastructure context.
	Context Context
	// Err is the cause, if any. errors.Is/As traverse it.
	Err error

	// vouched: Message holds names and fixed words only (see Vouched).
	vouched bool
}

// Error returns the message followed by the cause chain, e.g.
// "publish failed: dial tcp 127.0.0.1:9092: connection refused". It is not
// sanitized; use SanitizeError for anything that leaves the process.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	msg := e.Message
	if msg == "" {
		msg = e.Kind.ClassName()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is an *Error of the same Kind with no other
// fields set, so that errors.Is(err, &infraerr.Error{Kind: infraerr.KindTimeout})
// matches any timeout error. Sentinel comparisons of distinct *Error values
// otherwise fall back to pointer identity.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || e == nil || t == nil {
		return false
	}
	return t.Code == "" && t.Message == "" && t.Err == nil && t.Context == (Context{}) && t.Kind == e.Kind
}

// New builds an *Error of kind k with context ctx, message msg and cause
// (may be nil). Code is DefaultCode(k, ctx.Transport). A nil
// ctx.CorrelationID is filled with a new v4 UUID. When cause is a foreign
// (non-*Error) error and ctx.OriginalErrorType is empty, it is set to
// TypeName(cause).
func New(k Kind, ctx Context, msg string, cause error) *Error {
	ctx = WithCorrelation(ctx, uuid.Nil)
	if cause != nil && ctx.OriginalErrorType == "" {
		var ie *Error
		if !errors.As(cause, &ie) {
			ctx.OriginalErrorType = TypeName(cause)
		}
	}
	return &Error{Kind: k, Code: DefaultCode(k, ctx.Transport), Message: msg, Context: ctx, Err: cause}
}

// Content builds a content (validation) error about field with the given
// reason, e.g. Content("payload.node_id", "not a valid UUID") whose message
// is "payload.node_id: not a valid UUID". An empty field yields just reason.
// It gets a fresh correlation id; use WithCorrelationID to set the message's.
func Content(field, reason string) *Error {
	msg := reason
	if field != "" {
		msg = field + ": " + reason
	}
	return New(KindContent, Context{}, msg, nil)
}

// ContentWrap builds a content error with message msg that wraps cause (for
// example a *json.SyntaxError or a schema decoder error).
func ContentWrap(msg string, cause error) *Error {
	return New(KindContent, Context{}, msg, cause)
}

// Configuration builds a ProtocolConfigurationError (bad config, unknown
// topic, no dispatcher). It is classified as a content error.
func Configuration(ctx Context, msg string, cause error) *Error {
	return New(KindConfiguration, ctx, msg, cause)
}

// CircuitOpen builds the InfraUnavailableError a circuit breaker returns
// while open; retryAfterSeconds (clamped to ≥ 0) is the remaining open time.
func CircuitOpen(ctx Context, retryAfterSeconds float64) *Error {
	if retryAfterSeconds < 0 {
		retryAfterSeconds = 0
	}
	ctx.RetryAfterSeconds = &retryAfterSeconds
	target := ctx.Target
	if target == "" {
		target = ctx.Transport
	}
	msg := "circuit breaker open"
	if target != "" {
		msg = "circuit breaker open for " + target
	}
	return New(KindUnavailable, ctx, msg, nil)
}

// Wrap turns any error into an *Error carrying ctx. A nil err returns nil. If
// err already is (or wraps) an *Error, that error is returned with its
// context completed from ctx (empty fields only, never overwriting) — the
// correlation id of the first error wins. Otherwise the error is classified
// with KindOf and wrapped with message msg (may be empty: Error() then
// starts with the class name).
func Wrap(err error, ctx Context, msg string) *Error {
	if err == nil {
		return nil
	}
	var ie *Error
	if errors.As(err, &ie) {
		c := ie.Context
		fill := func(dst *string, src string) {
			if *dst == "" {
				*dst = src
			}
		}
		fill(&c.Transport, ctx.Transport)
		fill(&c.Operation, ctx.Operation)
		fill(&c.Target, ctx.Target)
		fill(&c.Namespace, ctx.Namespace)
		fill(&c.OriginalErrorType, ctx.OriginalErrorType)
		if c.RetryAfterSeconds == nil {
			c.RetryAfterSeconds = ctx.RetryAfterSeconds
		}
		if c.CorrelationID == uuid.Nil {
			c = WithCorrelation(c, ctx.CorrelationID)
		}
		out := *ie
		out.Context = c
		if out.Code == "" {
			out.Code = DefaultCode(out.Kind, c.Transport)
		}
		return &out
	}
	k, _ := KindOf(err)
	return New(k, ctx, msg, err)
}

// WithCorrelationID returns a copy of e whose context carries id (or a new v4
// when id is uuid.Nil and e has none). e is not modified.
func (e *Error) WithCorrelationID(id uuid.UUID) *Error {
	if e == nil {
		return nil
	}
	out := *e
	out.Context = WithCorrelation(out.Context, id)
	return &out
}
