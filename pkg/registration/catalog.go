package registration

import (
	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// TopicCatalogQuery is ModelTopicCatalogQuery, sent on
// onex.cmd.platform.topic-catalog-query.v1 (extra="forbid"). The Python
// handler answers with the envelope's correlation id, so clients should set
// the envelope's and this field equal.
type TopicCatalogQuery struct {
	// CorrelationID is required.
	CorrelationID uuid.UUID
	// ClientID is required, 1..256 characters.
	ClientID        string
	IncludeInactive bool
	// TopicPattern is an fnmatch glob of at most 256 characters from
	// [a-zA-Z0-9.*?_-], or nil.
	TopicPattern *string
	// SchemaVersion is >= 1, default 1.
	SchemaVersion int
}

func (q *TopicCatalogQuery) pyName() string { return "ModelTopicCatalogQuery" }

func (q *TopicCatalogQuery) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("correlation_id", &q.CorrelationID, pyjson.UUID),
		pyjson.Req("client_id", &q.ClientID, pyjson.String),
		pyjson.Prop("include_inactive", &q.IncludeInactive, pyjson.Bool),
		pyjson.Prop("topic_pattern", &q.TopicPattern, nullString),
		pyjson.Def("schema_version", &q.SchemaVersion, pyjson.Int, 1),
	}}
}

// Validate checks client_id length, the topic_pattern alphabet and length,
// and schema_version >= 1.
func (q *TopicCatalogQuery) Validate() error {
	var pattern error
	if q.TopicPattern != nil {
		pattern = optStrLen("topic_pattern", q.TopicPattern, 0, 256)
		for _, c := range *q.TopicPattern {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '.' || c == '*' || c == '?' || c == '_' || c == '-') {
				pattern = firstErr(pattern, fieldf("topic_pattern", "character %q not allowed (only [a-zA-Z0-9.*?_-])", c))
				break
			}
		}
	}
	return firstErr(
		strLen("client_id", q.ClientID, 1, 256),
		pattern,
		intMin("schema_version", q.SchemaVersion, 1),
	)
}

// TopicCatalogResponse is ModelTopicCatalogResponse, published on
// onex.evt.platform.topic-catalog-response.v1 (extra="forbid").
type TopicCatalogResponse struct {
	// CorrelationID is required.
	CorrelationID uuid.UUID
	// Topics is conventionally sorted by topic_suffix (not enforced).
	Topics []TopicCatalogEntry
	// CatalogVersion is required, >= 0; 0 is the error/empty sentinel.
	CatalogVersion int
	// NodeCount is required, >= 0.
	NodeCount int
	// GeneratedAt is required and timezone-aware.
	GeneratedAt envelope.Time
	// Warnings are stable tokens.
	Warnings []string
	// SchemaVersion is >= 1, default 1.
	SchemaVersion int
}

func (r *TopicCatalogResponse) pyName() string { return "ModelTopicCatalogResponse" }

func (r *TopicCatalogResponse) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("correlation_id", &r.CorrelationID, pyjson.UUID),
		pyjson.Prop("topics", &r.Topics, catalogEntriesC),
		pyjson.Req("catalog_version", &r.CatalogVersion, pyjson.Int),
		pyjson.Req("node_count", &r.NodeCount, pyjson.Int),
		pyjson.Req("generated_at", &r.GeneratedAt, timeC),
		pyjson.Prop("warnings", &r.Warnings, stringList),
		pyjson.Def("schema_version", &r.SchemaVersion, pyjson.Int, 1),
	}}
}

// Validate checks the counters, schema_version and every entry.
func (r *TopicCatalogResponse) Validate() error {
	for i := range r.Topics {
		if err := r.Topics[i].Validate(); err != nil {
			return nested("topics", pyjson.AtIndex(i, err))
		}
	}
	return firstErr(
		intMin("catalog_version", r.CatalogVersion, 0),
		intMin("node_count", r.NodeCount, 0),
		intMin("schema_version", r.SchemaVersion, 1),
	)
}

// TopicCatalogEntry is ModelTopicCatalogEntry (extra="forbid"). IsActive
// is derived: decoding and encoding recompute it as PublisherCount > 0 ||
// SubscriberCount > 0, ignoring the input value, as the Python validator
// does.
type TopicCatalogEntry struct {
	// TopicSuffix is required, 1..512 characters.
	TopicSuffix string
	// TopicName is required, 1..512 characters.
	TopicName string
	// Description is at most 1024 characters, default "".
	Description string
	// Partitions is required, >= 1.
	Partitions      int
	PublisherCount  int
	SubscriberCount int
	IsActive        bool
	Tags            []string
}

