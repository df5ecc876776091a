// Package app wires the consul effect: settings, the Consul client and
// breaker, the intents consumer with its results producer and DLQ, the
// snapshot view and anti-entropy, health and metrics.
package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config/infisical"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/services/consul-effect/expect"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/antientropy"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

// Readiness conditions.
const (
	CondTopics    = "topics"
	CondSnapshots = "snapshots_caught_up"
	CondConsul    = "consul_reachable"
)

// HandlerName labels the intents handler's latency
// (onex_handler_duration_seconds{handler}).
const HandlerName = "consul_intents"

// Conditions lists the readiness conditions New expects the service to have.
var Conditions = []string{CondTopics, CondSnapshots, CondConsul}

// Secrets is what the consul effect prefetches from Infisical at boot
// (docs/configuration.md): its Consul address and token under the env
// transport, and the spec's kafka keys for parity with the Python runtime.
// The kafka keys and the token are optional: the bus does not read the
// former, and a Consul without ACLs has no token.
var Secrets = infisical.Needs{
	Service:    "consul-effect",
	Transports: []string{infisical.Kafka},
	Env:        []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN"},
	Optional:   append([]string{"CONSUL_HTTP_TOKEN"}, infisical.TransportKeys[infisical.Kafka]...),
}

// Main runs the consul effect until SIGTERM and returns the exit code.
func Main() int {
	svc, err := service.Boot("consul-effect", Secrets, Conditions...)
	if err != nil {
		return 2 // reported by Boot
	}
	path := contract.Path(svc.Config.ContractsDir, expect.Service)
	c, err := contract.Load(path, expect.Contract())
	if err != nil {
		svc.Log.Error("refusing to start: invalid contract", "contract", path, "error", err.Error())
		return 2
	}
	s, err := LoadSettings(svc.Config, c)
	if err != nil {
		svc.Log.Error("invalid configuration", "error", infraerr.SanitizeError(err))
		return 2
	}
	a, err := New(svc, s)
	if err != nil {
		svc.Log.Error("startup failed", "error", infraerr.SanitizeError(err))
		return 2
	}
	if err := svc.Run(a.Run, svc.SelfRegistration(service.Self{
		Type: registration.NodeKindEffect, Name: "node_registration_consul_effect", Role: "registry",
		Capabilities: registration.NodeCapabilities{Write: true,
			SupportedTypes: expect.HandledIntents},
	})); err != nil {
		return 1
	}
	return 0
}

// App is the running consul effect.
type App struct {
	svc     *service.Service
	s       Settings
	brokers []string
	busm    *bus.Metrics
	consul  *backend.Client
	reg     *effect.Registrar
	view    *antientropy.View
	rec     *antientropy.Reconciler

	// owned is the set of intents-topic partitions this instance holds;
	// anti-entropy reconciles only the nodes that hash to them.
	owned      atomic.Pointer[map[int32]bool]
	partitions atomic.Int32
	runner     atomic.Pointer[bus.Runner]

	// follow feeds the view from the snapshot topic (View.Follow; tests
	// wrap it to hold the catch-up).
	follow func(ctx context.Context, client sarama.Client, topic string, idle time.Duration, log *slog.Logger) error
}

// New builds the effect; nothing is contacted until Run.
func New(svc *service.Service, s Settings) (*App, error) {
	reg := svc.Registerer()
	a := &App{svc: svc, s: s, brokers: bus.ParseBrokers(svc.Config.KafkaBootstrap), busm: bus.NewMetrics(reg)}
	cs := s.Consul
	if cs.Log == nil {
		cs.Log = svc.Log.With("component", "consul")
	}
	c, err := backend.New(cs, backend.NewMetrics(reg))
	if err != nil {
		return nil, err
	}
	a.consul = c
	var store effect.Store
	if s.Mode == effect.ModeAgent {
		store = effect.NewAgentStore(c)
	} else {
		store = effect.NewCatalogStore(c, s.Env, reg)
	}
	a.reg = effect.NewRegistrar(store, s.Env, reg)
	a.view = antientropy.NewView(reg)
	a.follow = a.view.Follow
	a.rec = antientropy.NewReconciler(a.view, a.reg, a.owns, s.OrphanGrace, s.Consul.Parallel, svc.Log.With("component", "anti_entropy"), reg)
	empty := map[int32]bool{}
	a.owned.Store(&empty)
	return a, nil
}

// Registrar exposes the registrar (tests read its marks).
func (a *App) Registrar() *effect.Registrar { return a.reg }

// Reconciler exposes the reconciler (tests run passes on demand).
func (a *App) Reconciler() *antientropy.Reconciler { return a.rec }

// Consul exposes the Consul client (tests read the breaker state).
func (a *App) Consul() *backend.Client { return a.consul }

func (a *App) owns(node uuid.UUID) bool {
	n := a.partitions.Load()
	if n <= 0 {
		return false
	}
	p, err := sarama.NewHashPartitioner(a.s.IntentsTopic).Partition(
		&sarama.ProducerMessage{Topic: a.s.IntentsTopic, Key: sarama.StringEncoder(node.String())}, n)
	if err != nil {
		return false
	}
	return (*a.owned.Load())[p]
}

func (a *App) dlqTopic() string {
	return dlq.Router{Override: a.s.DLQTopic, Namespace: a.s.Namespace}.TopicFor(a.s.IntentsTopic)
}

