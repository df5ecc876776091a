package processor

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

var t0 = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

// activate registers and acks n nodes at t0 and returns their ids.
func activate(t testing.TB, p *Processor, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.NewSHA1(uuid.Nil, []byte(fmt.Sprint("node", i)))
		p.Apply(Input{Kind: KindIntrospection, Now: t0, Introspection: decide.Introspection{
			NodeID: ids[i], NodeType: "effect", NodeVersion: "1.0.0", Capabilities: json.RawMessage(`{}`),
			CorrelationID: uuid.NewSHA1(ids[i], []byte("c"))}})
		r := p.Apply(Input{Kind: KindAck, Now: t0, Ack: decide.Ack{NodeID: ids[i], CommandID: uuid.New()}})
		if !r.Decisions[0].Emit {
			t.Fatalf("node %d not activated: %s", i, r.Decisions[0].Reason)
		}
	}
	return ids
}

func heartbeat(p *Processor, id uuid.UUID, at time.Time) {
	p.Apply(Input{Kind: KindHeartbeat, Now: at, Heartbeat: decide.Heartbeat{NodeID: id, Timestamp: at}})
}

func tick(p *Processor, at time.Time) Result {
	return p.Apply(Input{Kind: KindTick, Now: at, Tick: decide.Tick{TickID: uuid.New(), Now: at}})
}

func count(r Result, k decide.EventKind) (n int, last *decide.Event) {
	for _, d := range r.Decisions {
		for i, e := range d.Events {
			if e.Kind == k {
				n++
				last = &d.Events[i]
			}
		}
	}
	return
}

func TestMassExpiryHoldsThenResumes(t *testing.T) {
	p := New(decide.DefaultParams(), state.NewPartition(3))
	ids := activate(t, p, 40)
	// Half the fleet keeps heartbeating; the other half goes silent, as it
	// would if those nodes lost the broker.
	for s := 30; s <= 120; s += 30 {
		for _, id := range ids[:20] {
			heartbeat(p, id, t0.Add(time.Duration(s)*time.Second))
		}
	}
	r := tick(p, t0.Add(61*time.Second)) // the silent half is past its 60 s deadline
	n, ev := count(r, decide.EventMassExpiry)
	if n != 1 || !ev.MassExpiry.Held || ev.MassExpiry.Partition != 3 {
		t.Fatalf("want one held event, got %d (%+v)", n, ev)
	}
	if n, _ := count(r, decide.EventLivenessExpired); n != 0 {
		t.Fatalf("%d nodes expired while held", n)
	}
	// Further ticks neither expire nor repeat the event.
	r = tick(p, t0.Add(62*time.Second))
	if a, _ := count(r, decide.EventMassExpiry); a != 0 {
		t.Fatal("held event repeated on the next tick")
	}
	if p.Partition.Count(decide.Active) != 40 {
		t.Fatal("nodes left ACTIVE while held")
	}
	// Heartbeats return for all but two of the silent nodes: protection
	// lifts and only those two expire.
	for _, id := range ids[:38] {
		heartbeat(p, id, t0.Add(125*time.Second))
	}
	r = tick(p, t0.Add(126*time.Second))
	if n, ev := count(r, decide.EventMassExpiry); n != 1 || ev.MassExpiry.Held {
		t.Fatalf("want one resumed event, got %d %+v", n, ev)
	}
	if n, _ := count(r, decide.EventLivenessExpired); n != 2 {
		t.Fatalf("expired %d nodes after resume, want 2", n)
	}
}

func TestSmallFleetExpiresNormally(t *testing.T) {
	p := New(decide.DefaultParams(), state.NewPartition(0))
	activate(t, p, 10) // below the 20-node minimum
	r := tick(p, t0.Add(61*time.Second))
	if n, _ := count(r, decide.EventLivenessExpired); n != 10 {
		t.Fatalf("small fleet: %d expired, want all 10", n)
	}
	if n, _ := count(r, decide.EventMassExpiry); n != 0 {
		t.Fatal("small fleet must not trigger protection")
	}
	// A duplicate tick (two orchestrators ticking) emits nothing new.
	if r = tick(p, t0.Add(61*time.Second)); len(r.Decisions) != 0 {
		t.Fatalf("duplicate tick produced %d decisions", len(r.Decisions))
	}
}

func TestMassExpiryMaxHold(t *testing.T) {
	p := New(decide.DefaultParams(), state.NewPartition(0))
	p.MaxHold = time.Minute
	activate(t, p, 30)
	tick(p, t0.Add(61*time.Second)) // everyone silent: held
	if !p.Partition.Held {
		t.Fatal("not held")
	}
	r := tick(p, t0.Add(200*time.Second))
	if n, _ := count(r, decide.EventLivenessExpired); n != 30 {
		t.Fatalf("after the max hold %d expired, want 30", n)
	}
}

