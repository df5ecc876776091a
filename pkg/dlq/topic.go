package dlq

import (
	"regexp"
	"strings"

	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// EnvDeadLetterTopic names the variable that, when set, overrides all DLQ
// routing (§3.5).
const EnvDeadLetterTopic = "KAFKA_DEAD_LETTER_TOPIC"

// Domain is the producer segment of every DLQ topic this fleet writes.
const Domain = "omnibase-infra"

// FallbackTopic is where a record goes when nothing else resolves (§3.5).
const FallbackTopic = topics.DLQIntents

// TopicName builds "onex.dlq.omnibase-infra.<category>.v1" (§3.5 builder):
// the singular categories event, command and intent are pluralized, the
// short kinds evt, cmd are mapped to events, commands, and any other
// category (a domain such as "platform") passes through lowercased. It
// returns "" when the result would not be a valid topic name.
func TopicName(category string) string {
	c := strings.ToLower(strings.TrimSpace(category))
	switch c {
	case "evt", "event":
		c = "events"
	case "cmd", "command":
		c = "commands"
	case "intent":
		c = "intents"
	}
	name := "onex.dlq." + Domain + "." + c + ".v1"
	if topics.Validate(name) != nil {
		return ""
	}
	return name
}

// TopicFor returns the DLQ topic for a record consumed from originalTopic,
// by the original topic's kind segment (§3.5 category routing):
//
//	evt      → onex.dlq.omnibase-infra.events.v1
//	cmd      → onex.dlq.omnibase-infra.commands.v1
//	intent   → onex.dlq.omnibase-infra.intents.v1
//	snapshot → onex.dlq.omnibase-infra.events.v1
//	dlq, or a name that is not an ONEX topic → onex.dlq.omnibase-infra.intents.v1 (bus fallback)
//
// Snapshot topics are state derived from events and have no DLQ category of
// their own in the Python runtime (which publishes its snapshots on an evt
// topic), so their dead letters go with the events. A record that failed
// while being consumed from a DLQ topic (e.g. by the replay tool) goes to the
// fallback, never back to a DLQ category of its own. The override
// (KAFKA_DEAD_LETTER_TOPIC) is applied by Router, not here. A topic on a
// namespace (KAFKA_TOPIC_NAMESPACE, "<ns>.onex.…") dead-letters on the same
// namespace, so every seam that routes by the consumed topic keeps a
// namespaced fleet on its own topics.
func TopicFor(originalTopic string) string {
	if c := topicns.Strip(originalTopic); c != originalTopic {
		return originalTopic[:len(originalTopic)-len(c)] + TopicFor(c)
	}
	n, err := topics.Parse(originalTopic)
	if err != nil {
		// Tolerate the loose shape the Python category parser accepts
		// (onex.<kind>.… with a non-kebab remainder).
		parts := strings.Split(originalTopic, ".")
		if len(parts) < 2 || parts[0] != topics.Prefix {
			return FallbackTopic
		}
		n.Kind = topics.Kind(parts[1])
	}
	switch n.Kind {
	case topics.KindEvent, topics.KindSnapshot:
		return topics.DLQEvents
	case topics.KindCommand:
		return topics.DLQCommands
	case topics.KindIntent:
		return topics.DLQIntents
	default:
		return FallbackTopic
	}
}

// TopicForEventType returns the DLQ topic for an unroutable message (no
// dispatcher) by the domain prefix of its envelope event_type (§3.5):
// "platform.node-heartbeat" → onex.dlq.omnibase-infra.platform.v1,
// "intelligence.x" → onex.dlq.omnibase-infra.intelligence.v1. Without a
// usable event_type (empty, no '.', or a domain that would not make a valid
// topic name) it falls back to TopicFor(originalTopic).
func TopicForEventType(eventType, originalTopic string) string {
	domain, _, ok := strings.Cut(strings.TrimSpace(eventType), ".")
	if ok && domain != "" {
		if name := TopicName(domain); name != "" {
			c := topicns.Strip(originalTopic)
			return originalTopic[:len(originalTopic)-len(c)] + name
		}
	}
	return TopicFor(originalTopic)
}

var kafkaNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// validKafkaName reports whether s is a legal Kafka topic name.
func validKafkaName(s string) bool { return kafkaNameRE.MatchString(s) && s != "." && s != ".." }

// Router resolves DLQ topics with an optional override and the process's
// topic namespace.
type Router struct {
	// Override, when non-empty, is the DLQ topic for every record
	// (KAFKA_DEAD_LETTER_TOPIC); it overrides all other routing.
	Override string
	// Namespace (KAFKA_TOPIC_NAMESPACE) is applied to the DLQ topic, the
	// override included, and taken off the original topic before its
	// category is read: a namespaced fleet dead-letters onto its own DLQ
	// topics (the Python package provisions them namespaced too).
	Namespace topicns.Namespace
}

// RouterFromEnv returns a Router whose Override is KAFKA_DEAD_LETTER_TOPIC as
// read through lookup (pass os.LookupEnv). The namespace is not read here:
// config.Load validates it, and the caller sets Router.Namespace from it.
func RouterFromEnv(lookup func(string) (string, bool)) Router {
	v, _ := lookup(EnvDeadLetterTopic)
	return Router{Override: strings.TrimSpace(v)}
}

// TopicFor returns r.Override when set, else TopicFor(originalTopic), on
// r's namespace.
func (r Router) TopicFor(originalTopic string) string {
	if r.Override != "" {
		return r.Namespace.Physical(r.Override)
	}
	return r.Namespace.Physical(TopicFor(r.Namespace.Canonical(originalTopic)))
}

// TopicForEventType returns r.Override when set, else
// TopicForEventType(eventType, originalTopic), on r's namespace.
func (r Router) TopicForEventType(eventType, originalTopic string) string {
	if r.Override != "" {
		return r.Namespace.Physical(r.Override)
	}
	return r.Namespace.Physical(TopicForEventType(eventType, r.Namespace.Canonical(originalTopic)))
}
