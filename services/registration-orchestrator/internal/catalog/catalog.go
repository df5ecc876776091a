// Package catalog is the orchestrator's topic catalog (spec 2.9, 9.2): the
// taxonomy registry (pkg/topics) joined with what the broker actually has,
// with publisher and subscriber counts from the contracts under
// ONEX_CONTRACTS_DIR and from the topics ACTIVE nodes declare (NodeView,
// the reducer's node-topics table); a topic only nodes declare is an entry
// of its own. It answers topic-catalog queries and, on the tick leader,
// announces changes on topic-catalog-changed.
//
// catalog_version is a stable hash of the catalog's content (FNV-1a, 32
// bits, never 0): every replica computes the same version for the same
// catalog, across restarts, without any state to persist. Versions are
// therefore not ordered; clients compare them for equality only.
package catalog

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Warning tokens of spec 9.2 used here.
const (
	WarnInternalError = "internal_error"
	WarnInvalidQuery  = "invalid_query_payload"
	WarnParseError    = "parse_error:"
	// WarnPartialNodeData: the node-topics view had not read its table to
	// the end when the catalog was computed (spec 9.2's token for a
	// catalog missing some nodes' data).
	WarnPartialNodeData = "partial_node_data"
)

// Tags of a topic only nodes declare.
const (
	// TagNodeSource marks an entry that is not in the registry: it exists
	// in the catalog because ACTIVE nodes declare it.
	TagNodeSource = "source:node"
	// nodeTopicDescription is such an entry's description.
	nodeTopicDescription = "Declared in the event_bus of ACTIVE nodes; not in the platform topic registry."
)

// Sender publishes records and returns once the broker acknowledged them.
type Sender interface {
	Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error
}

// Describer lists the broker's topics (topics.Describe over an admin).
type Describer func(ctx context.Context) ([]topics.TopicState, error)

// Config wires a Service.
type Config struct {
	// Specs is the registry the catalog lists (topics.Platform()).
	Specs []topics.Spec
	// ContractsDir holds <service>/contract.yaml files whose event_bus
	// lists give the publisher and subscriber counts.
	ContractsDir string
	// ResponseTopic and ChangedTopic receive responses and change notices.
	ResponseTopic, ChangedTopic string
	// Refresh is how old a computed catalog may get before it is recomputed,
	// and the leader's change-watch period.
	Refresh  time.Duration
	Source   string
	Describe Describer
	// Send publishes the change notices (responses to queries are the
	// consumer's records, sent by its runner).
	Send Sender
	// Client reads the last change notice when leadership begins.
	Client sarama.Client
	// Nodes, when set, adds the topics ACTIVE nodes declare.
	Nodes *NodeView
	// NodesWait bounds how long the first computation waits for Nodes to
	// read its table to the end (then it is served with the
	// partial_node_data warning until the view has caught up).
	NodesWait time.Duration
	// MinRecompute is the shortest time between two computations caused by
	// node changes (default 1 s): a fleet starting changes the view
	// hundreds of times a second.
	MinRecompute time.Duration
	Log          *slog.Logger
	Registerer   prometheus.Registerer
}

// Catalog is one computed catalog.
type Catalog struct {
	Version uint32
	// Entries are sorted by topic_suffix.
	Entries []registration.TopicCatalogEntry
	// Present lists the registry topics that exist on the broker and the
	// topics ACTIVE nodes declare, sorted: the set whose changes are
	// announced.
	Present []string
	// NodeCount is the number of sources counted: contracts read plus
	// ACTIVE nodes declaring topics.
	NodeCount int
	Warnings  []string
	Computed  time.Time
	// nodesGen is the node view's generation the catalog was computed from.
	nodesGen uint64
}

// Service computes, serves and announces the catalog.
type Service struct {
	cfg Config
	now func() time.Time

	mu  sync.Mutex
	cur *Catalog
	// waited is set once a computation has waited for the node view.
	waited atomic.Bool

	version  prometheus.Gauge
	queries  *prometheus.CounterVec
	changes  prometheus.Counter
	computes *prometheus.CounterVec
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MinRecompute <= 0 {
		cfg.MinRecompute = time.Second
	}
	s := &Service{cfg: cfg, now: time.Now,
		version: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onex_orchestrator_catalog_version",
			Help: "catalog_version of the topic catalog last computed (a content hash)."}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_catalog_queries_total",
			Help: "Topic catalog queries, by outcome (answered, invalid, degraded: answered empty after an internal error)."}, []string{"outcome"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_orchestrator_catalog_changes_total",
			Help: "topic-catalog-changed notices published."}),
		computes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_orchestrator_catalog_computes_total",
			Help: "Catalog computations, by outcome (ok, error)."}, []string{"outcome"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.version, s.queries, s.changes, s.computes)
	}
	return s
}

