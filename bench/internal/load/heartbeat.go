package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Heartbeats sends the heartbeats of a pre-registered fleet, round robin,
// byte for byte as pkg/node's Encoder writes them (from templates, see
// template.go), and remembers every heartbeat's timestamp: the projection stores the newest
// one per node (last_heartbeat_at), so counting the sent timestamps up to
// it tells how many heartbeats the projection reflects.
type Heartbeats struct {
	Brokers []string
	Nodes   []node.Identity
	// Source is the bus environment written to the source header.
	Source string
	// Namespace is the run's topic namespace (KAFKA_TOPIC_NAMESPACE).
	Namespace topicns.Namespace

	mu    sync.Mutex
	sent  [][]int64 // per node, unix microseconds, ascending
	total atomic.Int64
}

// Sent is the number of heartbeats published so far.
func (h *Heartbeats) Sent() int64 { return h.total.Load() }

// Run publishes heartbeats at rate per second for d, in 10 ms slices; a
// slice is skipped while allow (when set) says the fleet is too far behind,
// so the backlog stays bounded and the pipeline stays full. It returns the
// number sent.
func (h *Heartbeats) Run(ctx context.Context, rate float64, d time.Duration, allow func() bool) (int64, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: h.Brokers, ClientID: "bench-heartbeats"})
	if err != nil {
		return 0, err
	}
	// What node.Fleet uses: small records, latency over batching.
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	cfg.Producer.Compression = sarama.CompressionNone
	prod, err := sarama.NewAsyncProducer(h.Brokers, cfg)
	if err != nil {
		return 0, fmt.Errorf("heartbeats: producer: %w", err)
	}
	var wg sync.WaitGroup
	var perr atomic.Value
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range prod.Successes() {
		}
	}()
	go func() {
		defer wg.Done()
		for e := range prod.Errors() {
			perr.Store(e.Err)
		}
	}()
	defer func() { prod.AsyncClose(); wg.Wait() }()

	h.mu.Lock()
	if h.sent == nil {
		h.sent = make([][]int64, len(h.Nodes))
	}
	h.mu.Unlock()
	templates := map[string]*template{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x6862))
	const slice = 10 * time.Millisecond
	perSlice := rate * slice.Seconds()
	start := time.Now()
	var owed float64
	var n int64
	i := int(h.total.Load()) % len(h.Nodes)
	t := time.NewTicker(slice)
	defer t.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-t.C:
		}
		if allow != nil && !allow() {
			owed = 0
			continue
		}
		owed += perSlice
		for ; owed >= 1; owed-- {
			id := &h.Nodes[i]
			kind := string(id.Type) + "/" + id.Version.String()
			tpl := templates[kind]
			if tpl == nil {
				if tpl, err = newTemplate(*id, h.Source, h.Namespace); err != nil {
					return n, err
				}
				templates[kind] = tpl
			}
			cur := time.Now().UTC().Truncate(time.Microsecond)
			select {
			case prod.Input() <- tpl.record(id.NodeID, cur, randomIDs(rng)):
			case <-ctx.Done():
				return n, ctx.Err()
			}
			h.mu.Lock()
			h.sent[i] = append(h.sent[i], cur.UnixMicro())
			h.mu.Unlock()
			n++
			h.total.Add(1)
			i = (i + 1) % len(h.Nodes)
		}
	}
	if e, ok := perr.Load().(error); ok {
		return n, fmt.Errorf("heartbeats: publish: %w", e)
	}
	return n, nil
}

// Reflected reads last_heartbeat_at of every node from the projection and
// returns how many of the heartbeats sent so far it reflects (a node's
// heartbeats up to its stored one), and when the read started.
func (h *Heartbeats) Reflected(ctx context.Context, pool *pgxpool.Pool) (int64, time.Time, error) {
	ids := make([]string, len(h.Nodes))
	index := make(map[uuid.UUID]int, len(h.Nodes))
	for i := range h.Nodes {
		ids[i] = h.Nodes[i].NodeID.String()
		index[h.Nodes[i].NodeID] = i
	}
	at := time.Now()
	rows, err := pool.Query(ctx, `SELECT entity_id, last_heartbeat_at FROM registration_projections
		WHERE entity_id = ANY($1::uuid[]) AND last_heartbeat_at IS NOT NULL`, ids)
	if err != nil {
		return 0, at, fmt.Errorf("heartbeats: read projection: %w", err)
	}
	defer rows.Close()
	var total int64
	h.mu.Lock()
	defer h.mu.Unlock()
	for rows.Next() {
		var id uuid.UUID
		var last time.Time
		if err := rows.Scan(&id, &last); err != nil {
			return 0, at, err
		}
		i, ok := index[id]
		if !ok || h.sent == nil {
			continue
		}
		us := last.UnixMicro()
		s := h.sent[i]
		total += int64(sort.Search(len(s), func(k int) bool { return s[k] > us }))
	}
	return total, at, rows.Err()
}
