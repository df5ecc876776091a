// Package effect applies consul.register and consul.deregister intents to
// Consul, through the agent or the catalog API (Store), and answers each
// with one pipeline.EffectResult.
//
// Guarantees, the same in both modes:
//   - Idempotent: a register whose service already is in Consul exactly as
//     asked (sequence meta aside) and at the same or a newer sequence writes
//     nothing; deregistering a missing service succeeds.
//   - Sequence guard: an intent older than the sequence the service carries
//     (onex-sequence meta), or older than the node's last deregistration
//     seen by this process, is skipped and reported Stale (a success).
//   - Single-shot: one attempt per intent; a failure (or an open breaker)
//     becomes a failed result, never a retry here (spec 6.4).
//   - Per node, intents and anti-entropy writes are serialized by a lock, so
//     the read–compare–write of one never interleaves with the other's.
//   - Written state (catalog mode): after a register, the registrar keeps
//     what it left in Consul for the node and compares the node's next
//     intent with that instead of reading Consul again. A write computed
//     from it that Consul refuses (the service was removed behind the
//     fleet's back) is redone once from a fresh read. What else changes
//     behind the fleet's back is anti-entropy's to repair, as between any
//     read and write. The state is dropped on every partition revocation
//     (Forget), so a node written meanwhile by another instance is read
//     again.
package effect

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// Outcome is what applying an intent did.
type Outcome string

// Outcomes. Applied, Unchanged and Stale are successes.
const (
	Applied   Outcome = "applied"
	Unchanged Outcome = "unchanged"
	Stale     Outcome = "stale"
	Failed    Outcome = "failed"
)

// Result is the outcome of one apply; Err is set (classified, unsanitized)
// exactly when Outcome is Failed.
type Result struct {
	Outcome Outcome
	Err     error
}

// Registrar writes services to its Store under the guards above. It is
// safe for concurrent use.
type Registrar struct {
	store Store
	env   string
	locks [64]sync.Mutex

	mu    sync.Mutex
	gen   uint64
	marks map[uuid.UUID]Mark

	writes *prometheus.CounterVec
	// known counts the registers compared with the written state instead of
	// a read (used), and those of them whose write Consul refused (stale).
	known *prometheus.CounterVec
}

// Mark is what the registrar remembers of its last intent write for a node.
type Mark struct {
	// Gen is the registrar's write counter at the write; anti-entropy
	// compares it with Gen() taken before it listed Consul.
	Gen uint64
	// At is when the write happened.
	At time.Time
	// Sequence is the sequence that was written.
	Sequence int64
	// Deregistered is true when the write removed the service.
	Deregistered bool
	// Written is what Consul holds for the node's service after the write
	// (catalog mode, registers only; nil: not known, read it).
	Written *Current
}

// NewRegistrar returns a registrar writing to store. env is written to the
// onex-env meta. Its counter onex_consul_writes_total{op} is registered on
// reg (nil: not registered).
func NewRegistrar(store Store, env string, reg prometheus.Registerer) *Registrar {
	r := &Registrar{store: store, env: env, marks: map[uuid.UUID]Mark{},
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_writes_total",
			Help: "Service registrations and deregistrations written to Consul, by op and source (intent, anti_entropy)."},
			[]string{"op", "source"}),
		known: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_written_state_total",
			Help: "Registers compared with the state the effect last wrote instead of a read of Consul (catalog mode): used; stale counts those whose write Consul refused, redone from a read."},
			[]string{"outcome"})}
	if reg != nil {
		reg.MustRegister(r.writes, r.known)
	}
	return r
}

// Env is the environment written to onex-env.
func (r *Registrar) Env() string { return r.env }

// Store is where the registrar writes.
func (r *Registrar) Store() Store { return r.store }

// Lock serializes work on one node; it returns the unlock function.
func (r *Registrar) Lock(node uuid.UUID) func() {
	h := fnv.New32a()
	_, _ = h.Write(node[:])
	m := &r.locks[h.Sum32()%uint32(len(r.locks))]
	m.Lock()
	return m.Unlock
}

// Gen returns the current write counter.
func (r *Registrar) Gen() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// MarkOf returns the registrar's last write for node.
func (r *Registrar) MarkOf(node uuid.UUID) (Mark, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.marks[node]
	return m, ok
}

func (r *Registrar) mark(node uuid.UUID, seq int64, dereg bool, written *Current) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	if old, ok := r.marks[node]; ok && old.Sequence > seq {
		// Keep the newest sequence: an anti-entropy write at an older
		// snapshot sequence must not lower the deregistration guard.
		seq = old.Sequence
	}
	r.marks[node] = Mark{Gen: r.gen, At: time.Now(), Sequence: seq, Deregistered: dereg, Written: written}
}

// forgetWritten drops what the registrar knows of node's state in Consul,
// so that its next intent reads it.
func (r *Registrar) forgetWritten(node uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.marks[node]; ok {
		m.Written = nil
		r.marks[node] = m
	}
}

