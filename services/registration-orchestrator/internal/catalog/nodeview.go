package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/compacted"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// Outcomes of a node-topics record (onex_orchestrator_node_topics_records_total).
const (
	RecordApplied = "applied" // a node's topics stored (or, with none left valid, removed)
	RecordDeleted = "deleted" // a tombstone removed a node
	RecordInvalid = "invalid" // not decodable, or not about its key's node: the key declares nothing
	RecordSkipped = "skipped" // a tombstone whose key is no node id (a writer's marker)
)

// NodeViewConfig wires a NodeView.
type NodeViewConfig struct {
	// Topic is the compacted node-topics topic (topics.NodeTopics).
	Topic string
	// CatchUpIdle is how long a partition must stay quiet before the view
	// asks the broker whether it is read to its end offset
	// (compacted.Reader.Settle): the reducer writes the topic in
	// transactions, and the commit markers at the end of a partition are
	// never delivered.
	CatchUpIdle time.Duration
	Log         *slog.Logger
	Registerer  prometheus.Registerer
}

// NodeView is every replica's copy of the node-topics table: node id → the
// topics the node declares while it is ACTIVE. It reads every partition
// from the oldest offset and keeps following them without a consumer
// group (each replica needs the whole table, not a share of it): the
// latest record of a key wins, a tombstone deletes. It keeps the
// per-topic publisher and subscriber counts up to date as records arrive,
// so a catalog computation copies counts instead of walking every node.
// It is safe for concurrent use.
type NodeView struct {
	cfg NodeViewConfig

	mu    sync.RWMutex
	nodes map[uuid.UUID]nodeDecl
	pubs  map[string]int
	subs  map[string]int
	// gen counts the changes of the counts (and the end of the restore),
	// so the catalog can tell whether its cached computation is stale.
	gen uint64
	// next is each partition's next offset to read, kept across restarts
	// of the partition consumers so a restart resumes instead of replaying.
	next map[int32]int64

	ready   chan struct{}
	once    sync.Once
	changed chan struct{}

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int

	size         prometheus.Gauge
	records      *prometheus.CounterVec
	namesDropped prometheus.Counter
}

// nodeDecl is what the view keeps of one node: its valid topic names, each
// list sorted without repeats.
type nodeDecl struct {
	subscribe, publish []string
}

// NewNodeView returns an empty view; Run fills it.
func NewNodeView(cfg NodeViewConfig) *NodeView {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CatchUpIdle <= 0 {
		cfg.CatchUpIdle = 300 * time.Millisecond
	}
	v := &NodeView{cfg: cfg, nodes: map[uuid.UUID]nodeDecl{}, pubs: map[string]int{}, subs: map[string]int{}, next: map[int32]int64{},
		ready: make(chan struct{}), changed: make(chan struct{}, 1),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onex_orchestrator_node_topics_nodes",
			Help: "ACTIVE nodes in the orchestrator's view of the node-topics table that declare at least one topic."}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_node_topics_records_total",
			Help: "Node-topics records read, by outcome (applied, deleted, invalid: the key counts as declaring nothing, skipped: a tombstone whose key is no node id)."},
			[]string{"outcome"}),
		namesDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_orchestrator_node_topics_names_ignored_total",
			Help: "Topic names declared by nodes that are not valid Kafka topic names, left out of the catalog."}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(v.size, v.records, v.namesDropped)
	}
	return v
}

// Usage is how many declare each topic: publishers and subscribers per topic
// name.
type Usage struct {
	Pubs, Subs map[string]int
}

// NodeUsage is a copy of the view's counts.
type NodeUsage struct {
	Usage
	// Nodes is the number of nodes declaring at least one topic.
	Nodes int
	// Generation identifies the view's state (see NodeView.Generation).
	Generation uint64
	// Complete is false until the view has read the table to the end
	// offsets it found at start.
	Complete bool
}

// Usage returns a copy of the counts.
func (v *NodeView) Usage() NodeUsage {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return NodeUsage{Usage: Usage{Pubs: maps.Clone(v.pubs), Subs: maps.Clone(v.subs)}, Nodes: len(v.nodes), Generation: v.gen,
		Complete: v.CaughtUp()}
}

