// Package app wires the reducer service: config, the FSM check against the
// contract, the transactional consume–decide–produce loop, health and metrics.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/config/infisical"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/expect"
	"github.com/omninode/onex-fleet/services/reducer/internal/intern"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// Readiness conditions.
const (
	condTopics   = "topics"
	condFSM      = "fsm_contract"
	condAssigned = "state_restored"
)

// HandlerName labels the reducer's handler latency
// (onex_handler_duration_seconds{handler}): one observation per batch, from
// its first record taken to its transaction committed.
const HandlerName = "registration_reducer"

// Settings are the reducer's own knobs.
type Settings struct {
	// Params default to the contract's parameters; the environment
	// overrides each (ONEX_ACK_TIMEOUT_SECONDS, ...).
	Params      decide.Params
	BatchSize   int           // ONEX_REDUCER_BATCH_SIZE (500)
	BatchLinger time.Duration // ONEX_REDUCER_BATCH_LINGER_MS (5)
	Group       string
	// Retry spaces the retries of a failed transaction and of a failed
	// state restore (the contract's error_handling.retry_policy). Neither is
	// ever given up (that would lose inputs): past MaxAttempts the delay
	// stays at its last value.
	Retry retry.Policy
	// SnapshotsTopic is where the reducer keeps and restores its state
	// (ONEX_REGISTRATION_SNAPSHOTS_TOPIC, the variable the consul effect
	// reads too; default the platform topic). `make bench` gives each run
	// its own, so no state of other fleets on the cluster is restored.
	SnapshotsTopic string
}

// ContractPath is the reducer's contract file: ONEX_REDUCER_CONTRACT, else
// $ONEX_CONTRACTS_DIR/reducer/contract.yaml.
func ContractPath(cfg *config.Config) string {
	return config.String("ONEX_REDUCER_CONTRACT", contract.Path(cfg.ContractsDir, expect.Service))
}

// LoadSettings reads the reducer's environment on top of its (checked)
// contract.
func LoadSettings(cfg *config.Config, c *contract.Contract) (Settings, error) {
	s := Settings{Params: paramsFrom(c), Retry: c.Retry()}
	var err error
	get := func(name string, unit, def time.Duration) time.Duration {
		if err != nil {
			return def
		}
		var d time.Duration
		d, err = config.Duration(name, unit, def)
		return d
	}
	s.Params.AckTimeout = get("ONEX_ACK_TIMEOUT_SECONDS", time.Second, s.Params.AckTimeout)
	s.Params.LivenessInterval = get("ONEX_LIVENESS_INTERVAL_SECONDS", time.Second, s.Params.LivenessInterval)
	s.Params.LivenessWindow = get("ONEX_LIVENESS_WINDOW_SECONDS", time.Second, s.Params.LivenessWindow)
	s.Params.AcceptedResendInitial = get("ONEX_ACCEPTED_RESEND_INITIAL_SECONDS", time.Second, s.Params.AcceptedResendInitial)
	s.Params.AcceptedResendMax = get("ONEX_ACCEPTED_RESEND_MAX_SECONDS", time.Second, s.Params.AcceptedResendMax)
	s.BatchLinger = get("ONEX_REDUCER_BATCH_LINGER_MS", time.Millisecond, 5*time.Millisecond)
	if err != nil {
		return s, err
	}
	if s.BatchSize, err = config.Int("ONEX_REDUCER_BATCH_SIZE", 500); err != nil {
		return s, err
	}
	if s.Params.MassExpiryMinActive, err = config.Int("ONEX_MASS_EXPIRY_MIN_ACTIVE", s.Params.MassExpiryMinActive); err != nil {
		return s, err
	}
	// A share is a fraction, read as such (a Duration in nanoseconds would
	// truncate 0.5 to 0).
	if s.Params.MassExpiryShare, err = config.Float("ONEX_MASS_EXPIRY_SHARE", s.Params.MassExpiryShare); err != nil {
		return s, err
	}
	if s.Params.MassExpiryShare <= 0 || s.Params.MassExpiryShare >= 1 {
		return s, fmt.Errorf("config: ONEX_MASS_EXPIRY_SHARE must be within (0,1)")
	}
	if s.Params.AcceptedResendInitial > 0 && s.Params.AcceptedResendMax < s.Params.AcceptedResendInitial {
		return s, fmt.Errorf("config: the accepted resend maximum (ONEX_ACCEPTED_RESEND_MAX_SECONDS, %s) must be at least its initial interval (ONEX_ACCEPTED_RESEND_INITIAL_SECONDS, %s)",
			s.Params.AcceptedResendMax, s.Params.AcceptedResendInitial)
	}
	if s.BatchSize < 1 {
		return s, fmt.Errorf("config: ONEX_REDUCER_BATCH_SIZE must be >= 1")
	}
	s.Group = config.String("ONEX_REDUCER_GROUP", cfg.Environment+".onex-fleet.reducer.consume.1.0.0")
	s.SnapshotsTopic = config.String("ONEX_REGISTRATION_SNAPSHOTS_TOPIC", topics.RegistrationSnapshots)
	return s, nil
}

