// Package app wires the registration orchestrator: the contract, settings,
// Kafka producers and consumer groups, the ingress, workflow, ticker and
// catalog components, health and metrics, and the drain on shutdown.
//
// Consumer groups (one per concern, so each scales and rebalances on its
// own):
//   - one per node-facing topic and for catalog queries, with the Python
//     orchestrator's effective group ids (spec 3.4:
//     {env}.omnibase_infra.node_registration_orchestrator.consume.1.1.1.__t.{topic}),
//     so this service resumes from the Python orchestrator's offsets at
//     cut-over;
//   - the workflow group on intents + effect results (range assignor, see
//     package workflow);
//   - the scheduler group on the runtime-tick topic (tick leadership);
//   - the operator group on the registration-admin topic (operator
//     commands, forwarded to the reducer).
//
// Besides the groups, every replica follows the whole node-topics table
// with partition consumers of its own (catalog.NodeView).
package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config/infisical"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/expect"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/catalog"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/ingress"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/ticker"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/workflow"
)

// Readiness conditions: /readyz is true once the topics exist, the first
// assignment of the workflow group has restored its aggregation state and
// the node-topics view has read its table to the end.
const (
	CondTopics     = "topics"
	CondRestored   = "aggregations_restored"
	CondNodeTopics = "node_topics_restored"
)

// Conditions lists the readiness conditions the service is created with.
var Conditions = []string{CondTopics, CondRestored, CondNodeTopics}

// Secrets is what the orchestrator prefetches from Infisical at boot
// (docs/configuration.md): the kafka transport's keys, optional: the bus
// reads the Kafka security ones the transport brings (TransportExtras), the
// spec's three are fetched for parity with the Python runtime.
var Secrets = infisical.Needs{
	Service:    "registration-orchestrator",
	Transports: []string{infisical.Kafka},
	Optional:   infisical.TransportKeys[infisical.Kafka],
}

// Main runs the orchestrator until SIGTERM and returns the exit code.
func Main() int {
	svc, err := service.Boot("registration-orchestrator", Secrets, Conditions...)
	if err != nil {
		return 2 // reported by Boot
	}
	s, err := LoadSettings(svc.Config)
	if err != nil {
		svc.Log.Error("invalid configuration", "error", infraerr.SanitizeError(err))
		return 2
	}
	a, err := New(svc, s)
	var cerr *contract.Error
	if errors.As(err, &cerr) {
		svc.Log.Error("refusing to start: invalid contract", "contract", s.ContractPath, "error", err.Error())
		return 2
	}
	if err != nil {
		svc.Log.Error("startup failed", "error", infraerr.SanitizeError(err))
		return 2
	}
	if err := svc.Run(a.Run, svc.SelfRegistration(service.Self{
		Type: registration.NodeKindOrchestrator, Name: "node_registration_orchestrator", Role: "registry",
		Version: envelope.SemVer{Major: 1, Minor: 0, Patch: 1},
		Capabilities: registration.NodeCapabilities{Processing: true, Routing: true,
			SupportedTypes: []string{"node-introspection", "node-registration-acked", "node-heartbeat"}},
	})); err != nil {
		return 1
	}
	return 0
}

// App is the orchestrator. Create it with New, run it with Run.
type App struct {
	svc     *service.Service
	s       Settings
	c       *contract.Contract
	policy  retry.Policy
	brokers []string
	busm    *bus.Metrics
	ingm    *ingress.Metrics

	wf    atomic.Pointer[workflow.Workflow]
	sched atomic.Pointer[ticker.Scheduler]
	cat   atomic.Pointer[catalog.Service]
	nodes atomic.Pointer[catalog.NodeView]

	mu      sync.Mutex
	runners map[string]*bus.Runner

	// assign restores the aggregations of a new workflow assignment
	// (workflow.Workflow.Assign; tests wrap it to hold the restore).
	assign func(wf *workflow.Workflow, ctx context.Context, client sarama.Client, claims map[string][]int32, timeout time.Duration) error
}

