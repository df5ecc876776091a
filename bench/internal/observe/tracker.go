// Package observe follows registrations from the outside: what each node
// sees on the lifecycle topics (through pkg/node's transitions), when its
// row turns active in PostgreSQL (polling the projection), and when the
// consul effect reports its service registered (its result on the
// effect-results topic).
package observe

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// Timeline is what was observed of one node's registration. Zero times were
// not observed.
type Timeline struct {
	// Introduced is when the benchmark handed the node's startup
	// introspection to the client (the start of every latency).
	Introduced time.Time
	// Published is when the broker acknowledged the introspection.
	Published time.Time
	// Accepted and NodeActive are when the node saw its accepted and
	// became-active events; Acked when it published its ack. The first of
	// each counts: the reducer re-sends the accepted event until it has the
	// ack, and pkg/node acks every copy without reporting a transition for
	// a copy of the attempt it already acked.
	Accepted, Acked, NodeActive time.Time
	// PGActive is the start of the first projection poll that found the
	// row active (the commit happened before it).
	PGActive time.Time
	// Consul is when the consul effect's success result for the node's
	// consul.register arrived (the agent had the service before).
	Consul time.Time
}

// Active is when the node was ACTIVE in both PostgreSQL and Consul (zero
// if not yet).
func (t Timeline) Active() time.Time {
	if t.PGActive.IsZero() || t.Consul.IsZero() {
		return time.Time{}
	}
	if t.PGActive.After(t.Consul) {
		return t.PGActive
	}
	return t.Consul
}

// Tracker collects timelines. It is safe for concurrent use.
type Tracker struct {
	// pollEvery is PollPostgres's period, in nanoseconds (SetPollInterval).
	pollEvery atomic.Int64

	mu        sync.Mutex
	nodes     map[uuid.UUID]*Timeline
	pgPending map[uuid.UUID]struct{}
	onDone    func(uuid.UUID, Timeline)
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{nodes: map[uuid.UUID]*Timeline{}, pgPending: map[uuid.UUID]struct{}{}}
}

// OnDone sets the function called (outside the tracker's lock) when a node
// becomes ACTIVE in both backends; nil removes it.
func (t *Tracker) OnDone(fn func(uuid.UUID, Timeline)) {
	t.mu.Lock()
	t.onDone = fn
	t.mu.Unlock()
}

// Introduce starts a node's timeline.
func (t *Tracker) Introduce(id uuid.UUID, at time.Time) {
	t.mu.Lock()
	t.nodes[id] = &Timeline{Introduced: at}
	t.mu.Unlock()
}

// Transition is a node.Config.OnTransition.
func (t *Tracker) Transition(id uuid.UUID, _, to node.Status) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tl := t.nodes[id]
	if tl == nil {
		return
	}
	switch to {
	case node.StatusIntroducing:
		setOnce(&tl.Published, now)
	case node.StatusAccepted:
		setOnce(&tl.Accepted, now)
		if tl.PGActive.IsZero() {
			t.pgPending[id] = struct{}{}
		}
	case node.StatusAcked:
		setOnce(&tl.Acked, now)
	case node.StatusActive:
		setOnce(&tl.NodeActive, now)
	}
}

func setOnce(p *time.Time, v time.Time) {
	if p.IsZero() {
		*p = v
	}
}

// Get returns a copy of id's timeline.
func (t *Tracker) Get(id uuid.UUID) (Timeline, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tl, ok := t.nodes[id]
	if !ok {
		return Timeline{}, false
	}
	return *tl, true
}

// Timelines returns copies of the timelines of ids (zero for unknown ones).
func (t *Tracker) Timelines(ids []uuid.UUID) []Timeline {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Timeline, len(ids))
	for i, id := range ids {
		if tl := t.nodes[id]; tl != nil {
			out[i] = *tl
		}
	}
	return out
}

// mark records a backend observation and reports completion.
func (t *Tracker) mark(id uuid.UUID, at time.Time, pg bool) {
	t.mu.Lock()
	tl := t.nodes[id]
	if tl == nil {
		t.mu.Unlock()
		return
	}
	wasDone := !tl.Active().IsZero()
	if pg {
		setOnce(&tl.PGActive, at)
		delete(t.pgPending, id)
	} else {
		setOnce(&tl.Consul, at)
	}
	done := !wasDone && !tl.Active().IsZero()
	fn, cp := t.onDone, *tl
	t.mu.Unlock()
	if done && fn != nil {
		fn(id, cp)
	}
}

func (t *Tracker) pending(limit int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, min(len(t.pgPending), limit))
	for id := range t.pgPending {
		if len(out) == limit {
			break
		}
		out = append(out, id.String())
	}
	return out
}

// SetPollInterval changes PollPostgres's period from its next poll on.
// Every poll looks up every pending node, so its cost is the rate of
// polls times the registrations in flight: a period that times latencies
// to the millisecond is a PostgreSQL load that competes with the fleet
// in a throughput run.
func (t *Tracker) SetPollInterval(d time.Duration) { t.pollEvery.Store(int64(d)) }

// PollPostgres looks up, every interval (SetPollInterval changes it), which
// nodes that saw their accepted event have an active row, until ctx ends.
// Only those nodes are queried (by primary key), so the poll stays cheap
// at any fleet size.
func (t *Tracker) PollPostgres(ctx context.Context, pool *pgxpool.Pool, interval time.Duration) error {
	t.SetPollInterval(interval)
	next := time.NewTimer(interval)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-next.C:
		}
		next.Reset(time.Duration(t.pollEvery.Load()))
		ids := t.pending(20000)
		if len(ids) == 0 {
			continue
		}
		at := time.Now()
		rows, err := pool.Query(ctx, `SELECT entity_id FROM registration_projections
			WHERE entity_id = ANY($1::uuid[]) AND current_state = 'active'`, ids)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("observe: poll projection: %w", err)
		}
		var found []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err == nil {
				found = append(found, id)
			}
		}
		rows.Close()
		for _, id := range found {
			t.mark(id, at, true)
		}
	}
}

// FollowConsul consumes the effect-results topic (its name on the run's
// namespace) from its end (ready is closed once every partition is
// positioned) and records, for tracked nodes, the arrival of a successful
// consul.register result.
func (t *Tracker) FollowConsul(ctx context.Context, brokers []string, topic string, ready chan<- struct{}) error {
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "bench-observer"})
	if err != nil {
		return err
	}
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		return fmt.Errorf("observe: consumer: %w", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		return fmt.Errorf("observe: %w", err)
	}
	var wg sync.WaitGroup
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("observe: consume: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			for {
				select {
				case <-ctx.Done():
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					t.consulResult(m.Headers, m.Value)
				}
			}
		}()
	}
	close(ready)
	wg.Wait()
	return nil
}

// consulRegister is in every result of a consul.register, in either form:
// the JSON envelope's payload and the protobuf intent_type field both hold
// it as it is. It spares decoding the other results.
var consulRegister = []byte(pipeline.ConsulRegister)

// consulResult marks the node of a successful consul.register result, read
// in either form by its content type.
func (t *Tracker) consulResult(headers []*sarama.RecordHeader, v []byte) {
	if !bytes.Contains(v, consulRegister) {
		return
	}
	at := time.Now()
	rec, err := pipeline.DecodeEffectResultRecord(headers, v)
	if err != nil {
		return
	}
	if r := rec.Result; r.IntentType == pipeline.ConsulRegister && r.Success {
		t.mark(r.NodeID, at, false)
	}
}
