package antientropy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

// Drift kinds (label values of onex_consul_drift_total).
const (
	DriftMissing = "missing"
	DriftOrphan  = "orphan"
	DriftChanged = "changed"
)

// Report is what one pass found and did.
type Report struct {
	Desired, Present          int
	Missing, Changed, Orphans int
	Skipped                   int // in flight: an intent is newer than the view
	Failed                    int // writes that failed
}

// Reconciler compares the view with what the registrar's Store holds in
// Consul (the agent's services in agent mode, the catalog in catalog
// mode). Create it with NewReconciler.
type Reconciler struct {
	view  *View
	store effect.Store
	reg   *effect.Registrar
	owns  func(uuid.UUID) bool
	grace time.Duration
	log   *slog.Logger
	// parallel bounds the writes of a pass at once.
	parallel int

	drift    *prometheus.CounterVec
	runs     *prometheus.CounterVec
	duration prometheus.Histogram
	desired  prometheus.Gauge
}

// NewReconciler returns a reconciler writing through reg and reading reg's
// Store. owns tells whether this instance currently owns a node (its
// partition of the intents topic is assigned here), so that two instances
// never reconcile the same node; grace is how long a service this instance
// just wrote from an intent newer than the view is protected from being
// taken for an orphan; parallel bounds a pass's writes at once
// (ONEX_CONSUL_PARALLELISM). Metrics are registered on preg.
func NewReconciler(view *View, reg *effect.Registrar, owns func(uuid.UUID) bool, grace time.Duration, parallel int, log *slog.Logger, preg prometheus.Registerer) *Reconciler {
	r := &Reconciler{view: view, store: reg.Store(), reg: reg, owns: owns, grace: grace, parallel: parallel, log: log,
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_drift_total",
			Help: "Differences anti-entropy found between the registry and Consul, by kind (missing, orphan, changed)."}, []string{"kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_reconcile_total",
			Help: "Anti-entropy passes by outcome (ok, error)."}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "onex_consul_reconcile_duration_seconds",
			Help: "Duration of one anti-entropy pass.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{Name: "onex_consul_desired_services",
			Help: "Services the registry wants in Consul (nodes owned by this instance) at the last pass."}),
	}
	for _, k := range []string{DriftMissing, DriftOrphan, DriftChanged} {
		r.drift.WithLabelValues(k)
	}
	if preg != nil {
		preg.MustRegister(r.drift, r.runs, r.duration, r.desired)
	}
	return r
}

// Run reconciles every interval until ctx ends. It waits for the view to
// catch up first, then reconciles at once and on every tick.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) error {
	select {
	case <-ctx.Done():
		return nil
	case <-r.view.Ready():
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("anti-entropy pass failed", "error", infraerr.SanitizeError(err))
		}
		r.reg.Prune(r.grace + interval)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Reconcile runs one pass, its writes up to the reconciler's parallelism
// at once (the registrations first, then the orphans). Per node it holds
// the registrar's node lock and skips any node an intent wrote since
// Consul was listed, so a pass never undoes an intent. The rules:
//   - desired and absent (in catalog mode: absent from the node's own
//     catalog node) → register (missing), unless this instance deregistered
//     it at a newer sequence than the view has;
//   - desired and different → register (changed), unless the service carries
//     a newer sequence than the view (an intent ahead of the snapshot);
//   - onex-tagged, of this environment (or of none), not desired where it
//     is → deregister (orphan), unless this instance registered it from a
//     newer intent within the grace period; in catalog mode also an
//     external node of this environment that holds nothing.
//
// It returns an error when Consul could not be listed or a write hit an
// open breaker (the pass stops there); other failed writes are counted in the
// report, and everything is tried again on the next pass.
func (r *Reconciler) Reconcile(ctx context.Context) (Report, error) {
	start := time.Now()
	var rep Report
	gen := r.reg.Gen()
	listed, err := r.store.List(ctx)
	if err != nil {
		r.runs.WithLabelValues("error").Inc()
		return rep, err
	}
	byID := map[string][]*effect.Current{}
	for _, c := range listed {
		if c.Service != nil {
			rep.Present++
			byID[c.Service.ID] = append(byID[c.Service.ID], c)
		}
	}
	// Every desired node counts, owned here or not: another instance's
	// node is not this instance's orphan.
	desired := map[string]uuid.UUID{}
	desiredNodes := map[uuid.UUID]bool{}
	ensures := newWrites(ctx, r.parallel)
	for _, e := range r.view.Desired() {
		desired[e.Consul.ServiceID] = e.NodeID
		desiredNodes[e.NodeID] = true
		if !r.owns(e.NodeID) {
			continue
		}
		rep.Desired++
		var cur *effect.Current
		for _, c := range byID[e.Consul.ServiceID] {
			if r.store.Holds(c, e.NodeID) {
				cur = c
				break
			}
		}
		if !ensures.start(func(rep *Report) error { return r.ensure(ctx, e, cur, gen, rep) }) {
			break
		}
	}
	done, err := ensures.wait()
	rep.add(done)
	if err != nil {
		return r.abort(rep, err)
	}
	// Orphans after every desired service is in place: a node whose service
	// moved (its type changed) gets the new one before the old one goes.
	orphans := newWrites(ctx, r.parallel)
	for _, c := range listed {
		if c.Service == nil {
			// An empty catalog node: the service of a desired node is being
			// registered on it (or is missing and registered above).
			if id, ok := c.NodeID(); ok && desiredNodes[id] {
				continue
			}
		} else if node, ok := desired[c.Service.ID]; ok && r.store.Holds(c, node) {
			continue
		}
		if !r.ours(c) {
			continue
		}
		if !orphans.start(func(rep *Report) error { return r.orphan(ctx, c, gen, rep) }) {
			break
		}
	}
	done, err = orphans.wait()
	rep.add(done)
	if err != nil {
		return r.abort(rep, err)
	}
	r.desired.Set(float64(rep.Desired))
	r.runs.WithLabelValues("ok").Inc()
	r.duration.Observe(time.Since(start).Seconds())
	if rep.Missing+rep.Changed+rep.Orphans > 0 || rep.Failed > 0 {
		r.log.Info("anti-entropy drift", "desired", rep.Desired, "present", rep.Present, "missing", rep.Missing,
			"changed", rep.Changed, "orphans", rep.Orphans, "skipped", rep.Skipped, "failed", rep.Failed)
	}
	return rep, nil
}

