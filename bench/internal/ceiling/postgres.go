package ceiling

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Row is one registration_projections row as the projector writes it.
type Row struct {
	EntityID         uuid.UUID
	State            string
	NodeType         string
	NodeVersion      string
	Capabilities     json.RawMessage
	Endpoints        map[string]string
	NodeName         *string
	AckDeadline      *time.Time
	LivenessDeadline *time.Time
	LastHeartbeatAt  *time.Time
	AttemptID        uuid.UUID
	Sequence         int64
	RegistrationSeq  int64
	RegisteredAt     time.Time
	UpdatedAt        time.Time
	CorrelationID    uuid.UUID
}

// Method is how a batch is written.
type Method string

const (
	// MultiRow writes a batch as one INSERT … SELECT FROM unnest(…) ON
	// CONFLICT statement: the fastest way to upsert many rows.
	MultiRow Method = "multi-row"
	// Pipelined writes a batch as one statement per row, sent as one pgx
	// pipelined batch: the projector's way (it needs a result per intent).
	Pipelined Method = "pipelined"
)

const upsertCols = `entity_id, domain, current_state, node_type, node_version, capabilities, endpoints,
  node_name, ack_deadline, liveness_deadline, last_heartbeat_at, last_applied_event_id,
  last_applied_sequence, registration_sequence, registered_at, updated_at, correlation_id`

// The conflict clause overwrites the mutable columns, as a heartbeat's
// update does (each of them non-HOT: updated_at and liveness_deadline are
// indexed).
const onConflict = `ON CONFLICT (entity_id, domain) DO UPDATE SET
  current_state = EXCLUDED.current_state, ack_deadline = EXCLUDED.ack_deadline,
  liveness_deadline = EXCLUDED.liveness_deadline, last_heartbeat_at = EXCLUDED.last_heartbeat_at,
  updated_at = EXCLUDED.updated_at, last_applied_sequence = EXCLUDED.last_applied_sequence`

const multiRowSQL = `INSERT INTO registration_projections AS t (` + upsertCols + `)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::registration_state[], $4::text[], $5::text[],
  $6::jsonb[], $7::jsonb[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
  $12::uuid[], $13::bigint[], $14::bigint[], $15::timestamptz[], $16::timestamptz[], $17::uuid[])
` + onConflict

const rowSQL = `INSERT INTO registration_projections AS t (` + upsertCols + `)
VALUES ($1, $2, $3::registration_state, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
` + onConflict

// Postgres upserts rows into registration_projections in transactions of
// batch rows, workers transactions at a time (the projector runs one
// partition's batch per transaction, six partitions at once), and returns
// the rate. It is both the raw PostgreSQL ceiling and how the benchmark
// seeds the projection of its pre-registered fleet.
func Postgres(ctx context.Context, pool *pgxpool.Pool, rows []Row, batch, workers int, m Method) (Rate, error) {
	work := make(chan []Row)
	var (
		wg    sync.WaitGroup
		n     atomic.Int64
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if err := writeBatch(ctx, pool, b, m); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				n.Add(int64(len(b)))
			}
		}()
	}
	for i := 0; i < len(rows); i += batch {
		select {
		case work <- rows[i:min(i+batch, len(rows))]:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	r := Rate{Count: n.Load(), Seconds: time.Since(start).Seconds()}
	if first != nil {
		return r, fmt.Errorf("postgres upsert (%s): %w", m, first)
	}
	return r, ctx.Err()
}

func writeBatch(ctx context.Context, pool *pgxpool.Pool, rows []Row, m Method) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if m == MultiRow {
			cols := columns(rows)
			_, err := tx.Exec(ctx, multiRowSQL, cols...)
			return err
		}
		b := &pgx.Batch{}
		for i := range rows {
			b.Queue(rowSQL, rowArgs(&rows[i])...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

func endpointsJSON(m map[string]string) string {
	if m == nil {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func capsJSON(c json.RawMessage) string {
	if len(c) == 0 {
		return "{}"
	}
	return string(c)
}

func rowArgs(r *Row) []any {
	return []any{r.EntityID.String(), "registration", r.State, r.NodeType, r.NodeVersion, capsJSON(r.Capabilities),
		endpointsJSON(r.Endpoints), r.NodeName, r.AckDeadline, r.LivenessDeadline, r.LastHeartbeatAt,
		r.AttemptID.String(), r.Sequence, r.RegistrationSeq, r.RegisteredAt, r.UpdatedAt, r.CorrelationID.String()}
}

func columns(rows []Row) []any {
	n := len(rows)
	var (
		ids, domains, states, types, versions = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		caps, eps                             = make([]string, n), make([]string, n)
		names                                 = make([]*string, n)
		ack, live, hb                         = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		attempts, corrs                       = make([]string, n), make([]string, n)
		seqs, regSeqs                         = make([]int64, n), make([]int64, n)
		regAt, updAt                          = make([]time.Time, n), make([]time.Time, n)
	)
	for i := range rows {
		r := &rows[i]
		ids[i], domains[i], states[i], types[i], versions[i] = r.EntityID.String(), "registration", r.State, r.NodeType, r.NodeVersion
		caps[i], eps[i], names[i] = capsJSON(r.Capabilities), endpointsJSON(r.Endpoints), r.NodeName
		ack[i], live[i], hb[i] = r.AckDeadline, r.LivenessDeadline, r.LastHeartbeatAt
		attempts[i], corrs[i] = r.AttemptID.String(), r.CorrelationID.String()
		seqs[i], regSeqs[i], regAt[i], updAt[i] = r.Sequence, r.RegistrationSeq, r.RegisteredAt, r.UpdatedAt
	}
	return []any{ids, domains, states, types, versions, caps, eps, names, ack, live, hb, attempts, seqs, regSeqs, regAt, updAt, corrs}
}

// DeleteRows removes the rows of ids (the benchmark's clean-up).
func DeleteRows(ctx context.Context, pool *pgxpool.Pool, ids []uuid.UUID) (int64, error) {
	var total int64
	for i := 0; i < len(ids); i += 5000 {
		chunk := make([]string, 0, 5000)
		for _, id := range ids[i:min(i+5000, len(ids))] {
			chunk = append(chunk, id.String())
		}
		tag, err := pool.Exec(ctx, `DELETE FROM registration_projections WHERE entity_id = ANY($1::uuid[])`, chunk)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
	}
	return total, nil
}