func TestAckTimeoutThroughTick(t *testing.T) {
	p := New(decide.DefaultParams(), state.NewPartition(0))
	id := uuid.New()
	p.Apply(Input{Kind: KindIntrospection, Now: t0, Introspection: decide.Introspection{NodeID: id, NodeType: "compute", CorrelationID: uuid.New()}})
	if n, _ := count(tick(p, t0.Add(30*time.Second)), decide.EventAckTimedOut); n != 0 || p.Partition.Get(id).State != decide.AwaitingAck {
		t.Fatal("ack timed out at exactly the deadline (must be strictly after)")
	}
	r := tick(p, t0.Add(31*time.Second))
	if n, _ := count(r, decide.EventAckTimedOut); n != 1 || p.Partition.Get(id).State != decide.AckTimedOut {
		t.Fatalf("ack timeout not applied: %d events, state %s", n, p.Partition.Get(id).State)
	}
	// Late ack is refused; a new introspection re-registers.
	if r := p.Apply(Input{Kind: KindAck, Now: t0.Add(32 * time.Second), Ack: decide.Ack{NodeID: id}}); r.Decisions[0].Reason != "Ack too late" {
		t.Fatalf("late ack: %s", r.Decisions[0].Reason)
	}
	r = p.Apply(Input{Kind: KindIntrospection, Now: t0.Add(33 * time.Second), Introspection: decide.Introspection{NodeID: id, NodeType: "compute", CorrelationID: uuid.New()}})
	if !r.Decisions[0].Emit || p.Partition.Get(id).State != decide.AwaitingAck {
		t.Fatal("node in ack_timed_out did not re-register")
	}
}

// Ticks every second re-emit the accepted event of a node awaiting its ack
// on the schedule (after 2, 6, 14, 22 s) through the deadline index, with
// the attempt's correlation id and deadline, until the deadline passes; a
// tick in between finds nothing due. An ack stops them.
func TestAcceptedResendsThroughTicks(t *testing.T) {
	p := New(decide.DefaultParams(), state.NewPartition(0))
	silent, acking := uuid.NewSHA1(uuid.Nil, []byte("silent")), uuid.NewSHA1(uuid.Nil, []byte("acking"))
	for _, id := range []uuid.UUID{silent, acking} {
		p.Apply(Input{Kind: KindIntrospection, Now: t0, Introspection: decide.Introspection{NodeID: id, NodeType: "compute",
			CorrelationID: uuid.NewSHA1(id, []byte("c")), HandlerCorrelationID: uuid.NewSHA1(id, []byte("h"))}})
	}
	want := map[int]bool{3: true, 7: true, 15: true, 23: true}
	var resent []int
	for s := 1; s <= 31; s++ {
		if s == 5 { // the second node acks after its first resend
			if r := p.Apply(Input{Kind: KindAck, Now: t0.Add(5 * time.Second), Ack: decide.Ack{NodeID: acking, CommandID: uuid.New()}}); !r.Decisions[0].Emit {
				t.Fatalf("ack: %s", r.Decisions[0].Reason)
			}
		}
		at := t0.Add(time.Duration(s) * time.Second)
		if next, ok := p.Partition.NextDeadline(); want[s] || s == 31 {
			if !ok || !next.Before(at) {
				t.Fatalf("t0+%ds: next deadline %v, want one due", s, next)
			}
		} else if ok && next.Before(at) {
			t.Fatalf("t0+%ds: a node is due (%v) though nothing is to be done", s, next)
		}
		r := tick(p, at)
		for _, d := range r.Decisions {
			for _, e := range d.Events {
				if e.Kind != decide.EventAccepted {
					continue
				}
				if e.NodeID != silent && s > 5 {
					t.Fatalf("t0+%ds: accepted re-sent to the node that acked", s)
				}
				if e.NodeID == silent {
					resent = append(resent, s)
				}
				if e.CorrelationID != uuid.NewSHA1(e.NodeID, []byte("h")) || !e.AckDeadline.Equal(t0.Add(30*time.Second)) || !e.EmittedAt.Equal(at) || e.ResentBy != decide.TriggerTick {
					t.Fatalf("t0+%ds: resend %+v", s, e)
				}
			}
			if len(d.Events) > 0 && d.Events[0].Kind == decide.EventAccepted && len(r.Touched) == 0 {
				t.Fatal("a resend must snapshot the node (its schedule moved)")
			}
		}
		if s == 31 {
			if n, _ := count(r, decide.EventAckTimedOut); n != 1 {
				t.Fatalf("no ack timeout after the deadline")
			}
		}
	}
	if fmt.Sprint(resent) != "[3 7 15 23]" {
		t.Fatalf("accepted re-sent at t0+%v s, want [3 7 15 23]", resent)
	}
	if st := p.Partition.Get(acking); st.State != decide.Active || st.NextResendAt != nil {
		t.Fatalf("acking node %s, next resend %v", st.State, st.NextResendAt)
	}
}

// A tick of a partition holding 100,000 ACTIVE nodes, none of them due: what
// the reducer pays every tick interval on a quiet fleet (target ≤ 1 ms,
// docs/performance.md). The tick looks at the deadline index only.
func BenchmarkTickNoneDue100k(b *testing.B) {
	p := New(decide.DefaultParams(), state.NewPartition(0))
	activate(b, p, 100_000)
	at := t0.Add(time.Second)
	tk := decide.Tick{TickID: uuid.New(), Now: at}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := p.Apply(Input{Kind: KindTick, Now: at, Tick: tk}); len(r.Decisions) != 0 {
			b.Fatalf("tick decided %d things, want none due", len(r.Decisions))
		}
	}
}
