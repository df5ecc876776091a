package state

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

var t0 = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

func at(sec int) *time.Time { t := t0.Add(time.Duration(sec) * time.Second); return &t }

func node(i int, st decide.State, ack, live *time.Time) *decide.NodeState {
	return &decide.NodeState{NodeID: uuid.NewSHA1(uuid.Nil, []byte{byte(i >> 8), byte(i)}), State: st, AckDeadline: ack, LivenessDeadline: live}
}

func TestPopDueOnlyReturnsDueNodesInDeadlineOrder(t *testing.T) {
	p := NewPartition(0)
	p.Put(node(1, decide.Active, nil, at(30)))
	p.Put(node(2, decide.AwaitingAck, at(10), nil))
	p.Put(node(3, decide.Active, nil, at(5)))
	p.Put(node(4, decide.AckReceived, at(1), at(1))) // no pending deadline in this state
	p.Put(node(5, decide.Active, nil, at(20)))

	due := p.PopDue(*at(20)) // strict: the node due at 20 is not due yet
	if len(due) != 2 || due[0].NodeID != node(3, "", nil, nil).NodeID || due[1].NodeID != node(2, "", nil, nil).NodeID {
		t.Fatalf("due = %v, want nodes 3 then 2", ids(due))
	}
	if again := p.PopDue(*at(20)); len(again) != 0 {
		t.Fatalf("popped nodes came back without a Put: %v", ids(again))
	}
	if next, ok := p.NextDeadline(); !ok || !next.Equal(*at(20)) {
		t.Fatalf("next deadline = %v, want %v", next, at(20))
	}
}

func TestPutMovesAndClearsDeadlines(t *testing.T) {
	p := NewPartition(0)
	n := node(1, decide.Active, nil, at(10))
	p.Put(n)
	moved := n.Clone()
	moved.LivenessDeadline = at(100) // a heartbeat moved it
	p.Put(moved)
	if due := p.PopDue(*at(50)); len(due) != 0 {
		t.Fatalf("stale deadline still indexed: %v", ids(due))
	}
	stamped := moved.Clone()
	stamped.LivenessTimeoutEmittedAt = at(101)
	p.Put(stamped)
	if due := p.PopDue(*at(1000)); len(due) != 0 {
		t.Fatal("a node whose timeout marker is stamped must never be due again")
	}
	if p.Count(decide.Active) != 1 || p.Len() != 1 {
		t.Fatalf("counts wrong: active=%d len=%d", p.Count(decide.Active), p.Len())
	}
}

// A node awaiting its ack has one pending deadline: the earlier of its next
// accepted resend and its ack deadline.
func TestPendingDeadlineOfANodeAwaitingItsAck(t *testing.T) {
	withResend := func(st decide.State, resend *time.Time) *decide.NodeState {
		n := node(1, st, at(30), nil)
		n.LastStateChangeAt = *at(0)
		n.NextResendAt = resend
		return n
	}
	stamped := withResend(decide.AwaitingAck, at(2))
	stamped.AckTimeoutEmittedAt = at(31)
	for _, tc := range []struct {
		name string
		s    *decide.NodeState
		want *time.Time
	}{
		{"resend before the deadline", withResend(decide.AwaitingAck, at(6)), at(6)},
		{"accepted state", withResend(decide.Accepted, at(2)), at(2)},
		{"resend at the deadline", withResend(decide.AwaitingAck, at(30)), at(30)},
		{"resend after the deadline", withResend(decide.AwaitingAck, at(38)), at(30)},
		{"no schedule (older snapshot): due at once", withResend(decide.AwaitingAck, nil), at(0)},
		{"timed out", stamped, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := PendingDeadline(tc.s)
			if tc.want == nil {
				if ok {
					t.Fatalf("pending deadline %v, want none", got)
				}
				return
			}
			if !ok || !got.Equal(*tc.want) {
				t.Fatalf("pending deadline %v %v, want %v", got, ok, *tc.want)
			}
		})
	}
	// Re-indexed when a resend moves the schedule.
	p := NewPartition(0)
	n := withResend(decide.AwaitingAck, at(2))
	p.Put(n)
	if due := p.PopDue(*at(3)); len(due) != 1 {
		t.Fatalf("due at t+3: %v", ids(due))
	}
	moved := n.Clone()
	moved.NextResendAt = at(6)
	p.Put(moved)
	if due := p.PopDue(*at(5)); len(due) != 0 {
		t.Fatalf("due before the next resend: %v", ids(due))
	}
	if next, _ := p.NextDeadline(); !next.Equal(*at(6)) {
		t.Fatalf("next deadline %v, want the next resend", next)
	}
}

func TestRecentExpirations(t *testing.T) {
	p := NewPartition(0)
	for i := 0; i < 3; i++ {
		n := node(i, decide.Active, nil, at(i))
		p.Put(n)
		e := n.Clone()
		e.State = decide.LivenessExpired
		e.LivenessTimeoutEmittedAt = at(10 * i)
		p.Put(e)
	}
	if got := p.RecentExpirations(*at(5)); got != 2 {
		t.Fatalf("recent expirations after t+5 = %d, want 2", got)
	}
	if p.Count(decide.LivenessExpired) != 3 || p.Count(decide.Active) != 0 {
		t.Fatal("state counts not maintained")
	}
}

func ids(ns []*decide.NodeState) []uuid.UUID {
	var out []uuid.UUID
	for _, n := range ns {
		out = append(out, n.NodeID)
	}
	return out
}

func BenchmarkPopDueNoneDue100k(b *testing.B) {
	p := NewPartition(0)
	for i := 0; i < 100_000; i++ {
		p.Put(&decide.NodeState{NodeID: uuid.New(), State: decide.Active, LivenessDeadline: at(1000 + i%500)})
	}
	now := *at(10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(p.PopDue(now)) != 0 {
			b.Fatal("unexpected due")
		}
	}
}