func (e *TopicCatalogEntry) pyName() string { return "ModelTopicCatalogEntry" }

func (e *TopicCatalogEntry) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("topic_suffix", &e.TopicSuffix, pyjson.String),
		pyjson.Req("topic_name", &e.TopicName, pyjson.String),
		pyjson.Def("description", &e.Description, pyjson.String, ""),
		pyjson.Req("partitions", &e.Partitions, pyjson.Int),
		pyjson.Prop("publisher_count", &e.PublisherCount, pyjson.Int),
		pyjson.Prop("subscriber_count", &e.SubscriberCount, pyjson.Int),
		pyjson.Prop("is_active", &e.IsActive, pyjson.Bool),
		pyjson.Prop("tags", &e.Tags, stringList),
	}}
}

func (e *TopicCatalogEntry) normalize() { e.IsActive = e.PublisherCount > 0 || e.SubscriberCount > 0 }

// Validate checks lengths, partitions >= 1 and non-negative counts.
func (e *TopicCatalogEntry) Validate() error {
	return firstErr(
		strLen("topic_suffix", e.TopicSuffix, 1, 512),
		strLen("topic_name", e.TopicName, 1, 512),
		strLen("description", e.Description, 0, 1024),
		intMin("partitions", e.Partitions, 1),
		intMin("publisher_count", e.PublisherCount, 0),
		intMin("subscriber_count", e.SubscriberCount, 0),
	)
}

// TopicCatalogChanged is ModelTopicCatalogChanged, for
// onex.evt.platform.topic-catalog-changed.v1 (extra="forbid"). TopicsAdded
// and TopicsRemoved are re-sorted alphabetically on decode and encode.
type TopicCatalogChanged struct {
	// CorrelationID is required.
	CorrelationID uuid.UUID
	// CatalogVersion is required, >= 0; must be 0 when CASFailure is set.
	CatalogVersion int
	TopicsAdded    []string
	TopicsRemoved  []string
	// TriggerNodeID is at most 256 characters, or nil.
	TriggerNodeID *string
	// TriggerReason is at most 1024 characters, default "".
	TriggerReason string
	// ChangedAt is required and timezone-aware.
	ChangedAt envelope.Time
	// SchemaVersion is >= 1, default 1.
	SchemaVersion int
	CASFailure    bool
}

func (c *TopicCatalogChanged) pyName() string { return "ModelTopicCatalogChanged" }

func (c *TopicCatalogChanged) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("correlation_id", &c.CorrelationID, pyjson.UUID),
		pyjson.Req("catalog_version", &c.CatalogVersion, pyjson.Int),
		pyjson.Prop("topics_added", &c.TopicsAdded, stringList),
		pyjson.Prop("topics_removed", &c.TopicsRemoved, stringList),
		pyjson.Prop("trigger_node_id", &c.TriggerNodeID, nullString),
		pyjson.Def("trigger_reason", &c.TriggerReason, pyjson.String, ""),
		pyjson.Req("changed_at", &c.ChangedAt, timeC),
		pyjson.Def("schema_version", &c.SchemaVersion, pyjson.Int, 1),
		pyjson.Prop("cas_failure", &c.CASFailure, pyjson.Bool),
	}}
}

func (c *TopicCatalogChanged) normalize() {
	c.TopicsAdded = sortedCopy(c.TopicsAdded)
	c.TopicsRemoved = sortedCopy(c.TopicsRemoved)
}

// Validate checks ranges, lengths and that a CAS failure carries
// catalog_version 0.
func (c *TopicCatalogChanged) Validate() error {
	var cas error
	if c.CASFailure && c.CatalogVersion != 0 {
		cas = fieldf("catalog_version", "must be 0 when cas_failure is true, got %d", c.CatalogVersion)
	}
	return firstErr(
		intMin("catalog_version", c.CatalogVersion, 0),
		optStrLen("trigger_node_id", c.TriggerNodeID, 0, 256),
		strLen("trigger_reason", c.TriggerReason, 0, 1024),
		intMin("schema_version", c.SchemaVersion, 1),
		cas,
	)
}

var catalogEntryC = object[TopicCatalogEntry]()