// paramsFrom reads the decision parameters of a checked contract (Load
// guarantees every one is present and in range).
func paramsFrom(c *contract.Contract) decide.Params {
	p := c.Parameters
	seconds := func(name string) time.Duration { return time.Duration(p[name] * float64(time.Second)) }
	return decide.Params{
		AckTimeout:          seconds(expect.ParamAckTimeout),
		LivenessInterval:    seconds(expect.ParamLivenessInterval),
		LivenessWindow:      seconds(expect.ParamLivenessWindow),
		MassExpiryShare:     p[expect.ParamMassExpiryShare],
		MassExpiryMinActive: int(p[expect.ParamMassExpiryMinActive]),

		AcceptedResendInitial: seconds(expect.ParamAcceptedResendInitial),
		AcceptedResendMax:     seconds(expect.ParamAcceptedResendMax),
	}
}

// Secrets is what the reducer prefetches from Infisical at boot
// (docs/configuration.md): the kafka transport's keys, optional: the bus
// reads the Kafka security ones the transport brings (TransportExtras), the
// spec's three are fetched for parity with the Python runtime.
var Secrets = infisical.Needs{
	Service:    "reducer",
	Transports: []string{infisical.Kafka},
	Optional:   infisical.TransportKeys[infisical.Kafka],
}

// Main runs the reducer until SIGTERM and returns the process exit code.
func Main() int {
	svc, err := service.Boot("reducer", Secrets, condTopics, condFSM, condAssigned)
	if err != nil {
		return 2 // reported by Boot
	}
	path := ContractPath(svc.Config)
	c, err := contract.Load(path, expect.Contract())
	if err != nil {
		svc.Log.Error("refusing to start: invalid contract", "contract", path, "error", err.Error())
		return 2
	}
	svc.Health.Set(condFSM, true)
	settings, err := LoadSettings(svc.Config, c)
	if err != nil {
		svc.Log.Error("invalid configuration", "error", infraerr.SanitizeError(err))
		return 2
	}
	r, err := New(svc, settings)
	if err != nil {
		svc.Log.Error("startup failed", "error", infraerr.SanitizeError(err))
		return 1
	}
	if err := svc.Run(r.Run, svc.SelfRegistration(service.Self{
		Type: registration.NodeKindReducer, Name: "node_registration_reducer", Role: "registry",
		Capabilities: registration.NodeCapabilities{Processing: true,
			SupportedTypes: []string{"node-introspection", "node-registration-acked", "node-heartbeat", "runtime-tick"}},
	})); err != nil {
		return 1
	}
	return 0
}

// Reducer is the running service.
type Reducer struct {
	svc      *service.Service
	settings Settings
	brokers  []string
	metrics  *metrics
	busm     *bus.Metrics
	dlqm     *dlq.Metrics

	// restoring counts the partitions of the current session whose state
	// is not restored yet; /readyz is false until it reaches 0.
	restoring atomic.Int32
	// inflight counts the input records taken and not yet committed
	// (pending_message_count).
	inflight atomic.Int64
	// restore reads a partition's state; tests wrap it to hold a restore.
	restore func(ctx context.Context, client sarama.Client, topic string, p int32, upTo int64) (*state.Partition, int, error)
}