// Forget drops the written state of every node: the instance is losing
// partitions, whose nodes another instance may write before they come
// back. The marks themselves stay (the deregistration guard and
// anti-entropy's grace are about this instance's own writes).
func (r *Registrar) Forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, m := range r.marks {
		if m.Written != nil {
			m.Written = nil
			r.marks[id] = m
		}
	}
}

// written returns the state the registrar last wrote for node's service
// serviceID, if it knows it.
func (r *Registrar) written(node uuid.UUID, serviceID string) (*Current, bool) {
	m, ok := r.MarkOf(node)
	if !ok || m.Written == nil || m.Written.Service == nil || m.Written.Service.ID != serviceID {
		return nil, false
	}
	return m.Written, true
}

// Prune forgets marks older than age, bounding memory to the nodes written
// recently. Anti-entropy calls it once per pass.
func (r *Registrar) Prune(age time.Duration) {
	cut := time.Now().Add(-age)
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, m := range r.marks {
		if m.At.Before(cut) {
			delete(r.marks, id)
		}
	}
}

// Register applies a consul.register for d.NodeID at d.Sequence. It
// compares d with the state it last wrote for the node when it knows it
// (Mark.Written), else with a read of Consul.
func (r *Registrar) Register(ctx context.Context, d *Desired) Result {
	defer r.Lock(d.NodeID)()
	if m, ok := r.MarkOf(d.NodeID); ok && m.Deregistered && m.Sequence > d.Sequence {
		return Result{Outcome: Stale}
	}
	cur, known := r.written(d.NodeID, d.Reg.ID)
	if known {
		r.known.WithLabelValues("used").Inc()
	}
	for {
		if !known {
			var err error
			if cur, err = r.store.Get(ctx, d.NodeID, d.Reg.ID); err != nil {
				return Result{Outcome: Failed, Err: err}
			}
		}
		if cur != nil {
			seq, _ := cur.Sequence()
			if seq > d.Sequence {
				return Result{Outcome: Stale}
			}
			// A newer sequence with the same data is still written: the meta must
			// carry it, or an older intent delayed behind it would pass the guard.
			if seq == d.Sequence && r.store.Same(cur, d) {
				if known {
					// A redelivery: Consul may have lost what was written
					// since, and nothing written would tell. Read it.
					known = false
					continue
				}
				return Result{Outcome: Unchanged}
			}
		}
		err := r.store.Put(ctx, cur, d)
		if err == nil {
			break
		}
		if known {
			r.forgetWritten(d.NodeID)
			// Consul refused a write computed from the written state: what it
			// holds is not that state any more. Anything else (Consul down, a
			// timeout) a read would not change.
			if errors.As(err, new(*backend.TxnRolledBack)) {
				r.known.WithLabelValues("stale").Inc()
				known = false
				continue
			}
		}
		return Result{Outcome: Failed, Err: err}
	}
	r.writes.WithLabelValues("register", "intent").Inc()
	var after *Current
	if p, ok := r.store.(Predictor); ok {
		after = p.AfterPut(cur, d)
	}
	r.mark(d.NodeID, d.Sequence, false, after)
	return Result{Outcome: Applied}
}

// Deregister applies a consul.deregister of serviceID for node at seq.
func (r *Registrar) Deregister(ctx context.Context, node uuid.UUID, seq int64, serviceID string) Result {
	defer r.Lock(node)()
	cur, err := r.store.Get(ctx, node, serviceID)
	if err != nil {
		return Result{Outcome: Failed, Err: err}
	}
	if cur == nil {
		r.mark(node, seq, true, nil)
		return Result{Outcome: Unchanged}
	}
	if s, ok := cur.Sequence(); ok && s > seq {
		return Result{Outcome: Stale}
	}
	if err := r.store.Delete(ctx, cur); err != nil {
		return Result{Outcome: Failed, Err: err}
	}
	r.writes.WithLabelValues("deregister", "intent").Inc()
	r.mark(node, seq, true, nil)
	return Result{Outcome: Applied}
}

// Ensure is anti-entropy's write: it registers d over cur (nil: absent;
// the caller holds the node's lock and has decided the service is missing
// or differs).
func (r *Registrar) Ensure(ctx context.Context, cur *Current, d *Desired) error {
	// Whatever the outcome, Consul differed from what the registrar last
	// wrote, or may now.
	r.forgetWritten(d.NodeID)
	if err := r.store.Put(ctx, cur, d); err != nil {
		return err
	}
	// No mark: the write comes from the view, so there is nothing newer than
	// the view to protect, and the service's own onex-sequence meta guards
	// against older intents.
	r.writes.WithLabelValues("register", "anti_entropy").Inc()
	return nil
}

// Remove is anti-entropy's removal of an orphan (a service, or an empty
// catalog node of this fleet). It leaves no mark: the orphan is not the
// node's desired service (or the node is not desired at all), so there is
// no newer intent for it to guard against.
func (r *Registrar) Remove(ctx context.Context, cur *Current) error {
	if node, ok := cur.NodeID(); ok {
		r.forgetWritten(node)
	}
	if err := r.store.Delete(ctx, cur); err != nil {
		return err
	}
	r.writes.WithLabelValues("deregister", "anti_entropy").Inc()
	return nil
}