// Run starts everything and blocks until ctx ends, then drains: the intents
// consumer finishes the message in flight and commits, the other loops stop.
func (a *App) Run(ctx context.Context) error {
	log := a.svc.Log
	log.Info("consul effect starting", "consul_mode", string(a.s.Mode), "consul_addr", a.s.Consul.Addr, "consul_tls", a.s.Consul.Scheme() == "https",
		"consul_token_set", a.s.Consul.Token.Reveal() != "", "intents_topic", a.s.IntentsTopic, "results_topic", a.s.ResultsTopic,
		"snapshots_topic", a.s.SnapshotsTopic, "dlq_topic", a.dlqTopic(), "group", a.s.Group,
		"reconcile_interval", a.s.ReconcileInterval.String(), "kafka", infraerr.RedactBootstrapServers(a.svc.Config.KafkaBootstrap))
	for _, w := range a.s.Consul.TLSWarnings() {
		log.Warn("consul settings", "warning", w)
	}

	cfg, err := bus.NewConfig(bus.Options{Brokers: a.brokers, ClientID: "consul-effect", FromOldest: true})
	if err != nil {
		return err
	}
	client, err := service.WaitKafka(ctx, log, a.brokers, cfg)
	if err != nil {
		return nil // ctx ended while waiting: a stop, not a failure
	}
	defer client.Close()
	if !service.WaitTopics(ctx, log, client, a.s.IntentsTopic, a.s.ResultsTopic, a.s.SnapshotsTopic, a.dlqTopic()) {
		return nil
	}
	a.svc.Health.Set(CondTopics, true)
	parts, err := client.Partitions(a.s.IntentsTopic)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "partitions", Target: a.s.IntentsTopic}, "intents topic", err)
	}
	a.partitions.Store(int32(len(parts)))

	producer, err := bus.NewProducer(a.brokers, cfg, a.busm)
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "producer"}, "results producer")
	}
	defer producer.Close()
	dlqProducer, err := sarama.NewSyncProducer(a.brokers, dlq.NewProducerConfig("consul-effect-dlq"))
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "producer"}, "dlq producer", err)
	}
	defer dlqProducer.Close()
	pub, err := dlq.NewPublisher(dlqProducer, a.svc.Registerer(), dlq.WithSource(a.s.Source), dlq.WithRouter(dlq.Router{Override: a.s.DLQTopic, Namespace: a.s.Namespace}))
	if err != nil {
		return err
	}

	handler := effect.NewHandler(a.reg, effect.Results{Topic: a.s.ResultsTopic, Source: a.s.Source}, a.svc.Registerer(), a.s.Consul.Parallel)
	// A batch is what the claim has buffered, up to 4 × the parallelism:
	// enough to keep every slot busy, and no linger, because an intent
	// waiting for company is a registration delayed.
	runner, err := bus.NewRunner(bus.RunnerConfig{
		Brokers: a.brokers, Config: cfg, Group: a.s.Group, Topics: []string{a.s.IntentsTopic},
		Handle: handler.Handle, Send: producer, DeadLetter: bus.DLQ(pub), Retry: a.s.Retry,
		MaxBatch: 4 * a.s.Consul.Parallel, Linger: -1,
		DrainTimeout: a.s.DrainTimeout, Log: log, Metrics: a.busm.Handler(HandlerName),
		OnAssign: func(_ context.Context, claims map[string][]int32) error {
			m := map[int32]bool{}
			for _, p := range claims[a.s.IntentsTopic] {
				m[p] = true
			}
			a.owned.Store(&m)
			log.Info("intents partitions assigned", "partitions", len(m))
			return nil
		},
		OnRevoke: func(map[string][]int32) {
			empty := map[int32]bool{}
			a.owned.Store(&empty)
			// Another instance may write these nodes before they come back.
			a.reg.Forget()
		},
	})
	if err != nil {
		return err
	}
	a.runner.Store(runner)
	a.svc.Health.SetInFlight(runner.InFlight)

	// The side loops are owned here: cancelled and awaited before Run returns.
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(4)
	go func() {
		defer wg.Done()
		select {
		case <-sctx.Done():
		case <-a.view.Ready():
			a.svc.Health.Set(CondSnapshots, true)
		}
	}()
	go func() { defer wg.Done(); a.followSnapshots(sctx, client) }()
	go func() { defer wg.Done(); a.waitConsul(sctx) }()
	go func() { defer wg.Done(); _ = a.rec.Run(sctx, a.s.ReconcileInterval) }()

	err = runner.Run(ctx)
	if err != nil {
		log.Error("intents consumer stopped", "error", infraerr.SanitizeError(err))
	}
	return err
}

// followSnapshots keeps the view fed, restarting the consumer after errors.
func (a *App) followSnapshots(ctx context.Context, client sarama.Client) {
	log := a.svc.Log.With("component", "snapshot_view")
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := a.follow(ctx, client, a.s.SnapshotsTopic, a.s.CatchUpIdle, log)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("snapshot view restarting", "error", infraerr.SanitizeError(err))
		if !retry.Sleep(ctx, service.Backoff(attempt)) {
			return
		}
	}
}

// waitConsul marks Consul reachable once the agent answered. Readiness is a
// start-up gate: a later Consul outage shows in the breaker metric and in
// failed results; making the pod unready would not bring Consul back.
func (a *App) waitConsul(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := a.consul.Ping(ctx)
		if err == nil {
			a.svc.Health.Set(CondConsul, true)
			a.svc.Log.Info("consul agent reachable")
			return
		}
		a.svc.Log.Warn("consul agent not reachable yet", "error", infraerr.SanitizeError(err))
		if !retry.Sleep(ctx, service.Backoff(attempt)) {
			return
		}
	}
}