// Compute builds the catalog now and caches it.
func (s *Service) Compute(ctx context.Context) (*Catalog, error) {
	nodes := s.nodeUsage(ctx)
	states, err := s.cfg.Describe(ctx)
	if err != nil {
		s.computes.WithLabelValues("error").Inc()
		return nil, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "describe_topics"}, "topic catalog")
	}
	pubs, subs, contracts, warnings := scanContracts(s.cfg.ContractsDir)
	if !nodes.Complete {
		warnings = append(warnings, WarnPartialNodeData)
	}
	c := build(s.cfg.Specs, states, sources{contracts: Usage{Pubs: pubs, Subs: subs}, contractCount: contracts, warnings: warnings,
		nodes: nodes.Usage, nodeCount: nodes.Nodes}, s.now())
	c.nodesGen = nodes.Generation
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	s.version.Set(float64(c.Version))
	s.computes.WithLabelValues("ok").Inc()
	return c, nil
}

// Current returns the cached catalog while it is younger than Refresh and
// the node view has not changed since (a change makes it stale once it is
// MinRecompute old), else computes a new one.
func (s *Service) Current(ctx context.Context) (*Catalog, error) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c != nil {
		age := s.now().Sub(c.Computed)
		stale := age >= s.cfg.Refresh ||
			(s.cfg.Nodes != nil && age >= s.cfg.MinRecompute && s.cfg.Nodes.Generation() != c.nodesGen)
		if !stale {
			return c, nil
		}
	}
	return s.Compute(ctx)
}

// nodeUsage returns the node view's counts. The first call waits, up to
// NodesWait, for the view to read its table to the end, so the first
// catalog a replica serves or announces has every ACTIVE node's topics.
func (s *Service) nodeUsage(ctx context.Context) NodeUsage {
	v := s.cfg.Nodes
	if v == nil {
		return NodeUsage{Complete: true}
	}
	if !s.waited.Load() && !v.CaughtUp() {
		t := time.NewTimer(s.cfg.NodesWait)
		select {
		case <-v.Ready():
		case <-t.C:
			s.cfg.Log.Warn("node topics view not caught up; the catalog lacks some nodes' topics until it is",
				"component", "topic_catalog", "waited", s.cfg.NodesWait.String())
		case <-ctx.Done():
		}
		t.Stop()
	}
	s.waited.Store(true)
	return v.Usage()
}

// sources are what a catalog counts besides the registry and the broker.
type sources struct {
	// contracts counts the contracts publishing and subscribing to each
	// topic; contractCount is how many were read, warnings their problems.
	contracts     Usage
	contractCount int
	warnings      []string
	// nodes counts the ACTIVE nodes declaring each topic; nodeCount is how
	// many nodes declare any.
	nodes     Usage
	nodeCount int
}