// Generation changes whenever the counts change, and once when the view has
// caught up.
func (v *NodeView) Generation() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.gen
}

// Changes receives a value after the view changed (coalesced: one pending
// signal at most). The catalog's change watch recomputes on it.
func (v *NodeView) Changes() <-chan struct{} { return v.changed }

// Ready is closed once the view has read every partition to the end offset
// it found when it started.
func (v *NodeView) Ready() <-chan struct{} { return v.ready }

// CaughtUp reports whether Ready is closed.
func (v *NodeView) CaughtUp() bool {
	select {
	case <-v.ready:
		return true
	default:
		return false
	}
}

// kafkaName is Kafka's topic name rule (spec 3.1): a name a node declares
// that breaks it cannot be a topic, and is left out of the catalog.
var kafkaName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func validTopicName(s string) bool { return kafkaName.MatchString(s) && s != "." && s != ".." }

// Apply folds one record into the view: key and value as read from the
// topic. A record that does not decode, or whose node_id is not its key,
// is reported with an error and counts as declaring nothing: the latest
// record of a key is all a replica that starts later would find after
// compaction, so every replica must read the same from it. It is state,
// not a command: there is nobody to dead-letter to, and the node's next
// record repairs it. Topic names that are not valid Kafka names are left
// out of the node's lists.
func (v *NodeView) Apply(key, value []byte) (outcome string, err error) {
	rec, derr := pipeline.DecodeNodeTopics(value)
	id, kerr := uuid.ParseBytes(key)
	switch {
	case kerr != nil && rec == nil && derr == nil:
		return RecordSkipped, nil
	case kerr != nil:
		return RecordInvalid, infraerr.Content("key", "not a node id")
	case derr != nil:
		outcome, err = RecordInvalid, infraerr.ContentWrap("node topics record", derr)
		rec = nil
	case rec != nil && rec.NodeID != id:
		outcome, err = RecordInvalid, infraerr.Content("node_id", "differs from the record key")
		rec = nil
	}
	var decl nodeDecl
	dropped := 0
	if rec != nil {
		decl.subscribe, dropped = cleanTopics(rec.SubscribeTopics)
		var d int
		decl.publish, d = cleanTopics(rec.PublishTopics)
		dropped += d
	}
	if dropped > 0 {
		v.namesDropped.Add(float64(dropped))
	}
	v.mu.Lock()
	changed := v.putLocked(id, decl)
	if changed {
		v.gen++
	}
	v.size.Set(float64(len(v.nodes)))
	v.mu.Unlock()
	if changed {
		v.signal()
	}
	if err != nil {
		return outcome, err
	}
	if rec == nil {
		return RecordDeleted, nil
	}
	if dropped > 0 {
		return RecordApplied, infraerr.Content("subscribe_topics/publish_topics", fmt.Sprintf("%d names are not valid topic names and are left out", dropped))
	}
	return RecordApplied, nil
}

// cleanTopics returns the valid names of list, sorted without repeats, and
// how many invalid ones it left out.
func cleanTopics(list []string) ([]string, int) {
	out := make([]string, 0, len(list))
	dropped := 0
	for _, t := range list {
		if !validTopicName(t) {
			dropped++
			continue
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), dropped
}

// putLocked replaces the node's declaration (an empty one removes the node)
// and adjusts the counts; it reports whether anything changed.
func (v *NodeView) putLocked(id uuid.UUID, d nodeDecl) bool {
	old, had := v.nodes[id]
	empty := len(d.subscribe) == 0 && len(d.publish) == 0
	if had && slices.Equal(old.subscribe, d.subscribe) && slices.Equal(old.publish, d.publish) {
		return false
	}
	if !had && empty {
		return false
	}
	if had {
		count(v.subs, old.subscribe, -1)
		count(v.pubs, old.publish, -1)
	}
	if empty {
		delete(v.nodes, id)
		return true
	}
	v.nodes[id] = d
	count(v.subs, d.subscribe, 1)
	count(v.pubs, d.publish, 1)
	return true
}

func count(m map[string]int, names []string, delta int) {
	for _, t := range names {
		if m[t] += delta; m[t] <= 0 {
			delete(m, t)
		}
	}
}

func (v *NodeView) signal() {
	select {
	case v.changed <- struct{}{}:
	default:
	}
}

// markReady closes Ready. The generation changes with it, under the same
// lock, so a catalog computed before (incomplete) is recomputed and Usage
// never reports the new generation as incomplete.
func (v *NodeView) markReady() {
	v.once.Do(func() {
		v.mu.Lock()
		v.gen++
		close(v.ready)
		v.mu.Unlock()
		v.signal()
	})
}

// Run follows the topic until ctx ends, restarting the partition consumers
// after a failure (each resumes where it stopped). client must be
// configured read_committed: the reducer writes the table in transactions,
// and an aborted record must not count. Run is owned by the service's Run
// and returns once every goroutine it started has ended.
func (v *NodeView) Run(ctx context.Context, client sarama.Client) {
	log := v.cfg.Log.With("component", "node_topics_view", "topic", v.cfg.Topic)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := v.follow(ctx, client, log)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("node topics view restarting", "error", infraerr.SanitizeError(err))
		delay := retry.Policy{MaxAttempts: 10, Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.25}.Delay(min(attempt, 10), 0.5)
		if !retry.Sleep(ctx, delay) {
			return
		}
	}
}