// New loads and checks the contract against the code (package expect);
// nothing is contacted until Run. A contract problem, such as a topic this
// code uses that the contract does not declare, is a *contract.Error naming
// every one.
func New(svc *service.Service, s Settings) (*App, error) {
	c, err := contract.Load(s.ContractPath, expect.Contract())
	if err != nil {
		return nil, err
	}
	policy := c.Retry()
	if s.RetryPolicy != nil {
		policy = *s.RetryPolicy
		if err := policy.Validate(); err != nil {
			return nil, fmt.Errorf("retry policy override: %w", err)
		}
	}
	return &App{svc: svc, s: s, c: c, policy: policy, brokers: bus.ParseBrokers(svc.Config.KafkaBootstrap),
		busm: bus.NewMetrics(svc.Registerer()), ingm: ingress.NewMetrics(svc.Registerer()), runners: map[string]*bus.Runner{},
		assign: (*workflow.Workflow).Assign}, nil
}

// stepTimeout is the settings' override, else the contract's.
func (a *App) stepTimeout() time.Duration {
	if a.s.StepTimeout > 0 {
		return a.s.StepTimeout
	}
	return a.c.ResultAggregation.StepTimeout()
}

// Contract returns the loaded contract.
func (a *App) Contract() *contract.Contract { return a.c }

// Workflow returns the intent router and aggregator once Run has built it.
func (a *App) Workflow() *workflow.Workflow { return a.wf.Load() }

// Scheduler returns the tick scheduler once Run has built it.
func (a *App) Scheduler() *ticker.Scheduler { return a.sched.Load() }

// NodeView returns the node-topics view once Run has built it.
func (a *App) NodeView() *catalog.NodeView { return a.nodes.Load() }

// Runner returns a consumer group runner by name (ingress:<topic>,
// workflow, catalog, scheduler, operator) once Run has built it.
func (a *App) Runner(name string) *bus.Runner {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runners[name]
}

// Ready reports whether every consumer group holds a live session.
func (a *App) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.runners) == 0 {
		return false
	}
	for _, r := range a.runners {
		if !r.Assigned() {
			return false
		}
	}
	return true
}

// pythonGroup is the Python orchestrator's effective group id for topic
// (spec 3.4), without the instance discriminator: replicas of this service
// must share a group, or every replica would consume every record.
func (a *App) pythonGroup(topic string) (string, error) {
	base, err := bus.GroupID(a.s.Env, "omnibase_infra", a.c.Name, "consume", a.c.ContractVersion.String())
	if err != nil {
		return "", err
	}
	g := base + ".__t." + topic
	if len(g) > 255 {
		return "", fmt.Errorf("consumer group id for %s is longer than 255 characters", topic)
	}
	return g, nil
}

func (a *App) fleetGroup(role string) (string, error) {
	return bus.GroupID(a.s.Env, "onex-fleet", "registration-orchestrator-"+role, "consume", a.c.ContractVersion.String())
}

// routes maps each intent type to the topic actually used.
func (a *App) routes() map[string]string {
	out := map[string]string{}
	for it, t := range a.c.IntentRouting {
		out[it] = a.s.topic(t)
	}
	return out
}