// build computes a catalog. A registry topic's counts are the contracts'
// plus the ACTIVE nodes' declaring it, and only while it exists on the
// broker; a topic only nodes declare is listed on its own (tag
// source:node) with the nodes' counts, the broker's partitions when it
// exists, else 1 (the response model requires partitions >= 1; spec 9.2's
// node-sourced request path reports 1 too).
func build(specs []topics.Spec, states []topics.TopicState, src sources, now time.Time) *Catalog {
	broker := map[string]topics.TopicState{}
	for _, st := range states {
		broker[st.Name] = st
	}
	provisioned := func(e *registration.TopicCatalogEntry, st topics.TopicState) {
		e.Partitions = int(st.Partitions)
		e.Tags = append(e.Tags, "provisioned")
		if strings.Contains(st.Configs[topics.ConfigCleanupPolicy], "compact") {
			e.Tags = append(e.Tags, "compacted")
		}
	}
	resolved := topics.Resolve(specs, topics.Options{})
	c := &Catalog{NodeCount: src.contractCount + src.nodeCount, Warnings: append([]string{}, src.warnings...), Computed: now,
		Entries: []registration.TopicCatalogEntry{}, Present: []string{}}
	registry := make(map[string]bool, len(resolved))
	for _, sp := range resolved {
		registry[sp.Name] = true
		st, present := broker[sp.Name]
		e := registration.TopicCatalogEntry{TopicSuffix: sp.Name, TopicName: sp.Name, Description: truncate(sp.Description, 1024),
			Partitions: int(sp.Partitions), Tags: []string{"kind:" + string(sp.Kind)}}
		if present {
			// A topic that does not exist carries no traffic, whatever the
			// contracts and nodes say, so only provisioned topics can be
			// active.
			provisioned(&e, st)
			e.PublisherCount = src.contracts.Pubs[sp.Name] + src.nodes.Pubs[sp.Name]
			e.SubscriberCount = src.contracts.Subs[sp.Name] + src.nodes.Subs[sp.Name]
			c.Present = append(c.Present, sp.Name)
		} else {
			e.Tags = append(e.Tags, "not_provisioned")
		}
		e.IsActive = e.PublisherCount > 0 || e.SubscriberCount > 0
		c.Entries = append(c.Entries, e)
	}
	// Node names are valid Kafka topic names (NodeView), at most 249
	// characters: within the entry's 512.
	for _, name := range union(src.nodes.Pubs, src.nodes.Subs) {
		if registry[name] {
			continue
		}
		e := registration.TopicCatalogEntry{TopicSuffix: name, TopicName: name, Description: nodeTopicDescription, Partitions: 1,
			PublisherCount: src.nodes.Pubs[name], SubscriberCount: src.nodes.Subs[name], Tags: []string{}}
		if k, ok := topics.KindOf(name); ok {
			e.Tags = append(e.Tags, "kind:"+string(k))
		}
		e.Tags = append(e.Tags, TagNodeSource)
		if st, present := broker[name]; present && st.Partitions > 0 {
			provisioned(&e, st)
		} else {
			e.Tags = append(e.Tags, "not_provisioned")
		}
		e.IsActive = e.PublisherCount > 0 || e.SubscriberCount > 0
		c.Entries = append(c.Entries, e)
		c.Present = append(c.Present, name)
	}
	slices.SortFunc(c.Entries, func(a, b registration.TopicCatalogEntry) int { return strings.Compare(a.TopicSuffix, b.TopicSuffix) })
	slices.Sort(c.Present)
	h := fnv.New32a()
	for _, e := range c.Entries {
		fmt.Fprintf(h, "%s|%d|%d|%d|%s\n", e.TopicSuffix, e.Partitions, e.PublisherCount, e.SubscriberCount, strings.Join(e.Tags, ","))
	}
	fmt.Fprintf(h, "contracts=%d|warnings=%s\n", src.contractCount, strings.Join(src.warnings, ","))
	// Only when nodes count: a catalog without any keeps the version it had
	// before nodes were counted.
	if src.nodeCount > 0 {
		fmt.Fprintf(h, "nodes=%d\n", src.nodeCount)
	}
	c.Version = h.Sum32()
	if c.Version == 0 {
		c.Version = 1 // 0 is the protocol's error/empty sentinel
	}
	return c
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// scanContracts counts, per topic, the contracts that publish and subscribe
// to it (the Python contract-scan source, spec 9.2). A contract that does not
// decode (pkg/contract, strict) yields a parse_error:<path> warning and is
// skipped; validity beyond decoding is each service's start-up check.
func scanContracts(dir string) (pubs, subs map[string]int, n int, warnings []string) {
	pubs, subs = map[string]int{}, map[string]int{}
	if dir == "" {
		return pubs, subs, 0, nil
	}
	files, _ := filepath.Glob(contract.Path(dir, "*"))
	sort.Strings(files)
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		c, err := contract.ReadFile(f)
		if err != nil {
			warnings = append(warnings, WarnParseError+rel)
			continue
		}
		n++
		seen := map[string]bool{}
		for _, t := range c.Publish() {
			if !seen["p"+t] {
				seen["p"+t] = true
				pubs[t]++
			}
		}
		for _, t := range c.Subscribe() {
			if !seen["s"+t] {
				seen["s"+t] = true
				subs[t]++
			}
		}
	}
	return pubs, subs, n, warnings
}

