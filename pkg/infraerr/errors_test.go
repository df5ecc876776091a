package infraerr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/google/uuid"
)

type timeoutNetErr struct{}

func (timeoutNetErr) Error() string   { return "i/o timeout" }
func (timeoutNetErr) Timeout() bool   { return true }
func (timeoutNetErr) Temporary() bool { return true }

// decodeErr is a foreign error that declares its Python class and that it
// is a content error.
type decodeErr struct{ msg string }

func (e decodeErr) Error() string    { return e.msg }
func (decodeErr) PythonType() string { return "JSONDecodeError" }
func (decodeErr) ContentError() bool { return true }

type notContent struct{}

func (notContent) Error() string      { return "x" }
func (notContent) ContentError() bool { return false }
func (notContent) PythonType() string { return "" }

func jsonSyntaxErr(t *testing.T) error {
	t.Helper()
	var v any
	err := json.Unmarshal([]byte(`{"payload": {"node_id": "x"}`), &v)
	if err == nil {
		t.Fatal("expected a JSON syntax error")
	}
	return err
}

func jsonTypeErr(t *testing.T) error {
	t.Helper()
	var v struct{ N int }
	err := json.Unmarshal([]byte(`{"N":"x"}`), &v)
	if err == nil {
		t.Fatal("expected a JSON type error")
	}
	return err
}

func TestKindTable(t *testing.T) {
	tests := []struct {
		kind      Kind
		name      string
		class     string
		code      string
		retriable bool
	}{
		{KindRuntime, "runtime", "RuntimeHostError", CodeOperationFailed, false},
		{KindContent, "content", "ValidationError", CodeValidationError, false},
		{KindConfiguration, "configuration", "ProtocolConfigurationError", CodeInvalidConfiguration, false},
		{KindSecretResolution, "secret_resolution", "SecretResolutionError", CodeResourceNotFound, false},
		{KindConnection, "connection", "InfraConnectionError", CodeServiceUnavailable, true},
		{KindTimeout, "timeout", "InfraTimeoutError", CodeTimeout, true},
		{KindAuthentication, "authentication", "InfraAuthenticationError", CodeAuthentication, false},
		{KindUnavailable, "unavailable", "InfraUnavailableError", CodeServiceUnavailable, true},
		{KindRateLimited, "rate_limited", "InfraRateLimitedError", CodeRateLimit, true},
		{KindRequestRejected, "request_rejected", "InfraRequestRejectedError", CodeInvalidInput, false},
		{KindProtocol, "protocol", "InfraProtocolError", CodeOperationFailed, false},
		{Kind(99), "runtime", "RuntimeHostError", CodeOperationFailed, false},
		{Kind(-1), "runtime", "RuntimeHostError", CodeOperationFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.class+"/"+tt.name, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.kind.ClassName(); got != tt.class {
				t.Errorf("ClassName() = %q, want %q", got, tt.class)
			}
			if got := DefaultCode(tt.kind, ""); got != tt.code {
				t.Errorf("DefaultCode() = %q, want %q", got, tt.code)
			}
			if got := tt.kind.Retriable(); got != tt.retriable {
				t.Errorf("Retriable() = %v, want %v", got, tt.retriable)
			}
			e := New(tt.kind, Context{}, "m", nil)
			if got := Retriable(e); got != tt.retriable {
				t.Errorf("Retriable(New) = %v, want %v", got, tt.retriable)
			}
			if got := TypeName(e); got != tt.class {
				t.Errorf("TypeName(New) = %q, want %q", got, tt.class)
			}
		})
	}
}

func TestConnectionCodeByTransport(t *testing.T) {
	tests := []struct {
		transport, code string
	}{
		{TransportDB, CodeDatabaseConnection},
		{TransportHTTP, CodeNetworkError},
		{TransportGRPC, CodeNetworkError},
		{TransportRuntime, CodeOperationFailed},
		{TransportInMemory, CodeOperationFailed},
		{TransportKafka, CodeServiceUnavailable},
		{TransportInfisical, CodeServiceUnavailable},
		{TransportValkey, CodeServiceUnavailable},
		{TransportFilesystem, CodeServiceUnavailable},
		{TransportMCP, CodeServiceUnavailable},
		{TransportQdrant, CodeServiceUnavailable},
		{TransportGraph, CodeServiceUnavailable},
		{TransportLLM, CodeServiceUnavailable},
		{TransportBridge, CodeServiceUnavailable},
		{TransportConsul, CodeServiceUnavailable},
		{"", CodeServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.transport, func(t *testing.T) {
			e := New(KindConnection, Context{Transport: tt.transport}, "down", nil)
			if e.Code != tt.code || Code(e) != tt.code {
				t.Errorf("code = %q / %q, want %q", e.Code, Code(e), tt.code)
			}
			// Only connection errors depend on the transport.
			if got := DefaultCode(KindTimeout, tt.transport); got != CodeTimeout {
				t.Errorf("timeout code for %q = %q", tt.transport, got)
			}
		})
	}
}

func TestClassifyForeignErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name      string
		err       error
		kind      Kind
		known     bool
		retriable bool
		content   bool
		typeName  string
		code      string
	}{
		{"nil", nil, KindRuntime, false, false, false, "", ""},
		{"deadline", context.DeadlineExceeded, KindTimeout, true, true, false, "InfraTimeoutError", CodeTimeout},
		{"wrapped deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), KindTimeout, true, true, false, "InfraTimeoutError", CodeTimeout},
		{"os deadline", os.ErrDeadlineExceeded, KindTimeout, true, true, false, "InfraTimeoutError", CodeTimeout},
		{"net timeout", timeoutNetErr{}, KindTimeout, true, true, false, "InfraTimeoutError", CodeTimeout},
		{"econnrefused op", refused, KindConnection, true, true, false, "InfraConnectionError", CodeServiceUnavailable},
		{"bare econnrefused", syscall.ECONNREFUSED, KindConnection, true, true, false, "InfraConnectionError", CodeServiceUnavailable},
		{"econnreset", fmt.Errorf("read: %w", syscall.ECONNRESET), KindConnection, true, true, false, "InfraConnectionError", CodeServiceUnavailable},
		{"dns", &net.DNSError{Err: "no such host", Name: "db"}, KindConnection, true, true, false, "InfraConnectionError", CodeServiceUnavailable},
		{"json syntax", jsonSyntaxErr(t), KindContent, true, false, true, "JSONDecodeError", CodeValidationError},
		{"wrapped json syntax", fmt.Errorf("decode: %w", jsonSyntaxErr(t)), KindContent, true, false, true, "JSONDecodeError", CodeValidationError},
		{"json type", jsonTypeErr(t), KindContent, true, false, true, "ValidationError", CodeValidationError},
		{"self-classified content", decodeErr{"payload is not valid JSON"}, KindContent, true, false, true, "JSONDecodeError", CodeValidationError},
		{"wrapped self-classified", fmt.Errorf("decode: %w", decodeErr{"x"}), KindContent, true, false, true, "JSONDecodeError", CodeValidationError},
		{"*Error outside self-typed wins", New(KindTimeout, Context{}, "t", decodeErr{"x"}), KindTimeout, true, true, false, "InfraTimeoutError", CodeTimeout},
		{"self-classified not content", notContent{}, KindRuntime, false, false, false, "RuntimeHostError", CodeOperationFailed},
		{"canceled", context.Canceled, KindRuntime, false, false, false, "RuntimeHostError", CodeOperationFailed},
		{"unknown", errors.New("boom"), KindRuntime, false, false, false, "RuntimeHostError", CodeOperationFailed},
		{"eof", io.ErrUnexpectedEOF, KindRuntime, false, false, false, "RuntimeHostError", CodeOperationFailed},
		{"configuration", Configuration(Context{}, "no dispatcher", nil), KindConfiguration, true, false, true, "ProtocolConfigurationError", CodeInvalidConfiguration},
		{"wrapped *Error wins over cause", fmt.Errorf("x: %w", New(KindAuthentication, Context{}, "denied", context.DeadlineExceeded)), KindAuthentication, true, false, false, "InfraAuthenticationError", CodeAuthentication},
		{"secret", New(KindSecretResolution, Context{}, "missing", nil), KindSecretResolution, true, false, false, "SecretResolutionError", CodeResourceNotFound},
		{"rejected", New(KindRequestRejected, Context{}, "bad", nil), KindRequestRejected, true, false, false, "InfraRequestRejectedError", CodeInvalidInput},
		{"rate", New(KindRateLimited, Context{}, "429", nil), KindRateLimited, true, true, false, "InfraRateLimitedError", CodeRateLimit},
		{"literal without code", &Error{Kind: KindConnection, Context: Context{Transport: TransportDB}}, KindConnection, true, true, false, "InfraConnectionError", CodeDatabaseConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, known := KindOf(tt.err)
			if k != tt.kind || known != tt.known {
				t.Errorf("KindOf = (%v, %v), want (%v, %v)", k, known, tt.kind, tt.known)
			}
			if got := Retriable(tt.err); got != tt.retriable {
				t.Errorf("Retriable = %v, want %v", got, tt.retriable)
			}
			if got := IsContent(tt.err); got != tt.content {
				t.Errorf("IsContent = %v, want %v", got, tt.content)
			}
			if got := TypeName(tt.err); got != tt.typeName {
				t.Errorf("TypeName = %q, want %q", got, tt.typeName)
			}
			if got := Code(tt.err); got != tt.code {
				t.Errorf("Code = %q, want %q", got, tt.code)
			}
		})
	}
}