type metrics struct {
	inputs       *prometheus.CounterVec
	outputs      *prometheus.CounterVec
	txns         *prometheus.CounterVec
	batchSize    prometheus.Histogram
	restoreSecs  prometheus.Histogram
	nodes        *prometheus.GaugeVec
	massExpiry   *prometheus.GaugeVec
	tickDuration prometheus.Histogram
	txnSteps     *prometheus.HistogramVec
	resent       *prometheus.CounterVec
	shutdowns    prometheus.Counter
	// operators counts operator commands decided, by command and outcome
	// (applied: at least one node deregistered; no_op); operatorNodes the
	// nodes they deregistered.
	operators     *prometheus.CounterVec
	operatorNodes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_inputs_total",
			Help: "Reducer inputs by kind and outcome (emit, no_op, invalid)."}, []string{"kind", "outcome"}),
		outputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_outputs_total",
			Help: "Records the reducer published, by kind (event, intent, snapshot, dlq)."}, []string{"kind"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_transactions_total",
			Help: "Kafka transactions by outcome (committed, aborted)."}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_reducer_batch_size",
			Help: "Inputs per transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		restoreSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_reducer_restore_seconds",
			Help: "Time to restore one partition's state from snapshots.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "onex_reducer_nodes",
			Help: "Nodes per FSM state in the partitions this instance owns."}, []string{"state"}),
		massExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "onex_reducer_mass_expiry_held",
			Help: "1 while mass-expiry protection holds expirations in a partition."}, []string{"partition"}),
		tickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_reducer_tick_seconds",
			Help: "Time to decide one tick.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
		txnSteps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "onex_reducer_transaction_step_seconds",
			Help:    "Time of each step of a batch's transaction: decide (state machine and encoding), send (adding the partitions and producing), offsets (adding the input offsets), commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"step"}),
		resent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_accepted_resent_total",
			Help: "Accepted events published again for a node that had not acked yet, by the input that triggered the resend (tick, heartbeat, introspection)."}, []string{"trigger"}),
	}
	m.shutdowns = prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_reducer_shutdowns_total",
		Help: "Nodes taken out of Consul by their shutdown introspection (state liveness_expired, decision \"Node shut down\"), not by an expiry."})
	m.operators = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_operator_commands_total",
		Help: "Operator commands decided (per reducer partition for an evict), by command (deregister, evict) and outcome (applied, no_op)."},
		[]string{"command", "outcome"})
	m.operatorNodes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_operator_deregistrations_total",
		Help: "Nodes taken out of Consul by operator commands, by command (deregister, evict)."}, []string{"command"})
	reg.MustRegister(m.inputs, m.outputs, m.txns, m.batchSize, m.restoreSecs, m.nodes, m.massExpiry, m.tickDuration, m.txnSteps, m.resent, m.shutdowns,
		m.operators, m.operatorNodes)
	// The values nodes share are kept once (internal/intern); a table near
	// its bound stops sharing new ones and memory per node grows.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "onex_reducer_intern_bytes",
		Help: "Bytes of node values (type, version, capabilities, endpoint names) the reducer keeps once for all nodes; bounded at 16 MiB."},
		func() float64 { n, _ := intern.Size(); return float64(n) }))
	return m
}

// New builds the reducer.
func New(svc *service.Service, s Settings) (*Reducer, error) {
	if s.SnapshotsTopic == "" {
		s.SnapshotsTopic = topics.RegistrationSnapshots
	}
	brokers := bus.ParseBrokers(svc.Config.KafkaBootstrap)
	reg := svc.Registerer()
	dlqm, err := dlq.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := &Reducer{svc: svc, settings: s, brokers: brokers, metrics: newMetrics(reg), busm: bus.NewMetrics(reg).Handler(HandlerName),
		dlqm: dlqm, restore: restore}
	svc.Health.SetInFlight(r.inflight.Load)
	return r, nil
}

func (r *Reducer) consumerConfig() (*sarama.Config, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: r.brokers, ClientID: "reducer", FromOldest: r.svc.Config.ConsumeFromOldest})
	if err != nil {
		return nil, err
	}
	// Offsets are committed inside the output transaction, never by the
	// consumer group itself.
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	return cfg, nil
}