// Filter returns the entries a query asks for: topic_pattern is an fnmatch
// glob on topic_suffix (its alphabet has no '/' or '[', where path.Match
// and fnmatch differ); inactive topics only when include_inactive.
func Filter(c *Catalog, q *registration.TopicCatalogQuery) []registration.TopicCatalogEntry {
	out := []registration.TopicCatalogEntry{}
	for _, e := range c.Entries {
		if !q.IncludeInactive && !e.IsActive {
			continue
		}
		if q.TopicPattern != nil && *q.TopicPattern != "" {
			if ok, err := path.Match(*q.TopicPattern, e.TopicSuffix); err != nil || !ok {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// Handle answers topic-catalog queries (bus.Handle): one response record
// per query for the response topic, keyed by the response correlation id =
// the query envelope's correlation id (the payload's when the envelope has
// none), as the Python handler does. The runner sends them before it
// commits the queries. Every query gets exactly one response: an invalid
// one an empty response with the invalid_query_payload warning, and it is
// rejected as a content error (dead-lettered) once the response is sent;
// an internal failure an empty response with internal_error. A query is
// counted when its response is returned, before the send: after a failed
// send, which hands the queries again, it can be counted twice.
func (s *Service) Handle(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	var out bus.Output
	for i, msg := range msgs {
		mctx := ctx
		if len(msgs) > 1 {
			mctx = bus.MessageContext(ctx, msg)
		}
		rec, err := s.answer(mctx, msg)
		if rec != nil {
			out.Records = append(out.Records, rec)
		}
		if err != nil {
			if out.Outcomes == nil {
				out.Outcomes = bus.Outcomes(len(msgs))
			}
			out.Outcomes[i] = bus.Reject(err)
		}
	}
	return out, nil
}

// answer returns the response to one query (nil for an invalid query
// without a correlation id: there is no one to answer) and, for a query
// that must be dead-lettered, why.
func (s *Service) answer(ctx context.Context, msg *bus.Message) (*sarama.ProducerMessage, error) {
	log := observability.Logger(ctx)
	var corr uuid.UUID
	env, err := envelope.Decode(msg.Value)
	var q *registration.TopicCatalogQuery
	if err == nil {
		if env.CorrelationID != nil {
			corr = *env.CorrelationID
		}
		q, err = envelope.DecodePayload(env, registration.DecodeTopicCatalogQuery)
		if err == nil && corr == uuid.Nil {
			corr = q.CorrelationID
		}
	} else if id, ok := envelope.PeekCorrelationID(msg.Value); ok {
		corr = id
	}
	if err != nil {
		s.queries.WithLabelValues("invalid").Inc()
		invalid := infraerr.ContentWrap("invalid topic catalog query", err)
		if corr == uuid.Nil {
			return nil, invalid
		}
		rec, rerr := s.response(corr, nil, []string{WarnInvalidQuery})
		if rerr != nil {
			return nil, rerr
		}
		return rec, invalid
	}
	c, cerr := s.Current(ctx)
	if cerr != nil {
		log.Warn("topic catalog unavailable; answering empty", "error", infraerr.SanitizeError(cerr))
		s.queries.WithLabelValues("degraded").Inc()
		return s.response(corr, nil, []string{WarnInternalError})
	}
	entries := Filter(c, q)
	rec, err := s.response(corr, &registration.TopicCatalogResponse{Topics: entries, CatalogVersion: int(c.Version),
		NodeCount: c.NodeCount, Warnings: c.Warnings}, nil)
	if err != nil {
		return nil, err
	}
	s.queries.WithLabelValues("answered").Inc()
	log.Info("topic catalog query answered", "client_id", q.ClientID, "topics", len(entries), "catalog_version", c.Version)
	return rec, nil
}

// response builds a response record; r nil means an empty response
// (version 0) with warnings. An error is a configuration error (a response
// this code cannot build).
func (s *Service) response(corr uuid.UUID, r *registration.TopicCatalogResponse, warnings []string) (*sarama.ProducerMessage, error) {
	if r == nil {
		r = &registration.TopicCatalogResponse{Topics: []registration.TopicCatalogEntry{}, Warnings: warnings}
	}
	r.CorrelationID, r.GeneratedAt, r.SchemaVersion = corr, pipeline.T(s.now()), 1
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	id := envelope.DeterministicID(corr, "ModelTopicCatalogResponse", 0)
	return s.message(s.cfg.ResponseTopic, corr, id, r, "ModelTopicCatalogResponse", r.Validate)
}

// message builds the record of payload on topic, in an envelope.
func (s *Service) message(topic string, corr, id uuid.UUID, payload any, class string, validate func() error) (*sarama.ProducerMessage, error) {
	ictx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: topic, CorrelationID: corr}
	if err := validate(); err != nil {
		return nil, infraerr.Configuration(ictx, class, err)
	}
	b, err := wire.Envelope(payload, topic, id, corr, class, "event")
	if err != nil {
		return nil, infraerr.Configuration(ictx, class, err)
	}
	return wire.Message(topic, corr.String(), b, s.cfg.Source, corr), nil
}

// catalogNamespace scopes the deterministic correlation ids of change
// notices (one per catalog version).
var catalogNamespace = uuid.MustParse("6f1c2b0e-8f7a-5b8e-9d3c-2a4e6b8c0d1f")

// Watch runs on the tick leader until ctx ends: every Refresh it recomputes
// the catalog and, when the version differs from the last one announced,
// publishes topic-catalog-changed with the topics added and removed (sorted).
// At the start of a leadership the last notice on the topic is the
// reference: if it carries the current version nothing is published;
// otherwise the change happened while nobody watched, the delta is unknown,
// and a resync notice lists every present topic as added.
func (s *Service) Watch(ctx context.Context) {
	log := s.cfg.Log.With("component", "topic_catalog")
	announced, known := s.lastAnnounced(ctx)
	var prev []string
	havePrev := false
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	var nodeChanges <-chan struct{}
	if s.cfg.Nodes != nil {
		nodeChanges = s.cfg.Nodes.Changes()
	}
	for {
		started := time.Now()
		c, err := s.Compute(ctx)
		if err != nil {
			log.Warn("topic catalog not computed", "error", infraerr.SanitizeError(err))
		} else if !known || int(c.Version) != announced {
			added, removed := c.Present, []string{}
			reason := "resync: the catalog changed while no leader was watching"
			if havePrev {
				added, removed = diff(prev, c.Present)
				reason = "topics_changed"
				if len(added) == 0 && len(removed) == 0 {
					reason = "topic_metadata_changed"
				}
			}
			if err := s.announce(ctx, c, added, removed, reason); err != nil {
				log.Warn("topic-catalog-changed not published; retrying next round", "error", infraerr.SanitizeError(err))
			} else {
				log.Info("topic catalog change announced", "catalog_version", c.Version, "added", added, "removed", removed, "reason", reason)
				announced, known, prev, havePrev = int(c.Version), true, c.Present, true
			}
		} else {
			prev, havePrev = c.Present, true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-nodeChanges:
			// Announce a node's topics promptly, but a burst of changes (a
			// fleet starting) costs one computation per MinRecompute, not
			// one per record; the signal is coalesced meanwhile.
			if !retry.Sleep(ctx, time.Until(started.Add(s.cfg.MinRecompute))) {
				return
			}
		}
	}
}

func (s *Service) announce(ctx context.Context, c *Catalog, added, removed []string, reason string) error {
	corr := uuid.NewSHA1(catalogNamespace, fmt.Appendf(nil, "catalog-changed:%d", c.Version))
	ev := &registration.TopicCatalogChanged{CorrelationID: corr, CatalogVersion: int(c.Version),
		TopicsAdded: slices.Clone(added), TopicsRemoved: slices.Clone(removed), TriggerReason: reason,
		ChangedAt: pipeline.T(s.now()), SchemaVersion: 1}
	id := envelope.DeterministicID(corr, "ModelTopicCatalogChanged", 0)
	rec, err := s.message(s.cfg.ChangedTopic, corr, id, ev, "ModelTopicCatalogChanged", ev.Validate)
	if err != nil {
		return err
	}
	// Change notices come from the leader's watch, outside any consumer:
	// the catalog sends them itself.
	if err := s.cfg.Send.Send(ctx, rec); err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: s.cfg.ChangedTopic,
			CorrelationID: corr}, "ModelTopicCatalogChanged")
	}
	s.changes.Inc()
	return nil
}

// lastAnnounced reads the catalog_version of the last change notice.
func (s *Service) lastAnnounced(ctx context.Context) (int, bool) {
	v, ok := wire.LastRecord(ctx, s.cfg.Client, s.cfg.ChangedTopic, 0)
	if !ok {
		return 0, false
	}
	env, err := envelope.Decode(v)
	if err != nil {
		return 0, false
	}
	ev, err := envelope.DecodePayload(env, registration.DecodeTopicCatalogChanged)
	if err != nil || ev.CASFailure {
		return 0, false
	}
	return ev.CatalogVersion, true
}

// diff returns the names in cur and not in prev, and in prev and not in cur,
// in the order of their lists.
func diff(prev, cur []string) (added, removed []string) {
	added, removed = []string{}, []string{}
	in := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, t := range list {
			m[t] = true
		}
		return m
	}
	p, c := in(prev), in(cur)
	for _, t := range cur {
		if !p[t] {
			added = append(added, t)
		}
	}
	for _, t := range prev {
		if !c[t] {
			removed = append(removed, t)
		}
	}
	return added, removed
}
