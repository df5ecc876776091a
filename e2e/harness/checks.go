package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	consul "github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// Row is what a user checks of a node in PostgreSQL.
type Row struct {
	NodeID          string
	State           string
	NodeType        string
	NodeName        *string
	NodeVersion     string
	Endpoints       map[string]string
	Capabilities    map[string]any
	RegisteredAt    time.Time
	UpdatedAt       time.Time
	LastHeartbeatAt *time.Time
	LivenessDL      *time.Time
}

// DB reads the projection.
type DB struct{ pool *pgxpool.Pool }

// OpenDB connects to the projection database.
func OpenDB(ctx context.Context, dsn string) (*DB, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &DB{pool: pool}, nil
}

// Close closes the pool.
func (d *DB) Close() { d.pool.Close() }

const rowColumns = `entity_id::text, current_state::text, node_type, node_name, node_version, endpoints, capabilities,
	registered_at, updated_at, last_heartbeat_at, liveness_deadline`

// Rows returns the projection rows of the given nodes (all rows when ids
// is empty), by node id.
func (d *DB) Rows(ctx context.Context, ids ...string) (map[string]Row, error) {
	out := map[string]Row{}
	err := d.eachRow(ctx, rowColumns, ids, func(rows pgx.Rows) error {
		var r Row
		var endpoints, caps []byte
		if err := rows.Scan(&r.NodeID, &r.State, &r.NodeType, &r.NodeName, &r.NodeVersion, &endpoints, &caps,
			&r.RegisteredAt, &r.UpdatedAt, &r.LastHeartbeatAt, &r.LivenessDL); err != nil {
			return err
		}
		_ = json.Unmarshal(endpoints, &r.Endpoints)
		_ = json.Unmarshal(caps, &r.Capabilities)
		out[r.NodeID] = r
		return nil
	})
	return out, err
}

