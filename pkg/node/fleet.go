package node

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

var errFleetClosed = errors.New("node: fleet stopped")

// DefaultHeartbeatInterval is the spec's node heartbeat interval (2.3).
const DefaultHeartbeatInterval = 30 * time.Second

// MinReannounce is the shortest time between two introspections of a node
// that is waiting for the registry (spec 4.2: at least 10 s between
// publishes).
const MinReannounce = 10 * time.Second

// Config configures a Fleet.
type Config struct {
	Brokers []string
	// Environment is written to the source header ("local" unless set).
	Environment string
	// HeartbeatInterval defaults to DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Reannounce is how long a node waits for the registry to answer its
	// introspection before announcing itself again (checked at its
	// heartbeats). Zero means the larger of MinReannounce and
	// HeartbeatInterval.
	Reannounce time.Duration
	// ClientID names the Kafka client ("onex-node" unless set).
	ClientID string
	// Namespace (KAFKA_TOPIC_NAMESPACE) is put in front of every topic the
	// nodes publish to and listen on, as on a Python node.
	Namespace topicns.Namespace
	Logger    *slog.Logger
	// OnTransition, when set, is called (from the fleet's consumer
	// goroutine; keep it quick) whenever a node's registration status
	// changes.
	OnTransition func(nodeID uuid.UUID, from, to Status)
}

// Options are per-node behaviours, including the faults a simulated fleet
// injects.
type Options struct {
	// NeverAck makes the node ignore its accepted event, so the registry
	// times the ack out.
	NeverAck bool
	// DieAfter, when > 0, makes the node fall silent that long after it
	// starts: no more heartbeats, acks or answers, as if the process had
	// been killed without deregistering.
	DieAfter time.Duration
	// Load, when set, is sampled for each heartbeat.
	Load func() Load
}

// Status is a node's registration status as the node itself has observed it
// on the lifecycle topics.
type Status string

const (
	StatusStarting    Status = "starting"     // introspection not yet published
	StatusIntroducing Status = "introspected" // introspection published, no answer yet
	StatusAccepted    Status = "accepted"     // accepted event seen
	StatusAcked       Status = "acked"        // ack published
	StatusActive      Status = "active"       // became-active seen
	StatusTimedOut    Status = "ack_timed_out"
	StatusExpired     Status = "liveness_expired"
	StatusDead        Status = "dead" // fault injected: silent
)

// Stats are a fleet's counters since it started.
type Stats struct {
	Nodes            int
	PerStatus        map[Status]int
	Introspections   int64
	Heartbeats       int64
	Acks             int64
	Reintrospections int64 // answers to requests and re-announcements after expiry
	PublishErrors    int64
}

// Fleet runs any number of nodes in one process over one Kafka producer
// and one set of partition consumers, which is how `onexctl simulate` runs
// thousands of nodes and how a service registers itself (a fleet of one).
//
// The consumers read the accepted, became-active, ack-timed-out,
// liveness-expired and request-introspection topics from their end,
// without a consumer group: every node must see the records for itself,
// whichever process runs it. They are positioned before any node
// introspects, so no answer is missed.
type Fleet struct {
	cfg Config
	log *slog.Logger
	enc *Encoder

	mu    sync.Mutex
	nodes map[uuid.UUID]*member
	sched schedule
	wake  chan struct{}

	ready     chan struct{}
	readyOnce sync.Once
	producer  sarama.AsyncProducer
	// closing guards the producer's input: publishers hold it shared, Run
	// takes it exclusively to mark the fleet closed before closing the
	// producer, so nobody sends on a closed input channel.
	closing sync.RWMutex
	closed  bool

	introspections, heartbeats, acks, reintro, publishErrors atomic.Int64
}

type member struct {
	id      Identity
	opts    Options
	started time.Time
	status  Status
	dead    bool
	idx     int // heap index
	next    time.Time
	// announcing is set while an introspection is being published, so the
	// heartbeat loop's retries do not duplicate it.
	announcing bool
	// announced is when the node's last introspection reached the broker.
	announced time.Time
	// acked is the correlation id of the last accepted event the node acked:
	// the registry's registration attempt (uuid.Nil before the first ack).
	acked uuid.UUID
}