func (r *Reducer) producerConfig(txnID string) (*sarama.Config, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: r.brokers, ClientID: "reducer"})
	if err != nil {
		return nil, err
	}
	cfg.Producer.Transaction.ID = txnID
	// A killed instance leaves its open transaction, and with it the
	// group's offsets, unstable until the broker aborts it at this timeout:
	// the successor cannot fetch offsets and so cannot start before then. A
	// batch's transaction takes milliseconds, so a short timeout costs
	// nothing and bounds the recovery after kill -9.
	cfg.Producer.Transaction.Timeout = 10 * time.Second
	// The broker answers CONCURRENT_TRANSACTIONS to a transaction that
	// begins while the previous one's commit markers are still being
	// written, which with one transaction per batch is most of them.
	// sarama waits Retry.Backoff (100 ms by default) before asking again,
	// and that wait was most of a batch's time at low load; the Java client
	// retries this case after 20 ms. Start at 5 ms, double to 100 ms.
	cfg.Producer.Transaction.Retry.BackoffFunc = txnBackoff
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Compression = sarama.CompressionLZ4
	return cfg, cfg.Validate()
}

// txnBackoff is the wait before retry number retries of a transactional
// request: 5 ms, doubling, at most 100 ms. Asking every 3 ms instead made
// the send step slower (56 ms against 49 ms on average at 25
// registrations/s in make bench): the wait is for the previous commit's
// markers, which take tens of milliseconds on a loaded broker, and more
// requests load it further.
func txnBackoff(retries, _ int) time.Duration {
	return min(5*time.Millisecond<<min(retries, 5), 100*time.Millisecond)
}

// Run consumes until ctx ends, then drains.
func (r *Reducer) Run(ctx context.Context) error {
	cfg, err := r.consumerConfig()
	if err != nil {
		return err
	}
	client, err := service.WaitKafka(ctx, r.svc.Log, r.brokers, cfg)
	if err != nil {
		return nil // ctx ended while waiting: a stop, not a failure
	}
	defer client.Close()
	// Topics provisioned after the reducer starts (a provisioning job that
	// runs alongside the deployment) are waited for, not failed on; only a
	// layout that cannot work is fatal.
	if !service.WaitTopics(ctx, r.svc.Log, client, topics.ReducerInput, r.settings.SnapshotsTopic, topics.RegistrationIntents) {
		return nil
	}
	if err := r.checkCoPartitioned(client); err != nil {
		return err
	}
	r.svc.Health.Set(condTopics, true)
	group, err := sarama.NewConsumerGroup(r.brokers, r.settings.Group, cfg)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "join_group"}, "consumer group", err)
	}
	defer group.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for err := range group.Errors() {
			r.svc.Log.Warn("consumer group error", "error", infraerr.SanitizeError(err))
		}
	}()
	// Handlers finish the batch in flight after ctx ends; the drain deadline
	// cancels work that takes longer.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(r.svc.Config.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-work.Done():
		}
	}()
	parts, err := client.Partitions(r.settings.SnapshotsTopic)
	if err != nil {
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "metadata"}, "snapshot partitions", err)
	}
	h := &handler{r: r, work: work, partitions: int32(len(parts))}
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{topics.ReducerInput}, h); err != nil {
			if errors.Is(err, sarama.ErrClosedConsumerGroup) {
				break
			}
			r.svc.Log.Warn("consume session ended; rejoining", "error", infraerr.SanitizeError(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	cancelWork()
	group.Close()
	wg.Wait()
	return nil
}

var errNotCoPartitioned = errors.New("reducer input and snapshot topics must be co-partitioned")

// checkCoPartitioned fails when the input and snapshot topics differ in
// partition count: a partition's state lives in the snapshot partition of
// the same number (restore.go).
func (r *Reducer) checkCoPartitioned(client sarama.Client) error {
	snapshots := r.settings.SnapshotsTopic
	parts := map[string]int{}
	for _, t := range []string{topics.ReducerInput, snapshots} {
		ps, err := client.Partitions(t)
		if err != nil {
			return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "metadata", Target: t}, "partitions", err)
		}
		parts[t] = len(ps)
	}
	if parts[topics.ReducerInput] != parts[snapshots] {
		return fmt.Errorf("reducer: %w: %s has %d partitions but %s has %d",
			errNotCoPartitioned, topics.ReducerInput, parts[topics.ReducerInput], snapshots, parts[snapshots])
	}
	return nil
}

type handler struct {
	partitions int32 // of the snapshot topic
	r          *Reducer
	work       context.Context
}

