// Package processor applies reducer inputs to one partition's state: it runs
// the pure decisions of package decide against the partition store, handles
// ticks through the deadline index with mass-expiry protection, and returns
// the decisions in order for the caller to encode and publish. It does no I/O,
// so the Kafka service and `onexctl reducer replay` share it.
package processor

import (
	"time"

	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

// Kind is the kind of a reducer input.
type Kind int

// Input kinds.
const (
	KindIntrospection Kind = iota + 1
	KindAck
	KindHeartbeat
	KindTick
	KindOperator
)

// Input is one decoded reducer input. Now is the decision time: the
// orchestrator's receive time for node messages, the tick's own now for ticks.
type Input struct {
	Kind          Kind
	Now           time.Time
	Introspection decide.Introspection
	Ack           decide.Ack
	Heartbeat     decide.Heartbeat
	Tick          decide.Tick
	Operator      decide.Operator
}

// Result is what one input produced.
type Result struct {
	Decisions []decide.Decision
	// Touched lists the nodes whose state changed, for snapshots.
	Touched []*decide.NodeState
}

// Processor decides inputs for one partition.
type Processor struct {
	Params    decide.Params
	Partition *state.Partition
	// MaxHold bounds mass-expiry protection: once expirations have been held
	// this long they proceed even if the share stays high, so a fleet that
	// really lost many nodes is not kept ACTIVE forever. Zero means 10 minutes.
	MaxHold time.Duration

	heldSince time.Time
}

// New returns a processor for partition p.
func New(params decide.Params, p *state.Partition) *Processor {
	return &Processor{Params: params, Partition: p}
}

// Apply decides in and updates the partition. The partition changes at
// once; a caller whose publish of the result fails must rebuild the
// partition from its snapshots before applying the inputs again.
func (p *Processor) Apply(in Input) Result {
	var d decide.Decision
	switch in.Kind {
	case KindIntrospection:
		d = decide.DecideIntrospection(p.Partition.Get(in.Introspection.NodeID), in.Introspection, in.Now, p.Params)
	case KindAck:
		d = decide.DecideAck(p.Partition.Get(in.Ack.NodeID), in.Ack, in.Now, p.Params)
	case KindHeartbeat:
		d = decide.DecideHeartbeat(p.Partition.Get(in.Heartbeat.NodeID), in.Heartbeat, in.Now, p.Params)
	case KindTick:
		return p.tick(in.Tick)
	case KindOperator:
		return p.operator(in.Operator, in.Now)
	default:
		return Result{}
	}
	var r Result
	p.record(&r, d)
	return r
}

// record adds d to r and applies it to the partition: the node's new state,
// and the change of its topic catalog entry, which needs the state before.
func (p *Processor) record(r *Result, d decide.Decision) {
	if d.Emit && d.State != nil {
		d.Topics = decide.TopicsChangeOf(p.Partition.Get(d.State.NodeID), d.State)
		p.Partition.Put(d.State)
		r.Touched = append(r.Touched, d.State)
	}
	r.Decisions = append(r.Decisions, d)
}

// operator decides an operator command: a deregister for its node, an
// evict for every node of the partition it selects, in node id order.
func (p *Processor) operator(op decide.Operator, now time.Time) Result {
	var r Result
	if !op.Evict {
		p.record(&r, decide.DecideOperator(p.Partition.Get(op.NodeID), op, now))
		return r
	}
	var due []*decide.NodeState
	p.Partition.Each(func(s *decide.NodeState) {
		if decide.EvictDue(s, op, now) {
			due = append(due, s)
		}
	})
	decide.EvictOrder(due)
	for _, s := range due {
		p.record(&r, decide.DecideOperator(s, op, now))
	}
	if len(r.Decisions) == 0 {
		r.Decisions = []decide.Decision{{Reason: "Evict selected no node"}}
	}
	return r
}

func (p *Processor) tick(t decide.Tick) Result {
	var r Result
	due := p.Partition.PopDue(t.Now)
	dueLiveness := 0
	for _, n := range due {
		if n.State == decide.Active {
			dueLiveness++
		}
	}
	recent := p.Partition.RecentExpirations(t.Now.Add(-p.Params.LivenessWindow))
	hold, share := decide.MassExpiryHold(p.Partition.Count(decide.Active), dueLiveness, recent, p.Params)
	maxHold := p.MaxHold
	if maxHold <= 0 {
		maxHold = 10 * time.Minute
	}
	if hold && p.Partition.Held && t.Now.Sub(p.heldSince) > maxHold {
		hold = false
	}
	if hold != p.Partition.Held {
		p.Partition.Held = hold
		if hold {
			p.heldSince = t.Now
		}
		r.Decisions = append(r.Decisions, decide.Decision{
			Emit:   true,
			Reason: "Mass-expiry protection changed",
			Events: []decide.Event{{
				Kind: decide.EventMassExpiry, CorrelationID: t.CorrelationID, CausationID: t.TickID, EmittedAt: t.Now,
				MassExpiry: &decide.MassExpiry{
					Partition: p.Partition.ID, Held: hold, ActiveNodes: p.Partition.Count(decide.Active),
					Expiring: dueLiveness + recent, Share: share, Threshold: p.Params.MassExpiryShare,
				},
			}},
		})
	}
	for _, n := range due {
		d := decide.DecideTimeout(n, t, p.Params, hold)
		if d.Emit {
			p.record(&r, d)
		} else {
			p.Partition.Put(d.State) // re-indexes a held node
		}
	}
	return r
}