// follow consumes every partition until ctx ends (nil) or one partition
// fails (its error, after every partition goroutine ended). Each partition
// resumes after the last record the view applied; the first follow marks
// the view ready once every partition is read to the end it had at start.
func (v *NodeView) follow(ctx context.Context, client sarama.Client, log *slog.Logger) error {
	topic := v.cfg.Topic
	if err := client.RefreshMetadata(topic); err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata", Target: topic}, "node topics view")
	}
	rd := compacted.Reader{Client: client, Topic: topic, Settle: v.cfg.CatchUpIdle, Operation: "node_topics_view",
		FetchErrors: func(cerr *sarama.ConsumerError) {
			// sarama keeps retrying the fetch; the error is only reported.
			log.Warn("node topics fetch failed", "partition", cerr.Partition, "error", infraerr.SanitizeError(cerr.Err))
		}}
	// Retention or compaction may have removed what came after the last
	// record read: the reader then starts over from the oldest, and the
	// latest records still win.
	from := func(p int32) int64 {
		v.mu.RLock()
		defer v.mu.RUnlock()
		if next, ok := v.next[p]; ok {
			return next
		}
		return sarama.OffsetOldest
	}
	var caughtUp func()
	if !v.CaughtUp() {
		caughtUp = func() {
			u := v.Usage()
			log.Info("node topics view caught up", "nodes", u.Nodes, "topics", len(union(u.Pubs, u.Subs)))
			v.markReady()
		}
	}
	return rd.FollowTopic(ctx, from, caughtUp, func(m *sarama.ConsumerMessage) error {
		outcome, err := v.Apply(m.Key, m.Value)
		v.records.WithLabelValues(outcome).Inc()
		if err != nil {
			v.logBad(log, m, outcome, err)
		}
		v.mu.Lock()
		v.next[m.Partition] = m.Offset + 1
		v.mu.Unlock()
		return nil
	})
}

// logBad logs a record the view could not take in full, at most one line per
// 10 seconds (a table full of bad records must not flood the log); the
// metric counts every one.
func (v *NodeView) logBad(log *slog.Logger, m *sarama.ConsumerMessage, outcome string, err error) {
	v.logMu.Lock()
	now := time.Now()
	if now.Sub(v.lastLog) < 10*time.Second {
		v.suppressed++
		v.logMu.Unlock()
		return
	}
	suppressed := v.suppressed
	v.lastLog, v.suppressed = now, 0
	v.logMu.Unlock()
	log.Warn("node topics record not taken in full", "partition", m.Partition, "offset", m.Offset, "outcome", outcome,
		"error", infraerr.SanitizeError(err), "suppressed_since_last", suppressed)
}

// union returns the names that are keys of a or b, sorted.
func union(a, b map[string]int) []string {
	out := make([]string, 0, len(a)+len(b))
	for t := range a {
		out = append(out, t)
	}
	for t := range b {
		if _, ok := a[t]; !ok {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}