// Setup counts the partitions to restore before any of them starts, so
// that /readyz turns true only when the last one is restored (an instance
// that got no partition has nothing to restore and is ready).
func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	n := len(s.Claims()[topics.ReducerInput])
	h.r.restoring.Store(int32(n))
	h.r.svc.Health.Set(condAssigned, n == 0)
	h.r.svc.Log.Info("partitions assigned", "claims", s.Claims(), "generation", s.GenerationID())
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	r := h.r
	p := c.Partition()
	log := r.svc.Log.With("partition", p)
	stop := s.Context().Done()
	// The lag is reported from the claim on, restore included: records
	// waiting behind a slow restore are lag like any other.
	pos := r.busm.Track(r.settings.Group, c)
	defer pos.Close()
	// pause waits before another attempt; false when the partition stops.
	pause := func(attempt int) bool {
		select {
		case <-stop:
			return false
		case <-h.work.Done():
			return false
		case <-time.After(r.settings.Retry.Delay(min(attempt, r.settings.Retry.MaxAttempts-1), rand.Float64())):
			return true
		}
	}

	pc, err := r.producerConfig(fmt.Sprintf("%s-p%d", r.settings.Group, p))
	if err != nil {
		return err
	}
	// Initialising the transactional producer fences the previous owner of
	// this partition and aborts its open transaction before we restore.
	var prod sarama.SyncProducer
	for attempt := 0; ; attempt++ {
		if prod, err = sarama.NewSyncProducer(r.brokers, pc); err == nil {
			break
		}
		log.Error("transactional producer; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	defer prod.Close()

	// Each claim restores over its own connection. On a shared one, the
	// fetch a finished restore leaves behind waits Consumer.MaxWaitTime
	// (500 ms) for data past the partition's end, and the broker answers a
	// connection's requests in order: every other partition's restore would
	// stall behind it, one partition after another.
	rc, err := r.consumerConfig()
	if err != nil {
		return err
	}
	tuneRestore(rc)
	var restoreClient sarama.Client
	for attempt := 0; ; attempt++ {
		if restoreClient, err = sarama.NewClient(r.brokers, rc); err == nil {
			break
		}
		log.Error("restore client; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	defer restoreClient.Close()

	var part *state.Partition
	load := func() error {
		start := time.Now()
		upTo, err := writeMarker(prod, r.settings.SnapshotsTopic, p, h.partitions)
		if err != nil {
			return err
		}
		marked := time.Now()
		pt, n, err := r.restore(s.Context(), restoreClient, r.settings.SnapshotsTopic, p, upTo)
		if err != nil {
			return err
		}
		part = pt
		r.metrics.restoreSecs.Observe(time.Since(start).Seconds())
		log.Info("state restored", "nodes", pt.Len(), "records", n, "took_ms", time.Since(start).Milliseconds(),
			"marker_ms", marked.Sub(start).Milliseconds())
		return nil
	}
	// A partition whose state cannot be restored is not consumed (and the
	// service not ready) until it can: deciding without its state would
	// register known nodes as new.
	for attempt := 0; ; attempt++ {
		err := load()
		if err == nil {
			break
		}
		log.Error("state restore failed; retrying", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return nil
		}
	}
	if r.restoring.Add(-1) == 0 {
		r.svc.Health.Set(condAssigned, true)
		releaseRestoreGarbage(log)
	}
	proc := processor.New(r.settings.Params, part)
	r.exportCounts(proc.Partition, +1)
	// proc.Partition, not part: a failed transaction replaces the partition.
	defer func() { r.exportCounts(proc.Partition, -1) }()

	meta := sarama.NewConsumerGroupMetadataFromSession(s, r.settings.Group, nil)
	for {
		batch, ok := collect(stop, c.Messages(), r.settings.BatchSize, r.settings.BatchLinger)
		if len(batch) == 0 {
			if !ok {
				return nil
			}
			continue
		}
		start := time.Now()
		pos.Taken(batch[0].Offset)
		r.inflight.Add(int64(len(batch)))
		committed := h.commitBatch(prod, proc, batch, meta, pause, log, load, &part)
		r.inflight.Add(-int64(len(batch)))
		if !committed {
			return nil
		}
		pos.Done(batch[len(batch)-1].Offset)
		r.busm.ObserveHandler(topics.ReducerInput, time.Since(start))
		if !ok {
			return nil
		}
	}
}

// commitBatch runs batch in a transaction until it commits (true) or the
// partition stops or moves (false). A failed transaction restores the
// partition's state before the batch is tried again, because the decisions
// of the aborted attempt changed it.
func (h *handler) commitBatch(prod sarama.SyncProducer, proc *processor.Processor, batch []*sarama.ConsumerMessage,
	meta *sarama.ConsumerGroupMetadata, pause func(int) bool, log *slog.Logger, load func() error, part **state.Partition) bool {
	r := h.r
	for attempt := 0; ; attempt++ {
		r.exportCounts(proc.Partition, -1)
		err := h.transact(prod, proc, batch, meta)
		r.exportCounts(proc.Partition, +1)
		if err == nil {
			return true
		}
		r.metrics.txns.WithLabelValues("aborted").Inc()
		if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
			log.Warn("producer fenced: partition moved to another instance", "error", infraerr.SanitizeError(err))
			return false
		}
		log.Warn("transaction failed; restoring partition and retrying the batch", "attempt", attempt, "error", infraerr.SanitizeError(err))
		if !pause(attempt) {
			return false
		}
		for a := 0; ; a++ {
			err := load()
			if err == nil {
				break
			}
			log.Error("state restore failed; retrying", "attempt", a, "error", infraerr.SanitizeError(err))
			if !pause(a) {
				return false
			}
		}
		r.exportCounts(proc.Partition, -1)
		proc.Partition = *part
		r.exportCounts(proc.Partition, +1)
	}
}

func (r *Reducer) exportCounts(p *state.Partition, sign float64) {
	if p == nil {
		return
	}
	for _, st := range decide.States {
		r.metrics.nodes.WithLabelValues(string(st)).Add(sign * float64(p.Count(st)))
	}
	held := 0.0
	if p.Held && sign > 0 {
		held = 1
	}
	r.metrics.massExpiry.WithLabelValues(fmt.Sprint(p.ID)).Set(held)
}

// collect waits for one message, then takes what else is ready up to max or
// until linger passes. ok is false when the claim ended.
func collect(stop <-chan struct{}, in <-chan *sarama.ConsumerMessage, max int, linger time.Duration) (batch []*sarama.ConsumerMessage, ok bool) {
	select {
	case <-stop:
		return nil, false
	case m, open := <-in:
		if !open {
			return nil, false
		}
		batch = append(batch, m)
	}
	t := time.NewTimer(linger)
	defer t.Stop()
	for len(batch) < max {
		select {
		case m, open := <-in:
			if !open {
				return batch, false
			}
			batch = append(batch, m)
		case <-t.C:
			return batch, true
		case <-stop:
			return batch, true
		}
	}
	return batch, true
}

// transact runs one batch in one Kafka transaction: decisions' events and
// intents, the touched nodes' snapshots, DLQ records for unusable inputs, and
// the input offsets all commit together or not at all.
func (h *handler) transact(prod sarama.SyncProducer, proc *processor.Processor, batch []*sarama.ConsumerMessage, meta *sarama.ConsumerGroupMetadata) error {
	r := h.r
	t0 := time.Now()
	step := func(name string) {
		now := time.Now()
		r.metrics.txnSteps.WithLabelValues(name).Observe(now.Sub(t0).Seconds())
		t0 = now
	}
	out, err := r.decideBatch(proc, batch)
	if err != nil {
		return err
	}
	step("decide")
	if err := prod.BeginTxn(); err != nil {
		return err
	}
	abort := func(cause error) error {
		if aerr := prod.AbortTxn(); aerr != nil {
			r.svc.Log.Warn("abort transaction", "error", infraerr.SanitizeError(aerr))
		}
		return cause
	}
	msgs := out.msgs
	for _, d := range out.dlq {
		msgs = append(msgs, d.rec)
	}
	if len(msgs) > 0 {
		if err := prod.SendMessages(msgs); err != nil {
			return abort(err)
		}
	}
	step("send")
	if err := prod.AddMessageToTxnWithGroupMetadata(batch[len(batch)-1], meta, nil); err != nil {
		return abort(err)
	}
	step("offsets")
	if err := prod.CommitTxn(); err != nil {
		return abort(err)
	}
	step("commit")
	r.metrics.txns.WithLabelValues("committed").Inc()
	r.metrics.batchSize.Observe(float64(len(batch)))
	for k, n := range out.counts {
		r.metrics.outputs.WithLabelValues(k).Add(float64(n))
	}
	for _, in := range out.inputs {
		r.metrics.inputs.WithLabelValues(in[0], in[1]).Inc()
	}
	for trig, n := range out.resent {
		r.metrics.resent.WithLabelValues(string(trig)).Add(float64(n))
	}
	r.metrics.shutdowns.Add(float64(out.shutdowns))
	for _, o := range out.operators {
		r.metrics.operators.WithLabelValues(o.command, o.outcome).Inc()
		r.metrics.operatorNodes.WithLabelValues(o.command).Add(float64(len(o.nodes)))
		o.log(r.svc.Log)
	}
	// The fleet-wide series, named as in every other service.
	r.busm.Consumed.WithLabelValues(topics.ReducerInput, "handled").Add(float64(len(batch) - len(out.dlq)))
	r.busm.Consumed.WithLabelValues(topics.ReducerInput, "dead_lettered").Add(float64(len(out.dlq)))
	for _, m := range out.msgs {
		r.busm.Produced.WithLabelValues(m.Topic).Inc()
	}
	for _, d := range out.dlq {
		r.dlqm.Written(topics.ReducerInput, d.rec.Topic, d.failure)
	}
	return nil
}

type batchOutput struct {
	msgs   []*sarama.ProducerMessage // events, intents, snapshots
	dlq    []dlqRecord
	counts map[string]int
	inputs [][2]string
	// resent counts the accepted events published again, by trigger.
	resent map[decide.Trigger]int
	// shutdowns counts the nodes taken out by their shutdown introspection.
	shutdowns int
	// operators are the operator commands decided, logged and counted once
	// the transaction commits.
	operators []operatorResult
}

type dlqRecord struct {
	rec     *sarama.ProducerMessage
	failure dlq.Failure
}

func (r *Reducer) decideBatch(proc *processor.Processor, batch []*sarama.ConsumerMessage) (batchOutput, error) {
	out := batchOutput{counts: map[string]int{}, resent: map[decide.Trigger]int{}}
	touched := map[uuid.UUID]*decide.NodeState{}
	var order []uuid.UUID
	source := r.svc.Config.Environment
	for _, m := range batch {
		in, kind, err := wire.DecodeRecord(m.Value)
		if err != nil {
			f := dlq.Failure{Err: err, Type: "content", Class: dlq.ClassPublisherMalformed}
			rec, derr := dlq.Build(m, f, source, time.Now())
			if derr != nil {
				return out, derr
			}
			out.dlq = append(out.dlq, dlqRecord{rec, f})
			out.counts["dlq"]++
			out.inputs = append(out.inputs, [2]string{kind, "invalid"})
			r.svc.Log.Warn("unusable reducer input dead-lettered", "offset", m.Offset, "error", infraerr.SanitizeError(err))
			continue
		}
		start := time.Now()
		res := proc.Apply(in)
		if in.Kind == processor.KindTick {
			r.metrics.tickDuration.Observe(time.Since(start).Seconds())
		}
		outcome := "no_op"
		for _, d := range res.Decisions {
			if d.Emit {
				outcome = "emit"
				if d.Reason == decide.ReasonShutDown {
					out.shutdowns++
				}
			}
			for _, e := range d.Events {
				if e.ResentBy != "" {
					out.resent[e.ResentBy]++
				}
			}
			recs, err := wire.Decision(d, in.Now)
			if err != nil {
				return out, err
			}
			for _, rec := range recs {
				out.msgs = append(out.msgs, rec.ProducerMessage(source))
				out.counts[rec.Kind]++
			}
		}
		out.inputs = append(out.inputs, [2]string{kind, outcome})
		if in.Kind == processor.KindOperator {
			out.operators = append(out.operators, operatorOutcome(in.Operator, res))
		}
		for _, st := range res.Touched {
			if _, seen := touched[st.NodeID]; !seen {
				order = append(order, st.NodeID)
			}
			touched[st.NodeID] = st
		}
	}
	now := time.Now()
	for _, id := range order {
		rec, err := wire.Snapshot(touched[id], now)
		if err != nil {
			return out, err
		}
		rec.Topic = r.settings.SnapshotsTopic
		out.msgs = append(out.msgs, rec.ProducerMessage(source))
		out.counts["snapshot"]++
	}
	return out, nil
}