// ours reports whether a listed service (or empty catalog node) is this
// fleet's to remove: it carries this environment's onex-env, or none at all
// (a stray).
func (r *Reconciler) ours(c *effect.Current) bool {
	env, ok := c.Env()
	return !ok || env == r.reg.Env()
}

// abort ends a pass whose writes hit an open breaker: the remaining writes
// would fail the same way, one log line each.
func (r *Reconciler) abort(rep Report, err error) (Report, error) {
	r.runs.WithLabelValues("error").Inc()
	return rep, err
}

// stopPass reports whether a failed write should end the pass.
func stopPass(err error) bool {
	k, _ := infraerr.KindOf(err)
	return k == infraerr.KindUnavailable || errors.Is(err, context.Canceled)
}

func (r *Reconciler) ensure(ctx context.Context, e Entry, cur *effect.Current, gen uint64, rep *Report) error {
	d, err := effect.Build(e.NodeID, e.Sequence, r.reg.Env(), e.Consul)
	if err != nil {
		r.log.Warn("snapshot has an unusable consul derivation", "node_id", e.NodeID.String(), "error", infraerr.SanitizeError(err))
		rep.Failed++
		return nil
	}
	if cur != nil && r.store.Same(cur, d) {
		return nil
	}
	defer r.reg.Lock(e.NodeID)()
	m, marked := r.reg.MarkOf(e.NodeID)
	if marked && m.Gen > gen {
		rep.Skipped++
		return nil
	}
	kind := DriftMissing
	if cur != nil {
		kind = DriftChanged
		if seq, _ := cur.Sequence(); seq > e.Sequence {
			rep.Skipped++
			return nil
		}
	} else if marked && m.Deregistered && m.Sequence > e.Sequence {
		rep.Skipped++
		return nil
	}
	r.drift.WithLabelValues(kind).Inc()
	if kind == DriftMissing {
		rep.Missing++
	} else {
		rep.Changed++
	}
	log := r.log.With("node_id", e.NodeID.String(), "service_id", d.Reg.ID, "drift", kind, "sequence", e.Sequence)
	if err := r.reg.Ensure(ctx, cur, d); err != nil {
		rep.Failed++
		if stopPass(err) {
			return err
		}
		log.Warn("anti-entropy register failed", "error", infraerr.SanitizeError(err))
		return nil
	}
	log.Info("anti-entropy registered service")
	return nil
}

func (r *Reconciler) orphan(ctx context.Context, c *effect.Current, gen uint64, rep *Report) error {
	node, hasNode := c.NodeID()
	if hasNode {
		if !r.owns(node) {
			return nil
		}
		defer r.reg.Lock(node)()
		if m, ok := r.reg.MarkOf(node); ok {
			if m.Gen > gen {
				rep.Skipped++
				return nil
			}
			var viewSeq int64
			if e, ok := r.view.Get(node); ok {
				viewSeq = e.Sequence
			}
			if !m.Deregistered && m.Sequence > viewSeq && time.Since(m.At) < r.grace {
				rep.Skipped++
				return nil
			}
		}
	}
	r.drift.WithLabelValues(DriftOrphan).Inc()
	rep.Orphans++
	log := r.log.With("service_id", c.ID(), "drift", DriftOrphan)
	if c.Node != "" {
		log = log.With("consul_node", c.Node)
	}
	if hasNode {
		log = log.With("node_id", node.String())
	}
	if err := r.reg.Remove(ctx, c); err != nil {
		rep.Failed++
		if stopPass(err) {
			return err
		}
		log.Warn("anti-entropy deregister failed", "error", infraerr.SanitizeError(err))
		return nil
	}
	log.Info("anti-entropy removed orphan service")
	return nil
}
