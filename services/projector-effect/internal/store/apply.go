package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
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
	"introspection_extras", "subscribe_topics", "publish_topics", "registration_sequence",
}

// upsertSQL writes both groups, each under its own guard. The statement
// returns no row when neither guard passed (a stale intent).
var upsertSQL = `INSERT INTO ` + Table + ` AS t (
  entity_id, domain, current_state, ack_deadline, liveness_deadline, last_heartbeat_at,
  ack_timeout_emitted_at, liveness_timeout_emitted_at, updated_at, last_applied_sequence,
  node_type, node_version, capabilities, endpoints, node_name, registered_at, last_applied_event_id,
  correlation_id, contract_type, intent_types, protocols, capability_tags, contract_version,
  introspection_extras, subscribe_topics, publish_topics, registration_sequence)
VALUES ($1, $2, $3::registration_state, $4, $5, $6, $7, $8, $9, $10,
  $11, $12, $13::jsonb, $14::jsonb, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24::jsonb,
  $25::jsonb, $26::jsonb, $10)
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

// updateManySQL is updateSQL for many nodes at once (no node twice: a
// statement cannot change a row twice). It returns the rows it wrote; a
// node it did not return was stale.
var updateManySQL = `INSERT INTO ` + Table + ` AS t (
  entity_id, domain, current_state, ack_deadline, liveness_deadline, last_heartbeat_at,
  ack_timeout_emitted_at, liveness_timeout_emitted_at, updated_at, last_applied_sequence,
  node_type, registered_at, last_applied_event_id, registration_sequence)
SELECT u.entity_id, u.domain, u.current_state::registration_state, u.ack_deadline, u.liveness_deadline,
  u.last_heartbeat_at, u.ack_timeout_emitted_at, u.liveness_timeout_emitted_at, u.updated_at,
  u.last_applied_sequence, u.node_type, u.registered_at, u.last_applied_event_id, 0
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
  $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::bigint[], $11::text[], $12::timestamptz[], $13::uuid[])
  AS u(entity_id, domain, current_state, ack_deadline, liveness_deadline, last_heartbeat_at,
  ack_timeout_emitted_at, liveness_timeout_emitted_at, updated_at, last_applied_sequence,
  node_type, registered_at, last_applied_event_id)