// NewFleet checks cfg; Run connects.
func NewFleet(cfg Config) (*Fleet, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("node: no Kafka bootstrap servers")
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "onex-node"
	}
	if cfg.Reannounce <= 0 {
		cfg.Reannounce = max(MinReannounce, cfg.HeartbeatInterval)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Fleet{
		cfg:   cfg,
		log:   log,
		enc:   &Encoder{Source: cfg.Environment},
		nodes: map[uuid.UUID]*member{},
		wake:  make(chan struct{}, 1),
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once the fleet's consumers are positioned and nodes can
// introspect.
func (f *Fleet) Ready() <-chan struct{} { return f.ready }

// listened are the topics every node listens to.
var listened = []string{
	topics.NodeRegistrationAccepted,
	topics.NodeBecameActive,
	topics.NodeRegistrationAckTimedOut,
	topics.NodeLivenessExpired,
	topics.RequestIntrospection,
}

// Run connects to Kafka (retrying until the broker and topics are there),
// serves every node until ctx is done, then stops heartbeats and flushes
// what was published.
func (f *Fleet) Run(ctx context.Context) error {
	scfg, err := bus.NewConfig(bus.Options{Brokers: f.cfg.Brokers, ClientID: f.cfg.ClientID})
	if err != nil {
		return err
	}
	// A node's messages are small and latency matters more than batching.
	scfg.Producer.Flush.Frequency = 2 * time.Millisecond
	scfg.Producer.Compression = sarama.CompressionNone
	client, err := f.connect(ctx, scfg)
	if err != nil {
		return err
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("node: consumer: %w", err)
	}
	defer consumer.Close()
	// The producer gets a client (so a connection) of its own: a Kafka broker
	// answers the requests of one connection in order, so a produce sent on
	// the consumer's connection waits behind its long-polling fetch, up to
	// Consumer.MaxWaitTime (500 ms). make bench saw introspections
	// acknowledged after 55 ms at p50 and 510 ms at p99 at 10 registrations/s.
	pclient, err := sarama.NewClient(f.cfg.Brokers, scfg)
	if err != nil {
		return fmt.Errorf("node: producer client: %w", err)
	}
	defer pclient.Close()
	producer, err := sarama.NewAsyncProducerFromClient(pclient)
	if err != nil {
		return fmt.Errorf("node: producer: %w", err)
	}
	f.producer = producer

	var pcs []sarama.PartitionConsumer
	for _, t := range f.cfg.Namespace.PhysicalAll(listened) {
		parts, err := client.Partitions(t)
		if err != nil {
			return fmt.Errorf("node: partitions of %s: %w", t, err)
		}
		for _, p := range parts {
			pc, err := consumer.ConsumePartition(t, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("node: consume %s/%d: %w", t, p, err)
			}
			pcs = append(pcs, pc)
		}
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.results(producer) }()
	records := make(chan *sarama.ConsumerMessage, 256)
	var cwg sync.WaitGroup
	for _, pc := range pcs {
		cwg.Add(2)
		go func() {
			defer cwg.Done()
			for m := range pc.Messages() {
				select {
				case records <- m:
				case <-ctx.Done():
				}
			}
		}()
		go func() {
			defer cwg.Done()
			for err := range pc.Errors() {
				f.log.Warn("node: consume error", "error", infraerr.SanitizeString(err.Error()))
			}
		}()
	}
	f.readyOnce.Do(func() { close(f.ready) })
	f.log.Info("node fleet ready", "listening", len(pcs))

	wg.Add(1)
	go func() { defer wg.Done(); f.heartbeatLoop(ctx) }()
	for done := false; !done; {
		select {
		case m := <-records:
			f.handle(ctx, m)
		case <-ctx.Done():
			done = true
		}
	}
	for _, pc := range pcs {
		pc.AsyncClose()
	}
	go func() { // unblock forwarders until their partition consumers close
		for range records {
		}
	}()
	cwg.Wait()
	close(records)
	f.closing.Lock()
	f.closed = true
	f.closing.Unlock()
	producer.AsyncClose() // flushes what is buffered; results() ends when drained
	wg.Wait()
	return nil
}

func (f *Fleet) connect(ctx context.Context, scfg *sarama.Config) (sarama.Client, error) {
	for attempt := 0; ; attempt++ {
		client, err := sarama.NewClient(f.cfg.Brokers, scfg)
		if err == nil {
			missing := missingTopics(client, f.cfg.Namespace)
			if len(missing) == 0 {
				return client, nil
			}
			client.Close()
			err = fmt.Errorf("topics not provisioned yet: %v (onexctl topics provision creates them)", missing)
		}
		f.log.Warn("node: waiting for Kafka", "attempt", attempt+1, "error", infraerr.SanitizeString(err.Error()))
		if !retry.Sleep(ctx, min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)) {
			return nil, fmt.Errorf("node: connect: %w (last error: %v)", ctx.Err(), infraerr.SanitizeString(err.Error()))
		}
	}
}

func missingTopics(client sarama.Client, ns topicns.Namespace) []string {
	var missing []string
	for _, t := range ns.PhysicalAll(append(slices.Clone(listened), topics.NodeIntrospection, topics.NodeHeartbeat, topics.NodeRegistrationAcked)) {
		if _, err := client.Partitions(t); err != nil {
			missing = append(missing, t)
		}
	}
	return missing
}

// results drains the producer: a message published with a result channel
// gets its outcome there; others are only counted.
func (f *Fleet) results(p sarama.AsyncProducer) {
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			if ch, ok := m.Metadata.(chan error); ok {
				ch <- nil
			}
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			f.publishErrors.Add(1)
			if ch, ok := pe.Msg.Metadata.(chan error); ok {
				ch <- pe.Err
			} else {
				f.log.Warn("node: publish failed", "topic", pe.Msg.Topic, "error", infraerr.SanitizeError(pe.Err))
			}
		}
	}
}

