// Package catalog is the orchestrator's topic catalog (spec 2.9, 9.2): the
// taxonomy registry (pkg/topics) joined with what the broker actually has,
// with publisher and subscriber counts from the contracts under
// ONEX_CONTRACTS_DIR. It answers topic-catalog queries and, on the tick
// leader, announces changes on topic-catalog-changed.
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
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// Warning tokens of spec 9.2 used here.
const (
	WarnInternalError = "internal_error"
	WarnInvalidQuery  = "invalid_query_payload"
	WarnParseError    = "parse_error:"
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
	Send     Sender
	// Client reads the last change notice when leadership begins.
	Client     sarama.Client
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Catalog is one computed catalog.
type Catalog struct {
	Version uint32
	// Entries are sorted by topic_suffix.
	Entries []registration.TopicCatalogEntry
	// Present lists the registry topics that exist on the broker, sorted:
	// the set whose changes are announced.
	Present []string
	// NodeCount is the number of contracts counted.
	NodeCount int
	Warnings  []string
	Computed  time.Time
}

// Service computes, serves and announces the catalog.
type Service struct {
	cfg Config
	now func() time.Time

	mu  sync.Mutex
	cur *Catalog

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
	states, err := s.cfg.Describe(ctx)
	if err != nil {
		s.computes.WithLabelValues("error").Inc()
		return nil, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "describe_topics"}, "topic catalog")
	}
	pubs, subs, contracts, warnings := scanContracts(s.cfg.ContractsDir)
	c := build(s.cfg.Specs, states, pubs, subs, contracts, warnings, s.now())
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	s.version.Set(float64(c.Version))
	s.computes.WithLabelValues("ok").Inc()
	return c, nil
}

// Current returns the cached catalog while it is younger than Refresh, else
// computes a new one.
func (s *Service) Current(ctx context.Context) (*Catalog, error) {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c != nil && s.now().Sub(c.Computed) < s.cfg.Refresh {
		return c, nil
	}
	return s.Compute(ctx)
}

func build(specs []topics.Spec, states []topics.TopicState, pubs, subs map[string]int, contracts int, warnings []string, now time.Time) *Catalog {
	broker := map[string]topics.TopicState{}
	for _, st := range states {
		broker[st.Name] = st
	}
	resolved := topics.Resolve(specs, topics.Options{})
	sort.Slice(resolved, func(i, j int) bool { return resolved[i].Name < resolved[j].Name })
	c := &Catalog{NodeCount: contracts, Warnings: append([]string{}, warnings...), Computed: now, Entries: []registration.TopicCatalogEntry{}, Present: []string{}}
	h := fnv.New32a()
	for _, sp := range resolved {
		st, present := broker[sp.Name]
		e := registration.TopicCatalogEntry{TopicSuffix: sp.Name, TopicName: sp.Name, Description: truncate(sp.Description, 1024),
			Partitions: int(sp.Partitions), Tags: []string{"kind:" + string(sp.Kind)}}
		if present {
			// A topic that does not exist carries no traffic, whatever the
			// contracts say, so only provisioned topics can be active.
			e.Partitions = int(st.Partitions)
			e.PublisherCount, e.SubscriberCount = pubs[sp.Name], subs[sp.Name]
			e.Tags = append(e.Tags, "provisioned")
			if strings.Contains(st.Configs[topics.ConfigCleanupPolicy], "compact") {
				e.Tags = append(e.Tags, "compacted")
			}
			c.Present = append(c.Present, sp.Name)
		} else {
			e.Tags = append(e.Tags, "not_provisioned")
		}
		e.IsActive = e.PublisherCount > 0 || e.SubscriberCount > 0
		c.Entries = append(c.Entries, e)
		fmt.Fprintf(h, "%s|%d|%d|%d|%s\n", e.TopicSuffix, e.Partitions, e.PublisherCount, e.SubscriberCount, strings.Join(e.Tags, ","))
	}
	fmt.Fprintf(h, "contracts=%d|warnings=%s\n", contracts, strings.Join(warnings, ","))
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

// Handle answers one topic-catalog query on the response topic, keyed by
// the response correlation id = the query envelope's correlation id (the
// payload's when the envelope has none), as the Python handler does. Every
// query gets exactly one response: an invalid one an empty response with the
// invalid_query_payload warning (and the record is then dead-lettered as a
// content error), an internal failure an empty response with internal_error.
func (s *Service) Handle(ctx context.Context, msg *bus.Message) error {
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
		if corr != uuid.Nil {
			if rerr := s.respond(ctx, corr, nil, []string{WarnInvalidQuery}); rerr != nil {
				return rerr
			}
		}
		return infraerr.ContentWrap("invalid topic catalog query", err)
	}
	c, cerr := s.Current(ctx)
	if cerr != nil {
		log.Warn("topic catalog unavailable; answering empty", "error", infraerr.SanitizeError(cerr))
		s.queries.WithLabelValues("degraded").Inc()
		return s.respond(ctx, corr, nil, []string{WarnInternalError})
	}
	entries := Filter(c, q)
	if err := s.respond(ctx, corr, &registration.TopicCatalogResponse{Topics: entries, CatalogVersion: int(c.Version),
		NodeCount: c.NodeCount, Warnings: c.Warnings}, nil); err != nil {
		return err
	}
	s.queries.WithLabelValues("answered").Inc()
	log.Info("topic catalog query answered", "client_id", q.ClientID, "topics", len(entries), "catalog_version", c.Version)
	return nil
}

