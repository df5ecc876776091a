package envelope

import "github.com/omninode/onex-fleet/pkg/envelope/pyjson"

// FieldError reports a missing, mistyped or out-of-range field. Field is the
// JSON path ("correlation_id", "metadata.trace_id", "payload.node_type");
// Model is "envelope" for envelope fields. Its message reads
// `envelope: field "correlation_id": not a UUID`. All decode errors of this
// package other than syntax errors are (possibly wrapped) *FieldError, so
// errors.As(err, new(*envelope.FieldError)) finds them.
type FieldError = pyjson.FieldError

// ErrSyntax is wrapped by every error reporting input that is not one
// well-formed JSON value (including truncated input); the
// *encoding/json.SyntaxError is wrapped too.
var ErrSyntax = pyjson.ErrSyntax

const model = "envelope"
