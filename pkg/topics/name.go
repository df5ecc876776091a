// Package topics is the ONEX topic taxonomy: name validation
// (onex.<kind>.<producer>.<event-name>.v<N>, spec §3.1), the registry of
// every topic this fleet uses with its partitions and configs (§3.3, §9.1),
// and provisioning of those topics into a Kafka cluster through
// sarama.ClusterAdmin without ever modifying a topic that already exists.
//
// Topic names are realm-agnostic (ADR-008): the Kafka topic name is the ONEX
// name unchanged; environments are separated by consumer-group names, never
// by topic prefixes.
package topics

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Kind is the second segment of a topic name: what the records on it are.
type Kind string

// The five topic kinds of the taxonomy.
const (
	// KindCommand ("cmd"): requests for a specific consumer to act.
	KindCommand Kind = "cmd"
	// KindEvent ("evt"): facts that happened.
	KindEvent Kind = "evt"
	// KindIntent ("intent"): side effects a pure component asks for.
	KindIntent Kind = "intent"
	// KindSnapshot ("snapshot"): latest state per key, on compacted topics.
	KindSnapshot Kind = "snapshot"
	// KindDLQ ("dlq"): dead-lettered records.
	KindDLQ Kind = "dlq"
)

// Valid reports whether k is one of the five kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindCommand, KindEvent, KindIntent, KindSnapshot, KindDLQ:
		return true
	}
	return false
}

// Prefix is the first segment of every ONEX topic name.
const Prefix = "onex"

// MaxLength is Kafka's limit on a topic name's length. (The ONEX core
// validator has no length rule; Kafka itself rejects longer names.)
const MaxLength = 249

// environmentNames may not be the first segment (ADR-008: no env prefix).
var environmentNames = map[string]bool{"dev": true, "staging": true, "prod": true, "test": true, "local": true}

// NameError is returned by Validate and Parse for an invalid topic name. Its
// Reason says what rule the name breaks, in words.
type NameError struct {
	// Topic is the rejected name, verbatim.
	Topic string
	// Reason explains the violation, e.g. "expected 5 dot-separated segments, got 3".
	Reason string
}

// Error returns `topic "<name>": <reason>`.
func (e *NameError) Error() string { return fmt.Sprintf("topic %q: %s", e.Topic, e.Reason) }

// Name is a parsed, valid topic name.
type Name struct {
	// Topic is the full name as given.
	Topic string
	// Kind is segment 2.
	Kind Kind
	// Producer is segment 3, e.g. "platform".
	Producer string
	// EventName is segment 4, e.g. "node-heartbeat".
	EventName string
	// Version is the number after "v" in segment 5 (≥ 1).
	Version int
}

// Validate checks name against the ONEX core topic-suffix validator
// (omnibase_core util_topic_suffix, spec §3.1), rule by rule, and returns a
// *NameError saying which rule failed, or nil. A valid name:
//   - is non-empty, at most MaxLength bytes, without control characters;
//   - is already lowercase;
//   - does not start with an environment name (dev, staging, prod, test, local);
//   - has exactly 5 dot-separated segments;
//   - starts with "onex";
//   - has a kind of cmd, evt, dlq, intent or snapshot;
//   - has producer and event-name segments in strict kebab-case
//     (^[a-z]([a-z0-9]*(-[a-z0-9]+)*)?$);
//   - ends with v<N>, N a decimal number ≥ 1 (leading zeros are accepted, as
//     by the Python regex's int() conversion; only ASCII digits are).
func Validate(name string) error {
	_, err := Parse(name)
	return err
}

// Parse validates name like Validate and returns its parts.
func Parse(name string) (Name, error) {
	fail := func(format string, args ...any) (Name, error) {
		return Name{}, &NameError{Topic: name, Reason: fmt.Sprintf(format, args...)}
	}
	if name == "" {
		return fail("empty topic name")
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return fail("contains control character %U at byte %d", r, i)
		}
	}
	if len(name) > MaxLength {
		return fail("is %d bytes long; Kafka allows at most %d", len(name), MaxLength)
	}
	if strings.ToLower(name) != name {
		return fail("must be lowercase")
	}
	segs := strings.Split(name, ".")
	if environmentNames[segs[0]] {
		return fail("starts with environment prefix %q; topic names are realm-agnostic (ADR-008)", segs[0])
	}
	if len(segs) != 5 {
		return fail("expected 5 dot-separated segments (onex.<kind>.<producer>.<event-name>.v<N>), got %d", len(segs))
	}
	if segs[0] != Prefix {
		return fail("first segment must be %q, got %q", Prefix, segs[0])
	}
	kind := Kind(segs[1])
	if !kind.Valid() {
		return fail("kind segment %q is not one of cmd, evt, dlq, intent, snapshot", segs[1])
	}
	if r := kebabProblem(segs[2]); r != "" {
		return fail("producer segment %q %s", segs[2], r)
	}
	if r := kebabProblem(segs[3]); r != "" {
		return fail("event-name segment %q %s", segs[3], r)
	}
	v := segs[4]
	if len(v) < 2 || v[0] != 'v' {
		return fail("version segment %q must be v<N>", v)
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return fail("version segment %q must be v followed by decimal digits", v)
		}
	}
	n, err := strconv.Atoi(v[1:])
	if err != nil {
		return fail("version %q is out of range", v)
	}
	if n < 1 {
		return fail("version must be at least 1, got %q", v)
	}
	return Name{Topic: name, Kind: kind, Producer: segs[2], EventName: segs[3], Version: n}, nil
}

// kebabProblem returns why seg is not strict kebab-case, or "".
func kebabProblem(seg string) string {
	if seg == "" {
		return "is empty"
	}
	if seg[0] < 'a' || seg[0] > 'z' {
		return "must start with a lowercase letter a-z"
	}
	for _, r := range seg {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Sprintf("contains %q; only a-z, 0-9 and single hyphens are allowed", r)
		}
	}
	if strings.Contains(seg, "--") {
		return "contains consecutive hyphens"
	}
	if strings.HasSuffix(seg, "-") {
		return "ends with a hyphen"
	}
	return ""
}

// KindOf returns the kind segment of a valid topic name, or "" and false.
func KindOf(topic string) (Kind, bool) {
	n, err := Parse(topic)
	if err != nil {
		return "", false
	}
	return n.Kind, true
}