// respond publishes a response; r nil means an empty response (version 0)
// with warnings.
func (s *Service) respond(ctx context.Context, corr uuid.UUID, r *registration.TopicCatalogResponse, warnings []string) error {
	if r == nil {
		r = &registration.TopicCatalogResponse{Topics: []registration.TopicCatalogEntry{}, Warnings: warnings}
	}
	r.CorrelationID, r.GeneratedAt, r.SchemaVersion = corr, pipeline.T(s.now()), 1
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	id := envelope.DeterministicID(corr, "ModelTopicCatalogResponse", 0)
	return s.publish(ctx, s.cfg.ResponseTopic, corr, id, r, "ModelTopicCatalogResponse", r.Validate)
}

func (s *Service) publish(ctx context.Context, topic string, corr, id uuid.UUID, payload any, class string, validate func() error) error {
	ictx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "publish", Target: topic, CorrelationID: corr}
	if err := validate(); err != nil {
		return infraerr.Configuration(ictx, class, err)
	}
	b, err := wire.Envelope(payload, topic, id, corr, class, "event")
	if err != nil {
		return infraerr.Configuration(ictx, class, err)
	}
	if err := s.cfg.Send.Send(ctx, wire.Message(topic, corr.String(), b, s.cfg.Source, corr)); err != nil {
		return infraerr.Wrap(err, ictx, class)
	}
	return nil
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
	for {
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
		}
	}
}

func (s *Service) announce(ctx context.Context, c *Catalog, added, removed []string, reason string) error {
	corr := uuid.NewSHA1(catalogNamespace, fmt.Appendf(nil, "catalog-changed:%d", c.Version))
	ev := &registration.TopicCatalogChanged{CorrelationID: corr, CatalogVersion: int(c.Version),
		TopicsAdded: slices.Clone(added), TopicsRemoved: slices.Clone(removed), TriggerReason: reason,
		ChangedAt: pipeline.T(s.now()), SchemaVersion: 1}
	id := envelope.DeterministicID(corr, "ModelTopicCatalogChanged", 0)
	if err := s.publish(ctx, s.cfg.ChangedTopic, corr, id, ev, "ModelTopicCatalogChanged", ev.Validate); err != nil {
		return err
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

// diff returns the names in cur and not in prev, and in prev and not in cur.
func diff(prev, cur []string) (added, removed []string) {
	added, removed = []string{}, []string{}
	for _, t := range cur {
		if !slices.Contains(prev, t) {
			added = append(added, t)
		}
	}
	for _, t := range prev {
		if !slices.Contains(cur, t) {
			removed = append(removed, t)
		}
	}
	return added, removed
}