// publish sends r; with wait it returns the broker's verdict, otherwise
// only whether it was queued (failures are then counted and logged).
func (f *Fleet) publish(ctx context.Context, r Record, wait bool) error {
	select {
	case <-f.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	m := r.ProducerMessage()
	m.Topic = f.cfg.Namespace.Physical(m.Topic)
	var ch chan error
	if wait {
		ch = make(chan error, 1)
		m.Metadata = ch
	}
	f.closing.RLock()
	if f.closed {
		f.closing.RUnlock()
		return errFleetClosed
	}
	select {
	case f.producer.Input() <- m:
	case <-ctx.Done():
		f.closing.RUnlock()
		return ctx.Err()
	}
	f.closing.RUnlock()
	if !wait {
		return nil
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Add starts a node: it publishes the node's startup introspection (after
// the fleet is ready) and schedules its heartbeats. It returns the publish
// error, if any; the node stays in the fleet either way and answers the
// next re-introspection request.
func (f *Fleet) Add(ctx context.Context, id Identity, opts Options) error {
	if err := id.Validate(); err != nil {
		return err
	}
	now := time.Now()
	m := &member{id: id, opts: opts, started: now, status: StatusStarting}
	f.mu.Lock()
	if _, dup := f.nodes[id.NodeID]; dup {
		f.mu.Unlock()
		return fmt.Errorf("node %s: already in the fleet", id.NodeID)
	}
	f.nodes[id.NodeID] = m
	// The first heartbeat comes one interval after start, jittered by up to
	// a tenth so that nodes started together do not beat together forever.
	jitter := time.Duration(rand.Int64N(int64(f.cfg.HeartbeatInterval)/10 + 1))
	m.next = now.Add(f.cfg.HeartbeatInterval - jitter)
	heap.Push(&f.sched, m)
	f.mu.Unlock()
	f.poke()
	return f.Introspect(ctx, id.NodeID, registration.ReasonStartup, uuid.New())
}

// Introspect publishes an introspection for one node and waits for the
// broker's answer; an error means the registry did not get it (Kafka down,
// for instance) and the node should try again later.
func (f *Fleet) Introspect(ctx context.Context, nodeID uuid.UUID, reason registration.IntrospectionReason, correlationID uuid.UUID) error {
	f.mu.Lock()
	m, ok := f.nodes[nodeID]
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("node %s: not in the fleet", nodeID)
	}
	r, err := f.enc.Introspection(m.id.Introspection(reason, correlationID, time.Now()))
	if err != nil {
		return err
	}
	f.mu.Lock()
	m.announcing = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		m.announcing = false
		f.mu.Unlock()
	}()
	if err := f.publish(ctx, r, true); err != nil {
		return fmt.Errorf("node %s: publish introspection: %w", nodeID, err)
	}
	f.mu.Lock()
	m.announced = time.Now()
	f.mu.Unlock()
	if reason == registration.ReasonStartup {
		f.introspections.Add(1)
		f.setStatus(nodeID, StatusStarting, StatusIntroducing)
	} else {
		f.reintro.Add(1)
	}
	return nil
}

// setStatus moves nodeID to `to`; when from is not empty, only from `from`.
func (f *Fleet) setStatus(nodeID uuid.UUID, from, to Status) {
	f.mu.Lock()
	m, ok := f.nodes[nodeID]
	if !ok || m.dead || (from != "" && m.status != from) || m.status == to {
		f.mu.Unlock()
		return
	}
	prev := m.status
	m.status = to
	f.mu.Unlock()
	if f.cfg.OnTransition != nil {
		f.cfg.OnTransition(nodeID, prev, to)
	}
}

// Status reports what nodeID has observed of its registration.
func (f *Fleet) Status(nodeID uuid.UUID) (Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.nodes[nodeID]
	if !ok {
		return "", false
	}
	if m.dead {
		return StatusDead, true
	}
	return m.status, true
}

// Alive lists the nodes that have not fallen silent.
func (f *Fleet) Alive() []uuid.UUID {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]uuid.UUID, 0, len(f.nodes))
	for id, m := range f.nodes {
		if !m.dead {
			out = append(out, id)
		}
	}
	return out
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	per := map[Status]int{}
	for _, m := range f.nodes {
		if m.dead {
			per[StatusDead]++
		} else {
			per[m.status]++
		}
	}
	n := len(f.nodes)
	f.mu.Unlock()
	return Stats{
		Nodes:            n,
		PerStatus:        per,
		Introspections:   f.introspections.Load(),
		Heartbeats:       f.heartbeats.Load(),
		Acks:             f.acks.Load(),
		Reintrospections: f.reintro.Load(),
		PublishErrors:    f.publishErrors.Load(),
	}
}