ON CONFLICT (entity_id, domain) DO UPDATE SET
` + set(guarded(newerMutable, mutableCols...)) + `
WHERE ` + newerMutable + `
RETURNING t.entity_id, (xmax = 0)`

// errRoundRefused: a multi-row statement failed on its data; Apply then
// applies the batch one statement per write to find the write at fault.
var errRoundRefused = errors.New("store: a multi-row update was refused")

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

// Apply applies writes in one transaction, in the given order for each node,
// and returns each write's outcome. On error nothing was applied and the
// error is a *BatchError.
//
// Updates (heartbeats, most of all) go to PostgreSQL as one multi-row
// statement per round rather than one statement each: round k holds the
// k-th write of every node in the batch, so a node's writes still apply in
// their order, each against the row its predecessor left, and each gets
// the outcome it would have had alone. Upserts stay one statement each. A
// multi-row statement that PostgreSQL refuses cannot say which row it
// refused, so the batch is then applied again one statement per write,
// which can.
func (s *Store) Apply(ctx context.Context, writes []Write) ([]Outcome, error) {
	if len(writes) == 0 {
		return nil, nil
	}
	out, err := s.applyRounds(ctx, writes)
	if errors.Is(err, errRoundRefused) {
		return s.applyEach(ctx, writes)
	}
	return out, err
}

// applyEach applies writes with one statement per write, pipelined.
func (s *Store) applyEach(ctx context.Context, writes []Write) ([]Outcome, error) {
	b := &pgx.Batch{}
	stmts := make([]stmt, 0, len(writes))
	for i := range writes {
		sql, args, err := statement(&writes[i])
		if err != nil {
			return nil, &BatchError{Index: i, Err: Classify("encode", err)}
		}
		b.Queue(sql, args...)
		stmts = append(stmts, stmt{one: i})
	}
	return s.run(ctx, b, stmts, writes)
}

// stmt is one statement of a batch: the updates of a multi-row statement
// (many), or the one write of a single statement.
type stmt struct {
	many []int
	one  int
}

// run sends b, whose statements are stmts, in one transaction and reads
// each write's outcome.
func (s *Store) run(ctx context.Context, b *pgx.Batch, stmts []stmt, writes []Write) ([]Outcome, error) {
	out := make([]Outcome, len(writes))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		for _, st := range stmts {
			var err error
			if st.many != nil {
				err = readMany(br, writes, st.many, out)
			} else {
				err = readOne(br, writes, st.one, out)
			}
			if err != nil {
				_ = br.Close()
				return err
			}
		}
		if err := br.Close(); err != nil {
			return &BatchError{Index: -1, Err: Classify("apply", err)}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errRoundRefused) {
			return nil, err
		}
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

// readOne reads the outcome of write i's single statement into out.
func readOne(br pgx.BatchResults, writes []Write, i int, out []Outcome) error {
	var inserted bool
	err := br.QueryRow().Scan(&inserted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		out[i] = Stale
	case err != nil:
		return &BatchError{Index: i, Err: Classify("apply_"+writes[i].Kind.String(), err)}
	case inserted:
		out[i] = Inserted
	default:
		out[i] = Updated
	}
	return nil
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
		extras := string(w.IntrospectionExtras)
		if len(w.IntrospectionExtras) == 0 || extras == "null" {
			extras = "{}"
		}
		sub, err := json.Marshal(nonNil(w.SubscribeTopics))
		if err != nil {
			return "", nil, err
		}
		pub, err := json.Marshal(nonNil(w.PublishTopics))
		if err != nil {
			return "", nil, err
		}
		args := append(mutable, w.NodeType, w.NodeVersion, caps, string(ep), w.NodeName, w.RegisteredAt.UTC(), w.AttemptID,
			w.CorrelationID, w.ContractType, nonNil(w.IntentTypes), nonNil(w.Protocols), nonNil(w.CapabilityTags), w.ContractVersion,
			extras, string(sub), string(pub))
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

// rounds splits writes so that no round holds two writes of one node, each
// node's writes in their order: round k holds the k-th write of every node.
func rounds(writes []Write) [][]int {
	var out [][]int
	seen := make(map[uuid.UUID]int, len(writes))
	for i := range writes {
		k := seen[writes[i].NodeID]
		seen[writes[i].NodeID] = k + 1
		if k == len(out) {
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// applyRounds applies writes round by round (see Apply), every statement of
// every round in one pipelined batch and one transaction.
func (s *Store) applyRounds(ctx context.Context, writes []Write) ([]Outcome, error) {
	b := &pgx.Batch{}
	var stmts []stmt
	for _, r := range rounds(writes) {
		var updates []int
		for _, i := range r {
			if writes[i].Kind == Update && writes[i].Sequence >= 0 {
				updates = append(updates, i)
				continue
			}
			sql, args, err := statement(&writes[i])
			if err != nil {
				return nil, &BatchError{Index: i, Err: Classify("encode", err)}
			}
			b.Queue(sql, args...)
			stmts = append(stmts, stmt{one: i})
		}
		switch len(updates) {
		case 0:
		case 1:
			sql, args, _ := statement(&writes[updates[0]])
			b.Queue(sql, args...)
			stmts = append(stmts, stmt{one: updates[0]})
		default:
			b.Queue(updateManySQL, updateManyArgs(writes, updates)...)
			stmts = append(stmts, stmt{many: updates})
		}
	}
	return s.run(ctx, b, stmts, writes)
}

// readMany reads the rows a multi-row update returned into out: a returned
// node was written (inserted or updated), any other was stale.
func readMany(br pgx.BatchResults, writes []Write, idx []int, out []Outcome) error {
	rows, err := br.Query()
	if err == nil {
		for _, i := range idx {
			out[i] = Stale
		}
		byNode := make(map[uuid.UUID]int, len(idx))
		for _, i := range idx {
			byNode[writes[i].NodeID] = i
		}
		for rows.Next() {
			var id uuid.UUID
			var inserted bool
			if err = rows.Scan(&id, &inserted); err != nil {
				break
			}
			i, ok := byNode[id]
			if !ok {
				err = fmt.Errorf("multi-row update returned node %s, which it was not given", id)
				break
			}
			out[i] = Updated
			if inserted {
				out[i] = Inserted
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err == nil {
		return nil
	}
	if IsDataError(Classify("apply_update", err)) {
		return errRoundRefused
	}
	return &BatchError{Index: -1, Err: Classify("apply_update", err)}
}

// updateManyArgs are updateManySQL's arrays for the updates idx.
func updateManyArgs(writes []Write, idx []int) []any {
	n := len(idx)
	var (
		ids, events                  = make([]uuid.UUID, n), make([]uuid.UUID, n)
		domains, states, types       = make([]string, n), make([]string, n), make([]string, n)
		ack, live, hb, ackTO, liveTO = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		updated, registered          = make([]time.Time, n), make([]time.Time, n)
		seqs                         = make([]int64, n)
	)
	for j, i := range idx {
		w := &writes[i]
		ids[j], events[j] = w.NodeID, w.AttemptID
		domains[j], states[j], types[j] = w.Domain, w.State, w.NodeType
		if domains[j] == "" {
			domains[j] = "registration"
		}
		ack[j], live[j], hb[j] = utcp(w.AckDeadline), utcp(w.LivenessDeadline), utcp(w.LastHeartbeatAt)
		ackTO[j], liveTO[j] = utcp(w.AckTimeoutEmittedAt), utcp(w.LivenessTimeoutEmittedAt)
		updated[j], registered[j], seqs[j] = w.UpdatedAt.UTC(), w.RegisteredAt.UTC(), w.Sequence
	}
	return []any{ids, domains, states, ack, live, hb, ackTO, liveTO, updated, seqs, types, registered, events}
}