// requiredTopics are the topics that must exist before the service starts.
func (a *App) requiredTopics() []string {
	set := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			set[a.s.topic(n)] = true
		}
	}
	add(a.c.Subscribe()...)
	add(a.c.Publish()...)
	router := a.s.dlqRouter()
	for _, t := range a.c.Subscribe() {
		set[router.TopicFor(a.s.topic(t))] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Run starts every component and blocks until ctx ends, then drains: each
// consumer group finishes the record in flight and commits, the tick leader
// stops, the retry loop stops. It returns the first component failure.
func (a *App) Run(ctx context.Context) error {
	log := a.svc.Log
	log.Info("registration orchestrator starting", "contract", a.s.ContractPath, "contract_version", a.c.ContractVersion.String(),
		"env", a.s.Env, "kafka", infraerr.RedactBootstrapServers(a.svc.Config.KafkaBootstrap), "tick_interval", a.s.TickInterval.String(),
		"retry_policy_max_attempts", a.policy.MaxAttempts)
	cfg, err := bus.NewConfig(bus.Options{Brokers: a.brokers, ClientID: "registration-orchestrator", FromOldest: a.s.FromOldest})
	if err != nil {
		return err
	}
	client, err := service.WaitKafka(ctx, log, a.brokers, cfg)
	if err != nil {
		return nil // ctx ended while waiting: a stop, not a failure
	}
	defer client.Close()
	if !service.WaitTopics(ctx, log, client, a.requiredTopics()...) {
		return nil
	}
	intents, results := a.s.topic(a.c.TopicFor(expect.HandlerIntentRouter)), a.s.topic(a.c.TopicFor(expect.HandlerResults))
	if err := a.checkCoPartitioned(client, intents, results); err != nil {
		return err
	}
	a.svc.Health.Set(CondTopics, true)

	// The node-topics view starts first, so its restore overlaps the set-up
	// below and the groups' joining. Its loops are owned here: stopped and
	// awaited when Run returns, before the client closes.
	nodes := catalog.NewNodeView(catalog.NodeViewConfig{Topic: a.s.topic(topics.NodeTopics), Log: log, Registerer: a.svc.Registerer()})
	a.nodes.Store(nodes)
	vctx, stopView := context.WithCancel(ctx)
	var viewLoops sync.WaitGroup
	defer func() { stopView(); viewLoops.Wait() }()
	viewLoops.Add(2)
	go func() { defer viewLoops.Done(); nodes.Run(vctx, client) }()
	go func() {
		defer viewLoops.Done()
		select {
		case <-nodes.Ready():
			a.svc.Health.Set(CondNodeTopics, true)
		case <-vctx.Done():
		}
	}()

	producer, err := bus.NewProducer(a.brokers, cfg, a.busm)
	if err != nil {
		return err
	}
	defer producer.Close()
	// The workflow sends on a connection of its own: with one request in
	// flight per connection (idempotence), the ingress's sends and the
	// workflow's would otherwise queue behind each other.
	wfProdCfg, err := bus.NewConfig(bus.Options{Brokers: a.brokers, ClientID: "registration-orchestrator-workflow"})
	if err != nil {
		return err
	}
	wfProducer, err := bus.NewProducer(a.brokers, wfProdCfg, a.busm)
	if err != nil {
		return err
	}
	defer wfProducer.Close()
	tickCfg, err := bus.NewConfig(bus.Options{Brokers: a.brokers, ClientID: "registration-orchestrator-ticker"})
	if err != nil {
		return err
	}
	// Ticks and operator commands name their partition: a tick and an evict
	// go once to every reducer-input partition.
	tickCfg.Producer.Partitioner = sarama.NewManualPartitioner
	tickProducer, err := bus.NewProducer(a.brokers, tickCfg, a.busm)
	if err != nil {
		return err
	}
	defer tickProducer.Close()
	dlqProducer, err := sarama.NewSyncProducer(a.brokers, dlq.NewProducerConfig("registration-orchestrator-dlq"))
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "connect_producer"}, "dlq producer", err)
	}
	defer dlqProducer.Close()
	pub, err := dlq.NewPublisher(dlqProducer, a.svc.Registerer(), dlq.WithSource(a.s.Env), dlq.WithRouter(a.s.dlqRouter()))
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdmin(a.brokers, topics.NewAdminConfig("registration-orchestrator-catalog"))
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "connect_admin"}, "catalog admin", err)
	}
	defer admin.Close()

	specs := a.s.CatalogSpecs
	if specs == nil {
		specs = topics.Platform()
	}
	cat := catalog.New(catalog.Config{Specs: specs, ContractsDir: a.s.ContractsDir,
		ResponseTopic: a.s.topic(topics.TopicCatalogResponse), ChangedTopic: a.s.topic(topics.TopicCatalogChanged),
		Refresh: a.s.CatalogRefresh, Source: a.s.Env, Send: producer, Client: client, Log: log, Registerer: a.svc.Registerer(),
		Nodes: nodes, NodesWait: a.s.nodeTopicsWait(),
		Describe: func(ctx context.Context) ([]topics.TopicState, error) {
			states, err := topics.Describe(ctx, admin)
			return topics.OnNamespace(a.s.Namespace, states), err
		}})
	a.cat.Store(cat)
	tickTopic := a.s.topic(a.c.TopicFor(expect.HandlerTickLeadership))
	sched := ticker.New(ticker.Config{Interval: a.s.TickInterval, SchedulerID: a.s.SchedulerID, TickTopic: tickTopic,
		ReducerInput: a.s.topic(topics.ReducerInput), Source: a.s.Env, Send: tickProducer, Client: client, Log: log,
		OnLead: cat.Watch, Registerer: a.svc.Registerer()})
	a.sched.Store(sched)
	defer sched.Stop()
	wf := workflow.New(workflow.Config{IntentsTopic: intents, ResultsTopic: results,
		StateTopic: a.s.topic(topics.RegistrationAggregations), ResultTopic: a.s.topic(a.c.ResultAggregation.ResultTopic),
		Routes: a.routes(), AttemptIntents: a.c.ResultAggregation.AttemptIntents, Policy: a.policy, StepTimeout: a.stepTimeout(), Source: a.s.Env,
		Send: wfProducer, DLQ: pub, Log: log, Registerer: a.svc.Registerer()})
	a.wf.Store(wf)

	if a.s.RequestIntrospection {
		a.requestIntrospection(ctx, producer)
	}

	// Each consumer group gets its own sarama config: a balance strategy
	// object keeps per-group state and must not be shared between groups.
	groupCfg := func(fromOldest bool) (*sarama.Config, error) {
		return bus.NewConfig(bus.Options{Brokers: a.brokers, ClientID: "registration-orchestrator", FromOldest: fromOldest})
	}
	// The node-facing groups (ingress, catalog queries) start at the newest
	// record when they have no committed offset, by default (spec 3.4's
	// policy for "consume" groups): replaying days of old introspections
	// with received_at = now would register nodes that are long gone, and
	// the nodes that are alive announce themselves again on the request
	// published above. The internal groups start at the oldest record so no
	// intent or result is lost.
	nodeFacingFromOldest := a.s.IngressFromOldest
	// Every runner but the scheduler's sends what its handler returns,
	// dead-letters what it rejects and retries with the spec's policy; its
	// handler latency is labelled with the contract's handler name.
	dl := deadLetterer{pub}
	type runSpec struct {
		name string
		rc   bus.RunnerConfig
	}
	var specsToRun []runSpec
	registry := map[string]string{}
	for _, t := range a.c.TopicsFor(expect.HandlerIngress) {
		registry[a.s.topic(t)] = t
	}
	ing := ingress.NewHandler(registry, a.s.topic(topics.ReducerInput), a.s.Env, a.s.Limits, a.ingm)
	for _, t := range a.c.TopicsFor(expect.HandlerIngress) {
		g, err := a.pythonGroup(a.s.topic(t))
		if err != nil {
			return err
		}
		gc, err := groupCfg(nodeFacingFromOldest)
		if err != nil {
			return err
		}
		// Batches: a heartbeat crosses the orchestrator twice (here, then as
		// an intent), and one acknowledged send per record cannot keep up
		// with a fleet (docs/orchestrator.md, Throughput).
		specsToRun = append(specsToRun, runSpec{"ingress:" + t, bus.RunnerConfig{Config: gc, Group: g, Topics: []string{a.s.topic(t)},
			Handle: ing.Handle, Send: producer, DeadLetter: dl, Retry: retry.Default(), Metrics: a.busm.Handler(expect.HandlerIngress)}})
	}
	qg, err := a.pythonGroup(a.s.topic(a.c.TopicFor(expect.HandlerCatalogQuery)))
	if err != nil {
		return err
	}
	qc, err := groupCfg(nodeFacingFromOldest)
	if err != nil {
		return err
	}
	// A client waits for its answer: a query is handled with whatever is
	// already buffered, never held back for more.
	specsToRun = append(specsToRun, runSpec{"catalog", bus.RunnerConfig{Config: qc, Group: qg,
		Topics: []string{a.s.topic(a.c.TopicFor(expect.HandlerCatalogQuery))}, Handle: cat.Handle, Send: producer, DeadLetter: dl,
		Retry: retry.Default(), Linger: -1, Metrics: a.busm.Handler(expect.HandlerCatalogQuery)}})

	wfCfg, err := groupCfg(a.s.FromOldest)
	if err != nil {
		return err
	}
	// Range assigns partition p of both topics to the same member: a node's
	// results reach the instance that holds its aggregation.
	wfCfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	wg, err := a.fleetGroup("workflow")
	if err != nil {
		return err
	}
	restored := atomic.Bool{}
	specsToRun = append(specsToRun, runSpec{"workflow", bus.RunnerConfig{Config: wfCfg, Group: wg, Topics: []string{intents, results},
		Handle: wf.Handle, Send: wfProducer, DeadLetter: dl, Retry: retry.Default(),
		Metrics: a.busm.TopicHandlers(map[string]string{intents: expect.HandlerIntentRouter, results: expect.HandlerResults}),
		OnAssign: func(ctx context.Context, claims map[string][]int32) error {
			if err := a.assign(wf, ctx, client, claims, a.s.RestoreTimeout); err != nil {
				log.Warn("aggregation restore failed; rejoining", "error", infraerr.SanitizeError(err))
				return err
			}
			if !restored.Swap(true) {
				a.svc.Health.Set(CondRestored, true)
			}
			return nil
		},
		OnRevoke: func(map[string][]int32) { wf.Revoke() },
	}})
	sg, err := a.fleetGroup("scheduler")
	if err != nil {
		return err
	}
	sc, err := groupCfg(a.s.FromOldest)
	if err != nil {
		return err
	}
	// Ticks are only observed for leadership: measured, nothing sent, never
	// dead-lettered.
	specsToRun = append(specsToRun, runSpec{"scheduler", bus.RunnerConfig{Config: sc, Group: sg, Topics: []string{tickTopic},
		Handle: sched.Handle, Metrics: a.busm.Handler(expect.HandlerTickLeadership), OnAssign: sched.Assign, OnRevoke: sched.Revoke}})

	// Operator commands are the fleet's own records (onexctl, the admin
	// gRPC service): an internal group, which starts at the oldest record
	// without a committed offset so a command published while no replica
	// ran is not lost. Every command record names its partition (a
	// deregister its node's, as the node messages' hash partitioner picks
	// it; an evict one copy per partition), so they go through the tick
	// producer. Commands are rare and someone waits for each: handled with
	// whatever is buffered, never held back for more.
	og, err := a.fleetGroup("operator")
	if err != nil {
		return err
	}
	oc, err := groupCfg(a.s.FromOldest)
	if err != nil {
		return err
	}
	ops := ingress.NewOperatorHandler(ingress.OperatorConfig{ReducerInput: a.s.topic(topics.ReducerInput), Source: a.s.Env,
		MaxBytes: a.s.Limits.MaxBytes, Partitions: client, Metrics: a.ingm})
	specsToRun = append(specsToRun, runSpec{"operator", bus.RunnerConfig{Config: oc, Group: og,
		Topics: []string{a.s.topic(a.c.TopicFor(expect.HandlerOperatorCommands))}, Handle: ops.Handle, Send: tickProducer, DeadLetter: dl,
		Retry: retry.Default(), Linger: -1, Metrics: a.busm.Handler(expect.HandlerOperatorCommands)}})

	var running []*bus.Runner
	for _, sp := range specsToRun {
		sp.rc.Brokers, sp.rc.DrainTimeout, sp.rc.Log = a.brokers, a.s.DrainTimeout, log
		r, err := bus.NewRunner(sp.rc)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.runners[sp.name] = r
		a.mu.Unlock()
		running = append(running, r)
	}
	a.svc.Health.SetInFlight(func() int64 {
		var n int64
		for _, r := range running {
			n += r.InFlight()
		}
		return n
	})

	// Every loop below is owned here: it ends with ctx (or when a sibling
	// fails and cancels rctx) and is awaited before Run returns.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loops sync.WaitGroup
	errs := make(chan error, len(running)+1)
	for i, r := range running {
		loops.Add(1)
		go func() {
			defer loops.Done()
			if err := r.Run(rctx); err != nil {
				log.Error("consumer group stopped", "runner", specsToRun[i].name, "error", infraerr.SanitizeError(err))
				errs <- err
				cancel()
			}
		}()
	}
	loops.Add(1)
	go func() { defer loops.Done(); wf.RunRetries(rctx) }()
	loops.Wait()
	close(errs)
	return <-errs
}

