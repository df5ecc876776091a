// Package app wires the projector effect: settings, the pgx pool, migrations
// under golang-migrate's advisory lock, the PostgreSQL breaker, the intents
// consumer (pkg/bus's runner in batches) with its results producer and DLQ, the
// gRPC registry API and admin API with the standard health service,
// readiness and metrics.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config/infisical"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/admin"
	"github.com/omninode/onex-fleet/services/projector-effect/expect"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/api"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/effect"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/schema"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// Readiness conditions.
const (
	CondDatabase = "database_reachable"
	CondSchema   = "schema_at_head"
	CondTopics   = "topics"
)

// HandlerName labels the intents consumer's handler latency
// (onex_handler_duration_seconds{handler}).
const HandlerName = "postgres_intents"

// Conditions lists the readiness conditions the service starts with.
var Conditions = []string{CondDatabase, CondSchema, CondTopics}

// Secrets is what the projector prefetches from Infisical at boot
// (docs/configuration.md): its DSN under the env transport and the spec's db
// and kafka keys. The projector reads the db pool and timeout keys and the
// bus the Kafka security keys the kafka transport brings (TransportExtras);
// host, port and user come from the DSN and the bus does not read the
// spec's three kafka keys, so those are optional (fetched for parity with
// the Python runtime).
var Secrets = infisical.Needs{
	Service:    "projector-effect",
	Transports: []string{infisical.DB, infisical.Kafka},
	Env:        []string{"OMNIBASE_INFRA_DB_URL"},
	Optional:   append([]string{"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER"}, infisical.TransportKeys[infisical.Kafka]...),
}

// Main runs the projector effect until SIGTERM and returns the exit code.
func Main() int {
	svc, err := service.Boot("projector-effect", Secrets, Conditions...)
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
	for _, w := range s.GRPC.Warnings() {
		svc.Log.Warn("config", "warning", w)
	}
	a, err := New(svc, s)
	if err != nil {
		svc.Log.Error("startup failed", "error", infraerr.SanitizeError(err))
		return 2
	}
	if err := svc.Run(a.Run, svc.SelfRegistration(service.Self{
		Type: registration.NodeKindEffect, Name: "node_registration_projector_effect", Role: "registry",
		Capabilities: registration.NodeCapabilities{Postgres: true, Database: true, Read: true, Write: true, Transactions: true,
			SupportedTypes: expect.HandledIntents},
		Listeners: map[string]service.Listener{"grpc": {Scheme: "grpc", Addr: svc.Config.GRPCAddr}},
	})); err != nil {
		return 1
	}
	return 0
}

// App is the running projector effect.
type App struct {
	svc      *service.Service
	s        Settings
	brokers  []string
	busm     *bus.Metrics
	pool     *pgxpool.Pool
	store    *store.Store
	breaker  *breaker.Breaker
	metrics  *effect.Metrics
	notifier *store.Notifier
	api      *api.Server
	admin    *admin.Server
	health   *health.Server
	// grpcOpts secure the gRPC server (TLS and the guard's interceptors).
	grpcOpts []grpc.ServerOption

	grpcAddr atomic.Pointer[string]
	runner   atomic.Pointer[bus.Runner]
}

// New builds the effect. The pool connects lazily: nothing is contacted
// until Run.
func New(svc *service.Service, s Settings) (*App, error) {
	pcfg, err := pgxpool.ParseConfig(s.DatabaseURL.Reveal())
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "configure"},
			"database url", errors.New(infraerr.SanitizeString(err.Error())))
	}
	pcfg.MinConns, pcfg.MaxConns = int32(s.PoolMin), int32(s.PoolMax)
	pcfg.ConnConfig.ConnectTimeout = s.ConnectTimeout
	if pcfg.ConnConfig.RuntimeParams == nil {
		pcfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = "projector-effect"
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "configure"},
			"database pool", errors.New(infraerr.SanitizeString(err.Error())))
	}
	reg := svc.Registerer()
	a := &App{svc: svc, s: s, brokers: bus.ParseBrokers(svc.Config.KafkaBootstrap), busm: bus.NewMetrics(reg),
		pool: pool, store: store.New(pool), metrics: effect.NewMetrics(reg), health: health.NewServer()}
	a.breaker = breaker.New(breaker.Settings{Backend: store.Backend, Transport: infraerr.TransportDB,
		Threshold: uint32(s.BreakerThreshold), Reset: s.BreakerReset, Healthy: store.IsDataError}, reg)
	reg.MustRegister(newNodeCounts(a.store.CountByState, 10*time.Second, 2*time.Second))
	a.notifier = store.NewNotifier(s.DatabaseURL.Reveal(), svc.Log.With("component", "change_listener"))
	a.api = api.New(a.store, a.notifier, svc.Log.With("component", "registry_api"))
	a.api.Poll = s.WatchPoll
	a.admin = admin.New(s.AdminTopic, s.Source, admin.NewMetrics(reg), svc.Log.With("component", "registry_admin"))
	guard := grpcsec.NewGuard(s.GRPC, []string{registryv1.AdminService_ServiceDesc.ServiceName},
		grpcsec.NewMetrics(reg), svc.Log.With("component", "grpc_security"))
	if a.grpcOpts, err = grpcsec.ServerOptions(s.GRPC, guard); err != nil {
		pool.Close()
		return nil, err
	}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	a.health.SetServingStatus(registryv1.RegistryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	return a, nil
}

