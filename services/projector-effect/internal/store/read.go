package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Row is one projection row as the registry API shows it.
type Row struct {
	NodeID                   uuid.UUID
	Domain                   string
	State                    string
	NodeType                 string
	NodeName                 *string
	NodeVersion              string
	Capabilities             json.RawMessage
	Endpoints                map[string]string
	CapabilityTags           []string
	IntentTypes              []string
	Protocols                []string
	ContractType             *string
	ContractVersion          *string
	AttemptID                uuid.UUID
	CorrelationID            *uuid.UUID
	RegisteredAt             time.Time
	UpdatedAt                time.Time
	AckDeadline              *time.Time
	LivenessDeadline         *time.Time
	LastHeartbeatAt          *time.Time
	AckTimeoutEmittedAt      *time.Time
	LivenessTimeoutEmittedAt *time.Time
	Sequence                 int64
	RegistrationSequence     int64
	// IntrospectionExtras are the unknown members of the node's latest
	// introspection (column introspection_extras; {} when none).
	IntrospectionExtras json.RawMessage
	// SubscribeTopics and PublishTopics are the topic names of the node's
	// event_bus (empty when none).
	SubscribeTopics []string
	PublishTopics   []string
	// ChangeXID is the transaction that last wrote the row (the change
	// feed's position of this version of the row).
	ChangeXID uint64
}

// Domain is the projection domain of every registration row (spec 5.4).
const Domain = "registration"

const rowCols = `entity_id, domain, current_state::text, node_type, node_name, node_version, capabilities,
  endpoints, COALESCE(capability_tags, '{}'), COALESCE(intent_types, '{}'), COALESCE(protocols, '{}'),
  contract_type, contract_version, last_applied_event_id, correlation_id, registered_at, updated_at,
  ack_deadline, liveness_deadline, last_heartbeat_at, ack_timeout_emitted_at, liveness_timeout_emitted_at,
  COALESCE(last_applied_sequence, 0), registration_sequence, introspection_extras, subscribe_topics, publish_topics,
  change_xid::text`

func scanRow(r pgx.Row) (*Row, error) {
	var (
		x        Row
		caps     []byte
		ep       []byte
		extras   []byte
		sub, pub []byte
		xid      string
	)
	err := r.Scan(&x.NodeID, &x.Domain, &x.State, &x.NodeType, &x.NodeName, &x.NodeVersion, &caps,
		&ep, &x.CapabilityTags, &x.IntentTypes, &x.Protocols,
		&x.ContractType, &x.ContractVersion, &x.AttemptID, &x.CorrelationID, &x.RegisteredAt, &x.UpdatedAt,
		&x.AckDeadline, &x.LivenessDeadline, &x.LastHeartbeatAt, &x.AckTimeoutEmittedAt, &x.LivenessTimeoutEmittedAt,
		&x.Sequence, &x.RegistrationSequence, &extras, &sub, &pub, &xid)
	if err != nil {
		return nil, err
	}
	x.SubscribeTopics, x.PublishTopics = topicNames(sub), topicNames(pub)
	x.Capabilities = json.RawMessage(caps)
	x.IntrospectionExtras = json.RawMessage(extras)
	if len(ep) > 0 {
		// Endpoints are written by this service as a string map; a row
		// written otherwise keeps what it can be read as.
		if err := json.Unmarshal(ep, &x.Endpoints); err != nil {
			x.Endpoints = nil
		}
	}
	x.ChangeXID, _ = strconv.ParseUint(xid, 10, 64)
	for _, t := range []*time.Time{&x.RegisteredAt, &x.UpdatedAt} {
		*t = t.UTC()
	}
	for _, t := range []**time.Time{&x.AckDeadline, &x.LivenessDeadline, &x.LastHeartbeatAt, &x.AckTimeoutEmittedAt, &x.LivenessTimeoutEmittedAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
	return &x, nil
}

// ErrNotFound is returned by Get for a node without a row.
var ErrNotFound = errors.New("store: node not found")

// Get returns the registration row of node, or ErrNotFound.
func (s *Store) Get(ctx context.Context, node uuid.UUID) (*Row, error) {
	r, err := scanRow(s.pool.QueryRow(ctx, `SELECT `+rowCols+` FROM `+Table+` WHERE entity_id = $1 AND domain = $2`, node, Domain))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, Classify("get", err)
	}
	return r, nil
}

// topicNames reads a topic column: a JSON array of names. A row written
// by someone else with anything else in it shows no topics rather than
// failing every read of the row.
func topicNames(b []byte) []string {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return nil
	}
	return names
}

// listQuery is the statement List runs.
func listQuery(f Filter, after uuid.UUID, limit int) (string, []any) {
	conds, args := f.conditions([]any{Domain, after})
	q := `SELECT ` + rowCols + ` FROM ` + Table + `
WHERE domain = $1 AND entity_id > $2`
	for _, c := range conds {
		q += "\n  AND " + c
	}
	args = append(args, limit)
	q += "\nORDER BY entity_id\nLIMIT $" + strconv.Itoa(len(args))
	return q, args
}

// List returns up to limit rows matching f with entity_id greater than
// after (uuid.Nil: from the start), ordered by entity_id. f must be valid
// (Filter.Validate).
func (s *Store) List(ctx context.Context, f Filter, after uuid.UUID, limit int) ([]*Row, error) {
	q, args := listQuery(f, after, limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, Classify("list", err)
	}
	defer rows.Close()
	var out []*Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, Classify("list", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, Classify("list", err)
	}
	return out, nil
}

// All calls fn for every registration row, in entity_id order, reading in
// pages of size page. It stops at fn's first error.
func (s *Store) All(ctx context.Context, page int, fn func(*Row) error) error {
	after := uuid.Nil
	for {
		rows, err := s.List(ctx, Filter{}, after, page)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rows) < page {
			return nil
		}
		after = rows[len(rows)-1].NodeID
	}
}

// CountByState returns the number of registration rows per state (states
// without rows are absent).
func (s *Store) CountByState(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT current_state::text, count(*) FROM `+Table+` WHERE domain = $1 GROUP BY 1`, Domain)
	if err != nil {
		return nil, Classify("count_by_state", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, Classify("count_by_state", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, Classify("count_by_state", err)
	}
	return out, nil
}
