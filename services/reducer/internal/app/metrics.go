package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/intern"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

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
	// replayed counts the input records a restore read again after the
	// last liveness checkpoint (its heartbeat replay).
	replayed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_inputs_total",
			Help: "Reducer inputs by kind and outcome (emit, no_op, invalid)."}, []string{"kind", "outcome"}),
		outputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_reducer_outputs_total",
			Help: "Records the reducer published, by kind (event, intent, snapshot, topics, liveness, dlq)."}, []string{"kind"}),
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
	m.replayed = prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_reducer_restore_replayed_inputs_total",
		Help: "Reducer input records read again by restores to re-apply the heartbeats after the last liveness checkpoint."})
	reg.MustRegister(m.inputs, m.outputs, m.txns, m.batchSize, m.restoreSecs, m.nodes, m.massExpiry, m.tickDuration, m.txnSteps, m.resent, m.shutdowns,
		m.operators, m.operatorNodes, m.replayed)
	// The values nodes share are kept once (internal/intern); a table near
	// its bound stops sharing new ones and memory per node grows.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "onex_reducer_intern_bytes",
		Help: "Bytes of node values (type, version, capabilities, endpoint names) the reducer keeps once for all nodes; bounded at 16 MiB."},
		func() float64 { n, _ := intern.Size(); return float64(n) }))
	return m
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
