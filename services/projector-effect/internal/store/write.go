// Package store is the projector's only door to PostgreSQL: the guarded,
// commutative writes of the registration projection (spec 4.7, 5.2), the
// reads of the registry API, and the change feed behind WatchNodes.
//
// Write guarantees (docs/projector.md):
//   - Idempotent and monotonic: the mutable columns (state, deadlines,
//     heartbeat, markers, updated_at) change only for an intent whose
//     sequence is newer than last_applied_sequence; the static columns
//     (node type, version, capabilities, endpoints, name, registration time,
//     attempt, correlation, contract fields, topics) only for an upsert
//     newer than registration_sequence.
//   - Commutative: every write is one INSERT … ON CONFLICT DO UPDATE whose
//     SET is guarded column group by column group, so any order of the same
//     intents, duplicated or not, leaves the row the in-order stream leaves.
//     An update that arrives before its upsert creates the row.
//   - A batch of writes is one transaction sent as one pipelined batch: a
//     few round trips whatever its size.
package store

import (
	"time"

	"github.com/google/uuid"
)

// Kind says which guard groups a write may change.
type Kind int

const (
	// Upsert writes the static and the mutable columns (postgres.upsert_registration).
	Upsert Kind = iota + 1
	// Update writes the mutable columns; on a missing row it creates it with
	// its identity columns and defaults elsewhere (postgres.update_registration).
	Update
)

// String returns "upsert" or "update".
func (k Kind) String() string {
	switch k {
	case Upsert:
		return "upsert"
	case Update:
		return "update"
	}
	return "unknown"
}

// Write is one intent in the form the projection takes it. Every time is
// UTC with microsecond precision.
type Write struct {
	Kind     Kind
	NodeID   uuid.UUID
	Domain   string
	Sequence int64

	// Mutable columns, guarded by last_applied_sequence.
	State                    string
	AckDeadline              *time.Time
	LivenessDeadline         *time.Time
	LastHeartbeatAt          *time.Time
	AckTimeoutEmittedAt      *time.Time
	LivenessTimeoutEmittedAt *time.Time
	UpdatedAt                time.Time

	// Identity columns: written by upserts under registration_sequence,
	// and by updates only when they create the row (the columns are NOT NULL).
	NodeType     string
	RegisteredAt time.Time
	AttemptID    uuid.UUID

	// Static columns written only by upserts.
	NodeVersion     string
	Capabilities    []byte // a JSON object
	Endpoints       map[string]string
	NodeName        *string
	CorrelationID   *uuid.UUID
	ContractType    *string
	ContractVersion *string
	IntentTypes     []string
	Protocols       []string
	CapabilityTags  []string
	// IntrospectionExtras are the unknown members of the node's
	// introspection (a JSON object, path → value); nil writes {}: every
	// upsert replaces the column, so a registration whose introspection
	// had none clears those of an earlier one.
	IntrospectionExtras []byte
	// SubscribeTopics and PublishTopics are the topic names of the node's
	// event_bus, written as JSON arrays; nil writes [], so, as with the
	// extras, a registration without topics clears an earlier one's.
	SubscribeTopics []string
	PublishTopics   []string
}

// Outcome is what applying one write did.
type Outcome int

const (
	// Inserted: the row did not exist and was created.
	Inserted Outcome = iota + 1
	// Updated: at least one guard group was newer and was written.
	Updated
	// Stale: no group was newer (a duplicate or an older intent); nothing
	// was written.
	Stale
)

// String returns "inserted", "updated" or "stale".
func (o Outcome) String() string {
	switch o {
	case Inserted:
		return "inserted"
	case Updated:
		return "updated"
	case Stale:
		return "stale"
	}
	return "unknown"
}