// checkCoPartitioned fails when intents and results differ in partition
// count: the range assignor would then split a node's intents and results
// between instances and results would find no aggregation.
func (a *App) checkCoPartitioned(client sarama.Client, intents, results string) error {
	pi, err := client.Partitions(intents)
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata", Target: intents}, "partitions")
	}
	pr, err := client.Partitions(results)
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata", Target: results}, "partitions")
	}
	if len(pi) != len(pr) {
		return infraerr.Configuration(infraerr.Context{Operation: "check_topics", Target: intents},
			fmt.Sprintf("%s has %d partitions and %s has %d: they must be co-partitioned", intents, len(pi), results, len(pr)), nil)
	}
	return nil
}

// requestIntrospection publishes the registry's re-introspection request
// (spec 2.6a raw JSON) so nodes that were already running announce
// themselves again. It is best effort: a failure is logged, not fatal
// (nodes re-introspect on their own schedule too).
func (a *App) requestIntrospection(ctx context.Context, p *bus.Producer) {
	topic := a.s.topic(topics.RequestIntrospection)
	et, reason, corr, now := "REQUEST_INTROSPECTION", "registry_startup", uuid.New(), pipeline.T(time.Now())
	body, err := registration.RequestIntrospection{EventType: &et, CorrelationID: &corr, Timestamp: &now, Reason: &reason}.MarshalJSON()
	if err != nil {
		a.svc.Log.Error("re-introspection request not encoded", "error", infraerr.SanitizeError(err))
		return
	}
	err = retry.Do(ctx, retry.Default(), nil, infraerr.Retriable, nil, func(ctx context.Context, _ int) error {
		return p.Send(ctx, wire.Message(topic, "", body, a.s.Env, corr))
	})
	if err != nil {
		a.svc.Log.Warn("re-introspection request not published", "correlation_id", corr.String(), "error", infraerr.SanitizeError(err))
		return
	}
	a.svc.Log.Info("re-introspection requested", "correlation_id", corr.String(), "topic", topic)
}

// deadLetterer adapts pkg/dlq's Publisher to bus.DeadLetterer like bus.DLQ,
// and also records the spec 8.2 failure_class, which bus.DLQ leaves out:
// publisher_malformed for bad input, no_dispatcher for an intent type without
// a route (a configuration gap), consumer_error otherwise.
type deadLetterer struct{ p *dlq.Publisher }

var _ bus.DeadLetterer = deadLetterer{}

func (d deadLetterer) DeadLetter(ctx context.Context, msg *bus.Message, cause error) error {
	class := dlq.ClassConsumerError
	if k, _ := infraerr.KindOf(cause); k == infraerr.KindConfiguration {
		class = dlq.ClassNoDispatcher
	} else if infraerr.IsContent(cause) {
		class = dlq.ClassPublisherMalformed
	}
	return d.p.Publish(ctx, msg.ConsumerMessage(), dlq.Failure{Err: cause, Class: class, CorrelationID: msg.CorrelationID})
}