func TestNewFillsCorrelationAndOriginalType(t *testing.T) {
	e := New(KindTimeout, Context{Transport: TransportKafka}, "publish timed out", context.DeadlineExceeded)
	if e.Context.CorrelationID == uuid.Nil || e.Context.CorrelationID.Version() != 4 {
		t.Errorf("correlation id = %v, want a v4", e.Context.CorrelationID)
	}
	if e.Context.OriginalErrorType != "InfraTimeoutError" {
		t.Errorf("OriginalErrorType = %q", e.Context.OriginalErrorType)
	}
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Error("errors.Is does not see the cause")
	}
	if got, want := e.Error(), "publish timed out: context deadline exceeded"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("w: %w", e), &Error{Kind: KindTimeout}) {
		t.Error("errors.Is by kind failed")
	}
	if errors.Is(e, &Error{Kind: KindConnection}) {
		t.Error("errors.Is matched the wrong kind")
	}

	id := uuid.MustParse("5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e")
	e2 := New(KindContent, Context{CorrelationID: id}, "bad", nil)
	if e2.Context.CorrelationID != id {
		t.Error("New replaced an existing correlation id")
	}
	inner := New(KindConnection, Context{}, "x", nil)
	e3 := New(KindRuntime, Context{}, "outer", inner)
	if e3.Context.OriginalErrorType != "" {
		t.Errorf("OriginalErrorType set for *Error cause: %q", e3.Context.OriginalErrorType)
	}
}

func TestWithCorrelation(t *testing.T) {
	id := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	other := uuid.MustParse("99999999-2222-4333-8444-555555555555")
	tests := []struct {
		name   string
		ctx    Context
		id     uuid.UUID
		check  func(uuid.UUID) bool
		expect string
	}{
		{"fills v4 when both nil", Context{}, uuid.Nil, func(u uuid.UUID) bool { return u != uuid.Nil && u.Version() == 4 }, "new v4"},
		{"sets given id", Context{}, id, func(u uuid.UUID) bool { return u == id }, "id"},
		{"keeps existing when nil given", Context{CorrelationID: other}, uuid.Nil, func(u uuid.UUID) bool { return u == other }, "existing"},
		{"replaces existing with given", Context{CorrelationID: other}, id, func(u uuid.UUID) bool { return u == id }, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WithCorrelation(tt.ctx, tt.id).CorrelationID
			if !tt.check(got) {
				t.Errorf("got %v, want %s", got, tt.expect)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	c := Content("payload.node_id", "not a valid UUID")
	if c.Kind != KindContent || c.Message != "payload.node_id: not a valid UUID" || !IsContent(c) {
		t.Errorf("Content = %+v", c)
	}
	if Content("", "empty body").Message != "empty body" {
		t.Error("Content without field")
	}
	cw := ContentWrap("payload is not valid JSON", jsonSyntaxErr(t))
	if TypeName(cw) != "ValidationError" || !IsContent(cw) {
		t.Errorf("ContentWrap type %q", TypeName(cw))
	}

	co := CircuitOpen(Context{Transport: TransportDB, Target: "postgres"}, 12.5)
	if co.Kind != KindUnavailable || co.Context.RetryAfterSeconds == nil || *co.Context.RetryAfterSeconds != 12.5 || !Retriable(co) {
		t.Errorf("CircuitOpen = %+v", co)
	}
	if co.Message != "circuit breaker open for postgres" {
		t.Errorf("CircuitOpen message %q", co.Message)
	}
	if neg := CircuitOpen(Context{}, -3); *neg.Context.RetryAfterSeconds != 0 {
		t.Error("negative retry-after not clamped")
	}

	id := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	w := Wrap(fmt.Errorf("dial: %w", syscall.ECONNREFUSED), Context{Transport: TransportDB, CorrelationID: id}, "connect failed")
	if w.Kind != KindConnection || w.Code != CodeDatabaseConnection || w.Context.CorrelationID != id || !Retriable(w) {
		t.Errorf("Wrap foreign = %+v", w)
	}
	if Wrap(nil, Context{}, "x") != nil {
		t.Error("Wrap(nil) != nil")
	}
	orig := New(KindTimeout, Context{Operation: "query"}, "slow", nil)
	firstID := orig.Context.CorrelationID
	w2 := Wrap(fmt.Errorf("ctx: %w", orig), Context{Operation: "other", Transport: TransportDB, CorrelationID: id}, "ignored")
	if w2.Kind != KindTimeout || w2.Context.Operation != "query" || w2.Context.Transport != TransportDB || w2.Context.CorrelationID != firstID {
		t.Errorf("Wrap *Error = %+v", w2)
	}
	if orig.Context.Transport != "" {
		t.Error("Wrap modified the original error")
	}
	w3 := c.WithCorrelationID(id)
	if w3.Context.CorrelationID != id || c.Context.CorrelationID == id {
		t.Error("WithCorrelationID")
	}
	var nilErr *Error
	if nilErr.Error() != "<nil>" || nilErr.Unwrap() != nil || nilErr.WithCorrelationID(id) != nil {
		t.Error("nil receiver")
	}
	if (&Error{Kind: KindProtocol}).Error() != "InfraProtocolError" {
		t.Error("empty message falls back to class name")
	}
}
