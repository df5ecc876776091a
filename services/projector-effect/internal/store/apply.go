package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Table is the projection table (spec 5.2).
const Table = "registration_projections"

// The guards. t is the existing row, EXCLUDED the proposed one; the SET
// expressions all see the row as it was before the statement.
const (
	newerMutable = `COALESCE(t.last_applied_sequence, -1) < EXCLUDED.last_applied_sequence`
	newerStatic  = `t.registration_sequence < EXCLUDED.registration_sequence`
)

func guarded(guard string, cols ...string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = fmt.Sprintf("%s = CASE WHEN %s THEN EXCLUDED.%s ELSE t.%s END", c, guard, c, c)
	}
	return out
}

func set(groups ...[]string) string { return "  " + strings.Join(slices.Concat(groups...), ",\n  ") }

var mutableCols = []string{
	"current_state", "ack_deadline", "liveness_deadline", "last_heartbeat_at",
	"ack_timeout_emitted_at", "liveness_timeout_emitted_at", "updated_at", "last_applied_sequence",
}

var staticCols = []string{
	"node_type", "node_version", "capabilities", "endpoints", "node_name",
	"registered_at", "last_applied_event_id", "correlation_id",
	"contract_type", "intent_types", "protocols", "capability_tags", "contract_version",
	"registration_sequence",
}

// upsertSQL writes both groups, each under its own guard. The statement
// returns no row when neither guard passed (a stale intent).
var upsertSQL = `INSERT INTO ` + Table + ` AS t (
  entity_id, domain, current_state, ack_deadline, liveness_deadline, last_heartbeat_at,
  ack_timeout_emitted_at, liveness_timeout_emitted_at, updated_at, last_applied_sequence,
  node_type, node_version, capabilities, endpoints, node_name, registered_at, last_applied_event_id,
  correlation_id, contract_type, intent_types, protocols, capability_tags, contract_version,
  registration_sequence)
VALUES ($1, $2, $3::registration_state, $4, $5, $6, $7, $8, $9, $10,
  $11, $12, $13::jsonb, $14::jsonb, $15, $16, $17, $18, $19, $20, $21, $22, $23, $10)
ON CONFLICT (entity_id, domain) DO UPDATE SET
` + set(guarded(newerMutable, mutableCols...), guarded(newerStatic, staticCols...)) + `
WHERE ` + newerMutable + ` OR ` + newerStatic + `
RETURNING (xmax = 0)`

// updateSQL writes the mutable group. On a missing row it inserts one with
// the identity columns the update carries (they are NOT NULL) and
// registration_sequence 0, so the node's upsert, whenever it arrives, still
// fills the static columns.
var updateSQL = `INSERT INTO ` + Table + ` AS t (
  entity_id, domain, current_state, ack_deadline, liveness_deadline, last_heartbeat_at,
  ack_timeout_emitted_at, liveness_timeout_emitted_at, updated_at, last_applied_sequence,
  node_type, registered_at, last_applied_event_id, registration_sequence)
VALUES ($1, $2, $3::registration_state, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0)
ON CONFLICT (entity_id, domain) DO UPDATE SET
` + set(guarded(newerMutable, mutableCols...)) + `
WHERE ` + newerMutable + `
RETURNING (xmax = 0)`

// BatchError is the failure of a batch. Index is the write whose statement
// failed, or -1 when the failure is not one write's (connection, begin,
// commit). Err is classified (see Classify). Nothing of the batch was
// committed.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string {
	if e.Index < 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("write %d: %v", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Store reads and writes the projection through a pgx pool. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the pool (for readiness pings and the change feed).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Apply applies writes in one transaction, sent as one pipelined batch, in
// the given order, and returns each write's outcome. On error nothing was
// applied and the error is a *BatchError.
func (s *Store) Apply(ctx context.Context, writes []Write) ([]Outcome, error) {
	if len(writes) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	for i := range writes {
		sql, args, err := statement(&writes[i])
		if err != nil {
			return nil, &BatchError{Index: i, Err: Classify("encode", err)}
		}
		b.Queue(sql, args...)
	}
	out := make([]Outcome, len(writes))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		for i := range writes {
			var inserted bool
			err := br.QueryRow().Scan(&inserted)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				out[i] = Stale
			case err != nil:
				_ = br.Close()
				return &BatchError{Index: i, Err: Classify("apply_"+writes[i].Kind.String(), err)}
			case inserted:
				out[i] = Inserted
			default:
				out[i] = Updated
			}
		}
		if err := br.Close(); err != nil {
			return &BatchError{Index: -1, Err: Classify("apply", err)}
		}
		return nil
	})
	if err != nil {
		var be *BatchError
		if errors.As(err, &be) {
			// A statement error is only the statement's fault when the
			// connection survived it; a dropped connection mid-batch is not.
			if be.Index >= 0 && !IsDataError(be.Err) {
				be.Index = -1
			}
			return nil, be
		}
		return nil, &BatchError{Index: -1, Err: Classify("apply", err)}
	}
	return out, nil
}

func statement(w *Write) (string, []any, error) {
	if w.Sequence < 0 {
		return "", nil, fmt.Errorf("negative sequence %d", w.Sequence)
	}
	domain := w.Domain
	if domain == "" {
		domain = "registration"
	}
	mutable := []any{w.NodeID, domain, w.State, utcp(w.AckDeadline), utcp(w.LivenessDeadline), utcp(w.LastHeartbeatAt),
		utcp(w.AckTimeoutEmittedAt), utcp(w.LivenessTimeoutEmittedAt), w.UpdatedAt.UTC(), w.Sequence}
	switch w.Kind {
	case Upsert:
		caps := string(w.Capabilities)
		if len(w.Capabilities) == 0 || string(w.Capabilities) == "null" {
			caps = "{}"
		}
		endpoints := w.Endpoints
		if endpoints == nil {
			endpoints = map[string]string{}
		}
		ep, err := json.Marshal(endpoints)
		if err != nil {
			return "", nil, err
		}
		args := append(mutable, w.NodeType, w.NodeVersion, caps, string(ep), w.NodeName, w.RegisteredAt.UTC(), w.AttemptID,
			w.CorrelationID, w.ContractType, nonNil(w.IntentTypes), nonNil(w.Protocols), nonNil(w.CapabilityTags), w.ContractVersion)
		return upsertSQL, args, nil
	case Update:
		return updateSQL, append(mutable, w.NodeType, w.RegisteredAt.UTC(), w.AttemptID), nil
	}
	return "", nil, fmt.Errorf("unknown write kind %d", w.Kind)
}

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