// Breaker exposes the PostgreSQL breaker (tests read its state).
func (a *App) Breaker() *breaker.Breaker { return a.breaker }

// Store exposes the store (tests read rows).
func (a *App) Store() *store.Store { return a.store }

// GRPCAddr returns the address the registry API listens on, once it does.
func (a *App) GRPCAddr() string {
	if p := a.grpcAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// Assigned reports whether the intents consumer holds partitions.
func (a *App) Assigned() bool {
	r := a.runner.Load()
	return r != nil && r.Assigned()
}

// Run starts everything and blocks until ctx ends, then drains: the intents
// consumer finishes the batches in flight and commits, the API stops, the
// pool closes.
func (a *App) Run(ctx context.Context) error {
	log := a.svc.Log
	defer a.pool.Close()
	log.Info("projector effect starting", "database", infraerr.RedactDSN(a.s.DatabaseURL.Reveal()),
		"intents_topic", a.s.IntentsTopic, "results_topic", a.s.ResultsTopic, "dlq_topic", a.dlqTopic(), "admin_topic", a.s.AdminTopic, "group", a.s.Group,
		"grpc_addr", a.s.GRPCAddr, "grpc_security", a.s.GRPC, "pool_min", a.s.PoolMin, "pool_max", a.s.PoolMax, "max_batch", a.s.MaxBatch,
		"breaker_threshold", a.s.BreakerThreshold, "breaker_reset", a.s.BreakerReset.String(), "retry_max_delay", a.s.Retry.Max.String(),
		"kafka", infraerr.RedactBootstrapServers(a.svc.Config.KafkaBootstrap))

	ln, err := net.Listen("tcp", a.s.GRPCAddr)
	if err != nil {
		return infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportGRPC, Operation: "listen", Target: a.s.GRPCAddr}, "grpc listener", err)
	}
	addr := ln.Addr().String()
	a.grpcAddr.Store(&addr)

	// The side loops are owned here: cancelled and awaited before Run returns.
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(4)
	go func() { defer wg.Done(); a.serveGRPC(sctx, ln) }()
	go func() { defer wg.Done(); _ = a.notifier.Run(sctx) }()
	go func() { defer wg.Done(); a.watchDatabase(sctx) }()
	go func() { defer wg.Done(); a.followReadiness(sctx) }()

	if ok, err := a.prepareSchema(ctx); !ok {
		return err
	}
	cfg, err := bus.NewConfig(bus.Options{Brokers: a.brokers, ClientID: "projector-effect", FromOldest: true})
	if err != nil {
		return err
	}
	client, err := service.WaitKafka(ctx, log, a.brokers, cfg)
	if err != nil {
		return nil // ctx ended while waiting: a stop, not a failure
	}
	defer client.Close()
	if !service.WaitTopics(ctx, log, client, a.s.IntentsTopic, a.s.ResultsTopic, a.dlqTopic()) {
		return nil
	}
	a.svc.Health.Set(CondTopics, true)

	producer, err := bus.NewProducer(a.brokers, cfg, a.busm)
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "producer"}, "results producer")
	}
	defer producer.Close()
	// The admin API publishes with the results producer; detached (after
	// its sends in flight) before the producer closes.
	a.admin.Attach(producer)
	defer a.admin.Detach()
	dlqProducer, err := sarama.NewSyncProducer(a.brokers, dlq.NewProducerConfig("projector-effect-dlq"))
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "producer"}, "dlq producer", err)
	}
	defer dlqProducer.Close()
	pub, err := dlq.NewPublisher(dlqProducer, a.svc.Registerer(), dlq.WithSource(a.s.Source), dlq.WithRouter(dlq.Router{Override: a.s.DLQTopic, Namespace: a.s.Namespace}))
	if err != nil {
		return err
	}
	proc := effect.New(a.store, a.breaker,
		&effect.KafkaResults{Producer: producer, Topic: a.s.ResultsTopic, Source: a.s.Source}, a.metrics,
		effect.Options{Backoff: a.s.Retry, Timeout: a.s.QueryTimeout, BusMetrics: a.busm, Log: log.With("component", "effect")})
	linger := a.s.Linger
	if linger == 0 {
		linger = -1 // disabled
	}
	// The runner sends a batch's results with the results producer before
	// it commits and dead-letters its poison: bus.DLQ writes the record
	// the projector always wrote (raw path, publisher_malformed for a
	// content error, the intent's correlation id).
	runner, err := bus.NewRunner(bus.RunnerConfig{
		Brokers: a.brokers, Config: cfg, Group: a.s.Group, Topics: []string{a.s.IntentsTopic},
		Handle: proc.Handle, Send: producer, DeadLetter: bus.DLQ(pub),
		MaxBatch: a.s.MaxBatch, Linger: linger,
		DrainTimeout: a.s.DrainTimeout, Log: log, Metrics: a.busm.Handler(HandlerName),
	})
	if err != nil {
		return err
	}
	a.runner.Store(runner)
	a.svc.Health.SetInFlight(runner.InFlight)
	err = runner.Run(ctx)
	if err != nil {
		log.Error("intents consumer stopped", "error", infraerr.SanitizeError(err))
	}
	return err
}

