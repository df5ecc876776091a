package infraerr

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"syscall"
)

// Python class names used for foreign errors that have a direct Python
// counterpart (DLQ `error_type`).
const (
	// ClassJSONDecodeError is the Python name of a JSON syntax error.
	ClassJSONDecodeError = "JSONDecodeError"
)

// PythonTyped may be implemented by foreign errors (decoders, clients) to
// name the Python exception class they stand for, e.g. "JSONDecodeError" or
// "ValidationError". TypeName uses it. The name should be a plain
// identifier; it ends up in DLQ records and metric labels.
type PythonTyped interface {
	PythonType() string
}

// ContentClassified may be implemented by foreign errors to declare that they
// are content errors (ContentError() == true: the message itself is bad and
// will never succeed), without importing this package. KindOf then returns
// KindContent for them.
type ContentClassified interface {
	ContentError() bool
}

// KindOf classifies any error. The second result reports whether the kind
// was actually determined; when it is false the kind is KindRuntime and the
// error should be treated as unknown.
//
// Rules, first match wins, looking through wrapped errors:
//   - an *Error anywhere in the chain: its Kind;
//   - an error in the chain implementing ContentClassified with
//     ContentError() true: KindContent;
//   - *json.SyntaxError, *json.UnmarshalTypeError: KindContent (Python's
//     JSONDecodeError / pydantic ValidationError);
//   - context.DeadlineExceeded, os.ErrDeadlineExceeded, or a net.Error whose
//     Timeout() is true: KindTimeout;
//   - ECONNREFUSED, ECONNRESET, ECONNABORTED, EHOSTUNREACH, ENETUNREACH,
//     EPIPE, a *net.OpError or a *net.DNSError: KindConnection;
//   - anything else (including context.Canceled and nil): unknown.
func KindOf(err error) (Kind, bool) {
	if err == nil {
		return KindRuntime, false
	}
	var ie *Error
	if errors.As(err, &ie) {
		return ie.Kind, true
	}
	var cc ContentClassified
	if errors.As(err, &cc) && cc.ContentError() {
		return KindContent, true
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return KindContent, true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return KindTimeout, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout, true
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EPIPE} {
		if errors.Is(err, errno) {
			return KindConnection, true
		}
	}
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &op) || errors.As(err, &dns) {
		return KindConnection, true
	}
	return KindRuntime, false
}

// Retriable reports whether err is transient and worth retrying (§6.5):
// connection, timeout, rate-limited and unavailable errors are retriable;
// authentication, configuration, secret-resolution, content/validation,
// request-rejected, protocol and generic runtime errors are not.
//
// Errors that are not *Error are classified with KindOf (deadline exceeded
// and network timeouts → retriable timeout; refused/reset connections and
// other network operation errors → retriable connection). Anything still
// unknown is NON-retriable, following the documented decision function of the
// Python runtime (§6.5: "unknown exception types: non-retriable"). Callers
// that want the consumer-wiring behaviour (retry unexpected errors as
// infrastructure errors) must decide that themselves, e.g. with
// !IsContent(err). Retriable(nil) is false.
func Retriable(err error) bool {
	k, ok := KindOf(err)
	return ok && k.Retriable()
}

// IsContent reports whether err is a content error — one that will fail the
// same way on every redelivery, so the message belongs in the DLQ and its
// offset may be committed once the DLQ write is confirmed (§7.1, §8.1).
// Content errors are KindContent (validation, JSON decode) and
// KindConfiguration (ProtocolConfigurationError, incl. no dispatcher).
// Everything else, including unknown errors, is an infrastructure error.
func IsContent(err error) bool {
	k, ok := KindOf(err)
	return ok && (k == KindContent || k == KindConfiguration)
}

// TypeName returns the Python exception class name that stands for err; it
// is written to the DLQ `error_type` field and used as the type prefix of
// SanitizeError. Apart from names declared through PythonTyped, the result
// is one of a fixed set of identifiers (safe as a metric label):
//   - *Error (anywhere in the chain): Kind.ClassName(), e.g. "InfraTimeoutError";
//   - an error in the chain implementing PythonTyped with a non-empty name:
//     that name;
//   - *json.SyntaxError: "JSONDecodeError";
//   - *json.UnmarshalTypeError: "ValidationError";
//   - other classified errors: the class name of their kind (deadline
//     exceeded → "InfraTimeoutError", refused connection → "InfraConnectionError");
//   - unknown errors: "RuntimeHostError" (the infrastructure root);
//   - nil: "".
func TypeName(err error) string {
	if err == nil {
		return ""
	}
	var ie *Error
	if errors.As(err, &ie) {
		return ie.Kind.ClassName()
	}
	var pt PythonTyped
	if errors.As(err, &pt) {
		if n := pt.PythonType(); n != "" {
			return n
		}
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return ClassJSONDecodeError
	}
	k, _ := KindOf(err)
	return k.ClassName()
}

// Code returns the ONEX error code of err: the Code of an *Error (or its
// DefaultCode when empty), otherwise DefaultCode of KindOf(err) with no
// transport. Code(nil) is "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	var ie *Error
	if errors.As(err, &ie) {
		if ie.Code != "" {
			return ie.Code
		}
		return DefaultCode(ie.Kind, ie.Context.Transport)
	}
	k, _ := KindOf(err)
	return DefaultCode(k, "")
}
