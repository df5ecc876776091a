// Package topicns is the physical topic namespace (KAFKA_TOPIC_NAMESPACE):
// the prefix that lets a second fleet, a benchmark or a test suite share a
// broker with a deployment without reading or writing its topics.
//
// It follows the pinned Python package exactly
// (omnibase_infra/topics/topic_namespace.py, omnibase-infra 0.38.76), so
// Go and Python processes with the same value meet on the same topics:
//   - an unset, empty or blank value is no namespace: every mapping is the
//     identity, byte for byte;
//   - otherwise the value, blanks trimmed and one trailing dot dropped, must
//     be a single lowercase segment ^[a-z][a-z0-9-]{0,31}$, and the physical
//     name is "<ns>." + canonical name;
//   - applying is idempotent and stripping is tolerant (a name without the
//     prefix is returned as it is), so a seam that maps twice, or is handed
//     either form, is still right.
//
// Only names on the wire are namespaced. Contracts, headers (event_type) and
// payloads (the reducer input's topic, a dead letter's original_topic) keep
// canonical names, so replay and routing do not depend on the namespace a
// record was written under. (The bus series' topic labels name the topic
// read or written, so they carry the namespace.)
package topicns

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// EnvVar is the variable that carries the namespace, the Python runtime's
// name for it.
const EnvVar = "KAFKA_TOPIC_NAMESPACE"

// MaxLength is the longest namespace token (without its dot).
const MaxLength = 32

// tokenRE is the Python package's _NAMESPACE_TOKEN_RE. A dot is not
// allowed inside: the separator is added here, so "pr1" never matches a
// topic of "pr10".
var tokenRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Namespace is a validated namespace token without its dot; "" is none.
type Namespace string

// None is no namespace: the topics a deployment and `make run` use.
const None Namespace = ""

// Parse validates raw as KAFKA_TOPIC_NAMESPACE is read: blanks trimmed, an
// optional trailing dot dropped, empty meaning None. A malformed value is
// an error rather than coerced: a typo would otherwise put the process on
// topics nobody provisioned or watches.
func Parse(raw string) (Namespace, error) {
	token := strings.TrimSpace(raw)
	if token == "" {
		return None, nil
	}
	token = strings.TrimSuffix(token, ".")
	if !tokenRE.MatchString(token) {
		return None, fmt.Errorf("%s=%q: a topic namespace must be one lowercase segment of at most %d characters, "+
			"a letter then letters, digits or hyphens (%s; one trailing dot is allowed)", EnvVar, raw, MaxLength, tokenRE)
	}
	return Namespace(token), nil
}

// MustParse is Parse for constants and tests; it panics on an invalid value.
func MustParse(raw string) Namespace {
	ns, err := Parse(raw)
	if err != nil {
		panic(err)
	}
	return ns
}

// Prefix is what goes in front of a canonical name: "<ns>." or "".
func (ns Namespace) Prefix() string {
	if ns == None {
		return ""
	}
	return string(ns) + "."
}

// Physical maps a canonical topic name to the name on the broker. A name
// that already carries the prefix is returned unchanged.
func (ns Namespace) Physical(canonical string) string {
	p := ns.Prefix()
	if p == "" || canonical == "" || strings.HasPrefix(canonical, p) {
		return canonical
	}
	return p + canonical
}

// PhysicalAll maps each name with Physical, in order, into a new slice.
func (ns Namespace) PhysicalAll(canonical []string) []string {
	out := make([]string, len(canonical))
	for i, t := range canonical {
		out[i] = ns.Physical(t)
	}
	return out
}

// Canonical maps a name on the broker back to its canonical name: the
// inverse of Physical, applied wherever a consumed record's topic is compared
// with a registry constant or written into a payload. A name without the
// prefix is returned unchanged.
func (ns Namespace) Canonical(physical string) string {
	if p := ns.Prefix(); p != "" && strings.HasPrefix(physical, p) {
		return physical[len(p):]
	}
	return physical
}

// Strip returns the canonical name of topic under any namespace: an ONEX
// name has "onex" as its first segment, so "<token>.onex.…" with a valid
// token is namespaced. It is for the places that derive a canonical value
// (the event_type header) from whatever topic they are handed and do not
// know the process's namespace.
func Strip(topic string) string {
	token, rest, ok := strings.Cut(topic, ".")
	if ok && strings.HasPrefix(rest, "onex.") && validToken(token) && strings.Count(rest, ".") >= 4 {
		return rest
	}
	return topic
}

// validToken is tokenRE without the regexp: Strip runs for every record a
// service sends.
func validToken(t string) bool {
	if len(t) == 0 || len(t) > MaxLength || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 1; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// String is the token, "" for None.
func (ns Namespace) String() string { return string(ns) }

// FromEnv is Parse of KAFKA_TOPIC_NAMESPACE in the process environment,
// for tools that read no other configuration (onexctl).
func FromEnv() (Namespace, error) { return Parse(os.Getenv(EnvVar)) }
