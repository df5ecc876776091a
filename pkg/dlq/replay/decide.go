package replay

import (
	"strings"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
)

// Defaults of the replay safety settings (spec 8.4).
const (
	DefaultMaxReplayCount = 5
	DefaultRateLimit      = 100.0
)

// nonRetryable are the error types that fail the same way however often the
// message is replayed. The first four are the spec's (8.4, the Python
// replay node's set); JSONDecodeError is the other content-error type the
// fleet writes (infraerr.TypeName of a JSON syntax error; the orchestrator's
// ingress keeps that name for records that are not JSON), and a record that
// is not JSON stays that way. The remaining non-retriable kinds
// (InfraRequestRejectedError, InfraProtocolError, RuntimeHostError) are
// replayed as in Python: they come from a backend or from the fleet's own
// code, and fixing that is what makes a replay worthwhile.
var nonRetryable = map[string]bool{
	"InfraAuthenticationError":   true,
	"ProtocolConfigurationError": true,
	"SecretResolutionError":      true,
	"ValidationError":            true,
	"JSONDecodeError":            true,
}

// NonRetryable reports whether records of errorType are quarantined instead
// of replayed.
func NonRetryable(errorType string) bool { return nonRetryable[errorType] }

// NonRetryableTypes lists the quarantined error types, sorted.
func NonRetryableTypes() []string {
	return []string{"InfraAuthenticationError", "JSONDecodeError", "ProtocolConfigurationError", "SecretResolutionError", "ValidationError"}
}

// Action is what a run does with one record.
type Action string

// Actions.
const (
	// ActionReplay republishes the original message to its original topic.
	ActionReplay Action = "replay"
	// ActionQuarantine moves the record to the quarantine topic.
	ActionQuarantine Action = "quarantine"
	// ActionSkip leaves the record where it is.
	ActionSkip Action = "skip"
)

// Decision is an Action and the reason for it.
type Decision struct {
	Action Action
	// Reason is empty for a plain replay; otherwise it says why (for a
	// quarantine it is the spec's reason text, written to the record).
	Reason string
}

// Decide returns what a run with filter f and maxReplayCount does with e:
//
//  1. a record outside the selection (f) is skipped, as is one that does not
//     decode as a DLQ record or is itself a quarantine record (quarantine is
//     never replayed);
//  2. then the spec's eligibility, in its order: retry_count >=
//     maxReplayCount ⇒ quarantine; error_type in the non-retryable set
//     (NonRetryable) ⇒ quarantine;
//  3. a record whose original value was not preserved (the writer's
//     serialization fallback, cut to fit: dlq.HeaderValueTruncated,
//     credential fields redacted by the Python writer: redacted_fields) or
//     is empty ⇒ quarantine: republishing it would put a record on the
//     original topic that no consumer can read;
//  4. a record whose original value cannot be restored (dlq.RestoreValue: a
//     protobuf original as protojson of a message this build does not know,
//     or an encoding it does not know) ⇒ skip: it is no worse for staying
//     in the DLQ, and a build that knows the message can replay it;
//  5. everything else is replayed.
//
// The spec's time-window and type-specific checks are the selection in step
// 1 (see the package documentation for why they do not quarantine).
func Decide(e *Entry, f Filter, maxReplayCount int) Decision {
	if ok, why := f.Match(e); !ok {
		return Decision{ActionSkip, "outside the selection: " + why}
	}
	switch {
	case e.Quarantined != nil:
		return Decision{ActionSkip, "a quarantine record is never replayed"}
	case e.Record == nil:
		return Decision{ActionSkip, "not a DLQ record: " + errText(e.DecodeErr)}
	}
	r := e.Record
	if r.RetryCount >= maxReplayCount {
		return Decision{ActionQuarantine, quarantineReasonRetry(r.RetryCount, maxReplayCount)}
	}
	if NonRetryable(r.ErrorType) {
		return Decision{ActionQuarantine, quarantineReasonType(r.ErrorType)}
	}
	if r.SerializationFallback {
		return Decision{ActionQuarantine, "Original value not preserved: the DLQ writer could not serialize the record"}
	}
	if n, ok := e.Header(dlq.HeaderValueTruncated); ok {
		return Decision{ActionQuarantine, "Original value truncated to fit the DLQ (it had " + n + " bytes): replaying it would publish a different record"}
	}
	if len(r.RedactedFields) > 0 {
		return Decision{ActionQuarantine, "Original value redacted by the DLQ writer (" + strings.Join(r.RedactedFields, ", ") +
			"): replaying it would publish a record without its credentials"}
	}
	if len(r.OriginalMessage.Value) == 0 {
		return Decision{ActionQuarantine, "Empty original value: replaying it would publish a record no consumer can decode"}
	}
	if _, _, err := dlq.RestoreValue(r.OriginalMessage.Value, e.Header); err != nil {
		return Decision{ActionSkip, "Original value cannot be restored, left in the DLQ: " + err.Error()}
	}
	return Decision{Action: ActionReplay}
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

func parseUUID(s string) (string, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