func (a *App) dlqTopic() string {
	return dlq.Router{Override: a.s.DLQTopic, Namespace: a.s.Namespace}.TopicFor(a.s.IntentsTopic)
}

// prepareSchema brings the schema to this build's head: it migrates (or,
// with migrations off, waits until another replica or an operator did),
// retrying while the database is not reachable. A schema newer than head
// (a newer replica migrated during a rolling update) is accepted as is. It
// returns an error for a dirty schema, which needs an operator, and nil
// with ok false when ctx ended.
func (a *App) prepareSchema(ctx context.Context) (ok bool, err error) {
	log := a.svc.Log
	head, err := schema.Head()
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		v, dirty, err := schema.Version(ctx, a.pool)
		switch {
		case err == nil && dirty:
			err = infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "migrate"},
				fmt.Sprintf("schema version %d is dirty: a migration failed part-way; fix it by hand, then force the version", v), nil)
			log.Error("schema cannot be migrated", "error", infraerr.SanitizeError(err))
			return false, err
		case err == nil && v >= head:
			a.svc.Health.Set(CondSchema, true)
			log.Info("schema ready", "version", v, "head", head)
			return true, nil
		case err == nil && a.s.Migrate:
			if err = schema.Up(ctx, a.s.DatabaseURL.Reveal()); err == nil {
				log.Info("schema migrated", "from", v, "to", head)
				continue
			}
			if k, _ := infraerr.KindOf(err); k == infraerr.KindConfiguration {
				log.Error("schema cannot be migrated", "error", infraerr.SanitizeError(err))
				return false, err
			}
		case err == nil:
			err = fmt.Errorf("schema version %d, want %d (ONEX_PROJECTOR_MIGRATE is off: waiting for a migration)", v, head)
		}
		if ctx.Err() != nil {
			return false, nil
		}
		log.Warn("schema not ready yet", "error", infraerr.SanitizeError(err), "attempt", attempt+1)
		if !retry.Sleep(ctx, service.Backoff(attempt)) {
			return false, nil
		}
	}
}

// watchDatabase keeps the database condition true to a ping every few
// seconds (the ping bypasses the breaker: probes must not move it).
func (a *App) watchDatabase(ctx context.Context) {
	was := false
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.pool.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		ok := err == nil
		if ok != was {
			if ok {
				a.svc.Log.Info("database reachable")
			} else {
				a.svc.Log.Warn("database not reachable", "error", infraerr.SanitizeError(store.Classify("ping", err)))
			}
			was = ok
		}
		a.svc.Health.Set(CondDatabase, ok)
		if !retry.Sleep(ctx, 3*time.Second) {
			return
		}
	}
}

// followReadiness mirrors readiness into the gRPC health service.
func (a *App) followReadiness(ctx context.Context) {
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if a.svc.Health.Ready() {
			st = healthpb.HealthCheckResponse_SERVING
		}
		if st != last {
			a.health.SetServingStatus("", st)
			a.health.SetServingStatus(registryv1.RegistryService_ServiceDesc.ServiceName, st)
			last = st
		}
		if !retry.Sleep(ctx, 500*time.Millisecond) {
			a.health.Shutdown()
			return
		}
	}
}

// serveGRPC serves the registry API, the admin API and health until ctx
// ends, then stops gracefully: unary calls finish, watch streams are ended
// after a short grace. TLS and the authorisation of calls are a.grpcOpts.
func (a *App) serveGRPC(ctx context.Context, ln net.Listener) {
	g := grpc.NewServer(a.grpcOpts...)
	a.api.Register(g)
	a.admin.Register(g)
	healthpb.RegisterHealthServer(g, a.health)
	done := make(chan struct{})
	go func() { // owned: ends when Serve returns
		defer close(done)
		if err := g.Serve(ln); err != nil {
			a.svc.Log.Error("grpc server stopped", "error", infraerr.SanitizeError(err))
		}
	}()
	a.svc.Log.Info("grpc server listening", "addr", ln.Addr().String(), "security", a.s.GRPC.String())
	<-ctx.Done()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		g.Stop()
		<-stopped
	}
	<-done
}