// eachRow selects cols of the registration rows of the given nodes (all
// rows when ids is empty) and calls fn for each, stopping at its first
// error.
func (d *DB) eachRow(ctx context.Context, cols string, ids []string, fn func(pgx.Rows) error) error {
	q := `SELECT ` + cols + ` FROM registration_projections WHERE domain = 'registration'`
	var args []any
	if len(ids) > 0 {
		q += ` AND entity_id = ANY($1::uuid[])`
		args = append(args, ids)
	}
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ConsulServices returns the ONEX services in Consul by node id (Meta
// onex-node-id), whatever their health, read from the catalog: the fleet
// registers them through the catalog API (see ConsulEntries).
func ConsulServices(addr string) (map[string]*consul.AgentService, error) {
	entries, err := ConsulEntries(addr)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*consul.AgentService, len(entries))
	for id, e := range entries {
		out[id] = e.Service
	}
	return out, nil
}

var (
	consulMu      sync.Mutex
	consulClients = map[string]*consul.Client{}
)

// consulClient is one client per agent address for the whole run: a client
// per call would open connections until the agent's per-client limit
// (http_max_conns_per_client) answers 429.
func consulClient(addr string) (*consul.Client, error) {
	consulMu.Lock()
	defer consulMu.Unlock()
	if c, ok := consulClients[addr]; ok {
		return c, nil
	}
	cfg := consul.DefaultConfig()
	cfg.Address = addr
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	consulClients[addr] = c
	return c, nil
}

// Record is one record the Recorder saw.
type Record struct {
	Topic     string
	Key       string
	Value     []byte
	Partition int32
	Offset    int64
	Timestamp time.Time
	// Headers are the record's headers as key=value strings.
	Headers []string
}

// Envelope decodes the record's value as an envelope and its payload into
// v (a pointer to a struct or map).
func (r Record) Envelope(v any) (*envelope.Envelope, error) {
	env, err := envelope.Decode(r.Value)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(env.Payload, v); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// AcceptedAttempt is one registration attempt as its accepted events show
// it. The reducer publishes an attempt's accepted event again until the
// node's ack reaches it (docs/reducer.md, "Accepted resends"), so an
// attempt has one copy or more; every copy carries the attempt's
// correlation id and ack deadline, and only emitted_at and causation_id
// differ.
type AcceptedAttempt struct {
	CorrelationID uuid.UUID
	AckDeadline   time.Time
	// Copies is how many accepted events of the attempt were recorded.
	Copies int
	// First and Last are the earliest and latest emitted_at of the copies.
	First, Last time.Time
}

// AcceptedAttempts decodes recs, records of the accepted topic, each the
// bare ModelNodeRegistrationAccepted, and groups them by attempt
// (correlation id), in the order of their first copy. A record that does
// not decode, names another node than its key, or disagrees with an earlier
// copy of its attempt on the ack deadline is an error.
func AcceptedAttempts(recs []Record) ([]AcceptedAttempt, error) {
	var out []AcceptedAttempt
	at := map[uuid.UUID]int{}
	for _, r := range recs {
		m, err := registration.DecodeRegistrationAccepted(r.Value)
		if err != nil {
			return nil, fmt.Errorf("accepted event %s[%d]@%d is not a bare ModelNodeRegistrationAccepted: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if m.EntityID != m.NodeID || m.NodeID.String() != r.Key {
			return nil, fmt.Errorf("accepted event keyed %s names entity %s, node %s", r.Key, m.EntityID, m.NodeID)
		}
		i, seen := at[m.CorrelationID]
		if !seen {
			i = len(out)
			at[m.CorrelationID] = i
			out = append(out, AcceptedAttempt{CorrelationID: m.CorrelationID, AckDeadline: m.AckDeadline.Time,
				First: m.EmittedAt.Time, Last: m.EmittedAt.Time})
		}
		a := &out[i]
		if !m.AckDeadline.Equal(a.AckDeadline) {
			return nil, fmt.Errorf("accepted events of attempt %s disagree on the ack deadline: %s and %s", a.CorrelationID, a.AckDeadline, m.AckDeadline)
		}
		a.Copies++
		if m.EmittedAt.Before(a.First) {
			a.First = m.EmittedAt.Time
		}
		if m.EmittedAt.After(a.Last) {
			a.Last = m.EmittedAt.Time
		}
	}
	return out, nil
}

// Recorder keeps every committed record of some topics, from where it
// was positioned when created, for the tests to count and inspect.
type Recorder struct {
	client   sarama.Client
	consumer sarama.Consumer
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu   sync.Mutex
	recs []Record
}

// NewRecorder starts recording topics from offset (sarama.OffsetOldest or
// sarama.OffsetNewest), reading only committed transactional records. The
// names are canonical: it reads them on Namespace, and Record.Topic is the
// canonical name again.
func NewRecorder(brokers []string, offset int64, topicNames ...string) (*Recorder, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "e2e-recorder"})
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return nil, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{client: client, consumer: consumer, cancel: cancel}
	for _, t := range topicNames {
		t := Namespace.Physical(t)
		parts, err := client.Partitions(t)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("recorder: %s: %w", t, err)
		}
		for _, p := range parts {
			pc, err := consumer.ConsumePartition(t, p, offset)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("recorder: %s/%d: %w", t, p, err)
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer pc.AsyncClose()
				for {
					select {
					case m, ok := <-pc.Messages():
						if !ok {
							return
						}
						rec := Record{Topic: Namespace.Canonical(m.Topic), Key: string(m.Key), Value: m.Value,
							Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp}
						for _, h := range m.Headers {
							rec.Headers = append(rec.Headers, string(h.Key)+"="+string(h.Value))
						}
						r.mu.Lock()
						r.recs = append(r.recs, rec)
						r.mu.Unlock()
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	return r, nil
}

// Close stops recording.
func (r *Recorder) Close() {
	r.cancel()
	r.wg.Wait()
	r.consumer.Close()
	r.client.Close()
}

// Records returns the records of topic (all topics when empty) whose key
// is one of keys (any key when none), in arrival order.
func (r *Recorder) Records(topic string, keys ...string) []Record {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.recs {
		if (topic == "" || rec.Topic == topic) && (len(want) == 0 || want[rec.Key]) {
			out = append(out, rec)
		}
	}
	return out
}

// Eventually polls cond every 200 ms until it returns nil or timeout
// passes, and returns its last error. Each call gets its own short
// deadline, so the error reported is the condition's, not the timeout's.
func Eventually(ctx context.Context, timeout time.Duration, cond func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		last = cond(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w (last: %v)", timeout, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
