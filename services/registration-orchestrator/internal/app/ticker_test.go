package app

import (
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
)

type tickRec struct {
	partition int32
	offset    int64
	tick      *registration.RuntimeTick
	received  time.Time
}

// ticksOn returns the ticks seen on the reducer input, per partition, in
// offset order.
func (h *harness) ticksOn(t *testing.T, schedulerID string) map[int32][]tickRec {
	t.Helper()
	out := map[int32][]tickRec{}
	for _, m := range h.seen(h.topic(topics.ReducerInput), keyIs(schedulerID)) {
		ri, err := pipeline.DecodeReducerInput(m.Headers, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if ri.Topic != topics.RuntimeTick {
			t.Fatalf("tick record with topic %q", ri.Topic)
		}
		tk, err := registration.DecodeTick(ri.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[m.Partition] = append(out[m.Partition], tickRec{m.Partition, m.Offset, tk, ri.ReceivedAt.Time})
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].offset < rs[j].offset })
	}
	return out
}

// TestTicksOneLeaderAmongReplicas runs two orchestrators: exactly one leads,
// every reducer-input partition gets one tick per interval (never two ticks
// closer than half an interval, sequence numbers consecutive), and when the
// leader stops the other takes over and continues the sequence.
func TestTicksOneLeaderAmongReplicas(t *testing.T) {
	h := newHarness(t)
	h.watch(h.topic(topics.ReducerInput))
	h.watch(h.topic(topics.RuntimeTick))
	s := h.settings()
	s.TickInterval = 400 * time.Millisecond
	s.RequestIntrospection = false
	a := h.start(s)
	b := h.start(s)
	// Both are in every group now; let the rebalance caused by b's joining
	// settle before counting.
	h.eventually(30*time.Second, "exactly one leader", func() bool {
		return a.app.Scheduler().Leading() != b.app.Scheduler().Leading()
	})
	time.Sleep(2 * s.TickInterval)

	parts, err := testClient(t, h).Partitions(h.topic(topics.ReducerInput))
	if err != nil {
		t.Fatal(err)
	}
	// The window lasts until every partition saw minTicks ticks: a slow
	// broker acknowledgement holds the leader's loop (the tick waits for
	// its ack; on the 2-core CI machine, with every server on it, gaps of
	// 3-4 s occur), so a fixed window would count the machine, not the
	// leadership. Two leaders show as more ticks than the window's
	// intervals allow, whatever its length.
	const minTicks = 5
	from := time.Now()
	inWindow := func(rs []tickRec, to time.Time) []tickRec {
		var out []tickRec
		for _, r := range rs {
			if !r.received.Before(from) && r.received.Before(to) {
				out = append(out, r)
			}
		}
		return out
	}
	h.eventually(60*time.Second, "the leader ticks on every partition", func() bool {
		all := h.ticksOn(t, s.SchedulerID)
		for _, p := range parts {
			if len(inWindow(all[p], time.Now())) < minTicks {
				return false
			}
		}
		return true
	})
	to := time.Now()
	if a.app.Scheduler().Leading() == b.app.Scheduler().Leading() {
		t.Fatal("leadership not exclusive during the window")
	}

	all := h.ticksOn(t, s.SchedulerID)
	maxTicks := int(to.Sub(from)/s.TickInterval) + 1
	for _, p := range parts {
		// More than one tick per interval would mean two leaders.
		if n := len(inWindow(all[p], to)); n < minTicks || n > maxTicks {
			t.Errorf("partition %d: %d ticks in %s (%d intervals)", p, n, to.Sub(from).Round(time.Millisecond), maxTicks-1)
		}
		checkCadence(t, p, all[p], s.TickInterval)
	}
	// The parity copy on the tick topic: one per tick.
	if n := len(h.seen(h.topic(topics.RuntimeTick), keyIs(s.SchedulerID))); n < len(all[parts[0]]) {
		t.Errorf("%d parity ticks for %d ticks", n, len(all[parts[0]]))
	}

	leader, follower := a, b
	if b.app.Scheduler().Leading() {
		leader, follower = b, a
	}
	before := len(all[parts[0]])
	lastSeq := all[parts[0]][before-1].tick.SequenceNumber
	leader.stop()
	h.eventually(30*time.Second, "the other replica takes over", func() bool { return follower.app.Scheduler().Leading() })
	h.eventually(10*time.Second, "ticks resume", func() bool { return len(h.ticksOn(t, s.SchedulerID)[parts[0]]) >= before+3 })
	after := h.ticksOn(t, s.SchedulerID)
	for _, p := range parts {
		checkCadence(t, p, after[p], s.TickInterval)
	}
	if next := after[parts[0]][before].tick.SequenceNumber; next <= lastSeq {
		t.Errorf("new leader restarted the sequence at %d after %d", next, lastSeq)
	}
}

// checkCadence fails when two consecutive ticks of a partition are closer
// than half an interval (two leaders) or go backwards in sequence.
func checkCadence(t *testing.T, p int32, rs []tickRec, interval time.Duration) {
	t.Helper()
	var longest time.Duration
	defer func() { t.Logf("partition %d: %d ticks, longest gap %s", p, len(rs), longest) }()
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		gap := cur.tick.Now.Sub(prev.tick.Now.Time)
		longest = max(longest, gap)
		if gap < interval/2 {
			t.Errorf("partition %d: ticks %d and %d only %s apart (two leaders?)", p, prev.tick.SequenceNumber, cur.tick.SequenceNumber, gap)
		}
		if cur.tick.SequenceNumber <= prev.tick.SequenceNumber {
			t.Errorf("partition %d: sequence %d after %d", p, cur.tick.SequenceNumber, prev.tick.SequenceNumber)
		}
		if cur.tick.TickIntervalMs != int(interval/time.Millisecond) {
			t.Errorf("tick_interval_ms %d", cur.tick.TickIntervalMs)
		}
	}
}

func testClient(t *testing.T, h *harness) sarama.Client {
	t.Helper()
	c, err := sarama.NewClient(h.brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