// unannounced reports whether m's startup introspection never reached the
// broker.
func (f *Fleet) unannounced(m *member) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return m.status == StatusStarting && !m.announcing
}

// unanswered reports whether m announced itself at least Config.Reannounce
// ago and is still waiting for the registry: no accepted event since its startup
// introspection, or since it was timed out or expired (unless it never
// acks by design, which would loop). An introspection can reach the broker
// and still go unread: the registry's node-facing consumer groups start at
// the newest record when they have none committed (spec 3.4), so a node
// that announces itself while the registry is starting for the first time
// is never seen, and the registry's re-introspection request may have gone
// out before the node listened. Announcing again is harmless to the
// registry: a node it is already registering ignores the introspection.
func (f *Fleet) unanswered(m *member, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m.status {
	case StatusIntroducing, StatusExpired:
	case StatusTimedOut:
		if m.opts.NeverAck {
			return false
		}
	default:
		return false
	}
	return !m.announcing && now.Sub(m.announced) >= f.cfg.Reannounce
}

func (f *Fleet) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// heartbeatLoop publishes every node's heartbeat when it is due: one timer
// for the whole fleet, a heap ordered by next beat.
func (f *Fleet) heartbeatLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.mu.Lock()
		now := time.Now()
		var due []*member
		for f.sched.Len() > 0 && !f.sched[0].next.After(now) {
			m := f.sched[0]
			if m.opts.DieAfter > 0 && now.Sub(m.started) >= m.opts.DieAfter {
				heap.Pop(&f.sched)
				m.dead = true
				continue
			}
			m.next = m.next.Add(f.cfg.HeartbeatInterval)
			if m.next.Before(now) { // we fell behind: do not burst
				m.next = now.Add(f.cfg.HeartbeatInterval)
			}
			heap.Fix(&f.sched, 0)
			due = append(due, m)
		}
		wait := time.Hour
		if f.sched.Len() > 0 {
			wait = time.Until(f.sched[0].next)
		}
		f.mu.Unlock()
		for _, m := range due {
			if f.unannounced(m) {
				go func(id uuid.UUID) {
					if err := f.Introspect(ctx, id, registration.ReasonStartup, uuid.New()); err != nil && ctx.Err() == nil {
						f.log.Warn("node: startup introspection still failing", "node_id", id, "error", infraerr.SanitizeError(err))
					}
				}(m.id.NodeID)
			} else if f.unanswered(m, now) {
				go func(id uuid.UUID) {
					if err := f.Introspect(ctx, id, registration.ReasonHeartbeat, uuid.New()); err != nil && ctx.Err() == nil {
						f.log.Warn("node: re-announce to a silent registry failed", "node_id", id, "error", infraerr.SanitizeError(err))
					}
				}(m.id.NodeID)
			}
			var load Load
			if m.opts.Load != nil {
				load = m.opts.Load()
			}
			r, err := f.enc.Heartbeat(&m.id, now.Sub(m.started), load)
			if err != nil {
				f.log.Error("node: heartbeat", "node_id", m.id.NodeID, "error", err)
				continue
			}
			if f.publish(ctx, r, false) == nil {
				f.heartbeats.Add(1)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// handle reacts to one record from the listened topics.
func (f *Fleet) handle(ctx context.Context, m *sarama.ConsumerMessage) {
	topic := f.cfg.Namespace.Canonical(m.Topic)
	if topic == topics.RequestIntrospection {
		f.answerRequest(ctx, m.Value)
		return
	}
	nodeID, corr, ok := lifecycleIDs(m.Value)
	if !ok {
		return
	}
	f.mu.Lock()
	mem, ours := f.nodes[nodeID]
	dead := ours && (mem.dead || (mem.opts.DieAfter > 0 && time.Since(mem.started) >= mem.opts.DieAfter))
	var opts Options
	if ours {
		opts = mem.opts
	}
	f.mu.Unlock()
	if !ours || dead {
		return
	}
	log := f.log.With("node_id", nodeID, "correlation_id", corr)
	switch topic {
	case topics.NodeRegistrationAccepted:
		// The registry publishes the accepted event again until it has the
		// ack (a node may start listening after the first one was
		// published), so one attempt's event can arrive more than once, also
		// after the node acked it or saw it become active. The node acks
		// every copy, as a Python node does (a duplicate ack changes
		// nothing, and a lost ack is made good); a copy of the attempt it
		// already acked leaves its status where it is.
		f.mu.Lock()
		again := resentAccepted(mem.status, mem.acked, corr)
		f.mu.Unlock()
		if !again {
			f.setStatus(nodeID, "", StatusAccepted)
		}
		if opts.NeverAck {
			log.Debug("node: not acking (fault injected)")
			return
		}
		r, err := f.enc.Ack(nodeID, corr)
		if err != nil {
			log.Error("node: ack", "error", err)
			return
		}
		if err := f.publish(ctx, r, false); err == nil {
			f.acks.Add(1)
			f.mu.Lock()
			mem.acked = corr
			f.mu.Unlock()
			f.setStatus(nodeID, StatusAccepted, StatusAcked)
		}
	case topics.NodeBecameActive:
		f.setStatus(nodeID, "", StatusActive)
	case topics.NodeRegistrationAckTimedOut, topics.NodeLivenessExpired:
		// The registry gave up on a node that is alive: its ack came too late
		// (the registry was catching up on a backlog older than the ack
		// timeout) or its heartbeats were lost. Announce again rather than
		// stay unregistered until someone asks; a Python node would wait for
		// a re-introspection request. A node that never acks by design does
		// not, or it would loop.
		if topic == topics.NodeLivenessExpired {
			f.setStatus(nodeID, "", StatusExpired)
		} else {
			f.setStatus(nodeID, "", StatusTimedOut)
			if opts.NeverAck {
				return
			}
		}
		go func() {
			if err := f.Introspect(ctx, nodeID, registration.ReasonHealthChange, uuid.New()); err != nil && ctx.Err() == nil {
				log.Warn("node: re-announce after expiry failed", "error", infraerr.SanitizeError(err))
			}
		}()
	}
}

// resentAccepted reports whether an accepted event with correlation id corr
// is another copy of the attempt a node with status st already acked
// (acked): the node acks it again but keeps its status (acked, or active
// once the registry said so). Any other accepted event, a new attempt's
// included, moves the node to accepted.
func resentAccepted(st Status, acked, corr uuid.UUID) bool {
	return acked != uuid.Nil && corr == acked && (st == StatusAcked || st == StatusActive)
}

// lifecycleIDs reads the node id and correlation id of a lifecycle event.
// Like a Python node's ack listener it looks at the JSON top level first
// (entity_id, correlation_id: the accepted event is the bare
// ModelNodeRegistrationAccepted, which has both); for events without a
// top-level entity_id it reads payload.node_id of the envelope, or node_id
// of a bare model (the second liveness-expired shape, spec 2.7).
func lifecycleIDs(value []byte) (nodeID, corr uuid.UUID, ok bool) {
	var top struct {
		EntityID      *string `json:"entity_id"`
		NodeID        *string `json:"node_id"`
		CorrelationID *string `json:"correlation_id"`
		Payload       *struct {
			NodeID *string `json:"node_id"`
		} `json:"payload"`
	}
	if json.Unmarshal(value, &top) != nil {
		return uuid.Nil, uuid.Nil, false
	}
	var idStr *string
	switch {
	case top.EntityID != nil:
		idStr = top.EntityID
	case top.Payload != nil && top.Payload.NodeID != nil:
		idStr = top.Payload.NodeID
	default:
		idStr = top.NodeID
	}
	if idStr == nil {
		return uuid.Nil, uuid.Nil, false
	}
	id, err := uuid.Parse(*idStr)
	if err != nil {
		return uuid.Nil, uuid.Nil, false
	}
	if top.CorrelationID != nil {
		corr, _ = uuid.Parse(*top.CorrelationID)
	}
	return id, corr, true
}

// answerRequest re-introspects every live node the request addresses, with
// the request's correlation id (spec 2.6): any value is a request, an
// unparsable one included, as on a Python node.
func (f *Fleet) answerRequest(ctx context.Context, value []byte) {
	req, err := registration.DecodeRequestIntrospection(value)
	if err != nil {
		req = &registration.RequestIntrospection{}
	}
	corr := uuid.New()
	if req.CorrelationID != nil {
		corr = *req.CorrelationID
	}
	var targets []uuid.UUID
	now := time.Now()
	f.mu.Lock()
	for id, m := range f.nodes {
		if m.dead || (m.opts.DieAfter > 0 && now.Sub(m.started) >= m.opts.DieAfter) || !req.AddressedTo(id) {
			continue
		}
		targets = append(targets, id)
	}
	f.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	// Answer off the consumer goroutine: thousands of simulated nodes must
	// not hold up the accepted events behind their answers.
	go func() {
		for _, id := range targets {
			r, err := f.encodeIntrospection(id, registration.ReasonRequest, corr)
			if err != nil {
				continue
			}
			if f.publish(ctx, r, false) == nil {
				f.reintro.Add(1)
			}
		}
	}()
}

func (f *Fleet) encodeIntrospection(nodeID uuid.UUID, reason registration.IntrospectionReason, corr uuid.UUID) (Record, error) {
	f.mu.Lock()
	m, ok := f.nodes[nodeID]
	f.mu.Unlock()
	if !ok {
		return Record{}, fmt.Errorf("node %s: not in the fleet", nodeID)
	}
	return f.enc.Introspection(m.id.Introspection(reason, corr, time.Now()))
}

// schedule is a min-heap of members by next heartbeat.
type schedule []*member

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].next.Before(s[j].next) }
func (s schedule) Swap(i, j int)      { s[i], s[j] = s[j], s[i]; s[i].idx = i; s[j].idx = j }
func (s *schedule) Push(x any)        { m := x.(*member); m.idx = len(*s); *s = append(*s, m) }
func (s *schedule) Pop() any {
	old := *s
	m := old[len(old)-1]
	*s = old[:len(old)-1]
	return m
}

// Run runs a single node until ctx is done: the usual way for a Go
// service to take part in registration.
func Run(ctx context.Context, cfg Config, id Identity, opts Options) error {
	f, err := NewFleet(cfg)
	if err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- f.Run(ctx) }()
	select {
	case <-f.Ready():
	case err := <-errc:
		return err
	}
	// A failed startup introspection is not fatal: the fleet retries it at
	// every heartbeat until the broker takes it.
	if err := f.Add(ctx, id, opts); err != nil && ctx.Err() == nil {
		f.log.Warn("node: startup introspection failed; will retry", "node_id", id.NodeID, "error", infraerr.SanitizeError(err))
	}
	return <-errc
}
