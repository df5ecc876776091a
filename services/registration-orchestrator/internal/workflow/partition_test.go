package workflow

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// gatedSender blocks every Send that carries a record of the gated node
// until release is closed, and reports the first one blocked on entered.
// gated is set before the goroutines that send start.
type gatedSender struct {
	gated   string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	inner   sender
}

// open releases the blocked sends, once; tests also call it on cleanup so
// that a failed test leaves no goroutine blocked.
func (g *gatedSender) open() { g.once.Do(func() { close(g.release) }) }

func newGatedSender() *gatedSender {
	return &gatedSender{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *gatedSender) Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error {
	for _, m := range msgs {
		if k, _ := m.Key.Encode(); g.gated != "" && string(k) == g.gated {
			select {
			case g.entered <- struct{}{}:
			default: // one report is all a test waits for
			}
			<-g.release
			break
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inner.Send(ctx, msgs...)
}

// calls returns a copy of the sends so far.
func (g *gatedSender) calls() [][]*sarama.ProducerMessage {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.inner.calls)
}

// openDueRetry opens node's registration attempt on partition p at the
// workflow's time (t0 in these tests) and answers it with a consul success
// and a retriable postgres failure: the postgres re-send is due a second
// later (the policy's first delay, no jitter).
func openDueRetry(t *testing.T, w *Workflow, node uuid.UUID, p int32) {
	t.Helper()
	attempt := uuid.New()
	for i, typ := range []string{pipeline.PostgresUpsert, pipeline.ConsulRegister} {
		m := intentMsg(t, node, typ, int64(i+1), attempt)
		m.Partition = p
		mustHandle(t, w, m)
	}
	for _, r := range []struct {
		backend string
		ok      bool
	}{{"consul", true}, {"postgres", false}} {
		m := resultMsg(t, w, node, r.backend, 0, r.ok)
		m.Partition = p
		mustHandle(t, w, m)
	}
	if agg, ok := w.InFlight(node); !ok || agg.Intents["postgres"].NextRetryAt == nil {
		t.Fatalf("no postgres retry scheduled: %+v (in flight %v)", agg, ok)
	}
}

// A batch waiting for its send holds only its own partition: another
// partition's batch is routed meanwhile, while a batch of the same
// partition's results and the retry loop's work on the partition's nodes
// wait until the send is over.
func TestBatchSendHoldsOnlyItsPartition(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	g := newGatedSender()
	t.Cleanup(g.open)
	cfg := attemptConfig(g, noDLQ{})
	cfg.Routes[pipeline.PostgresUpdate] = "pg"
	w := New(cfg)
	clock := t0
	w.now, w.rand = func() time.Time { return clock }, half
	openDueRetry(t, w, a, 0)
	clock = t0.Add(2 * time.Second) // a's re-send is due
	before := len(g.calls())
	g.gated = a.String()

	ma := intentMsg(t, a, pipeline.PostgresUpdate, 10, uuid.Nil)
	ma.Partition = 0
	mb := intentMsg(t, b, pipeline.PostgresUpdate, 2, uuid.Nil)
	mb.Partition = 1

	errs := make(chan error, 1)
	go func() { errs <- handled(w, ma) }()
	<-g.entered // partition 0 is in its send

	done := make(chan error, 1)
	go func() { done <- handled(w, mb) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("partition 1: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("partition 1's batch waited for partition 0's send")
	}

	// A batch of partition 0's results waits too.
	res, err := wire.Envelope(pipeline.EffectResult{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Backend: "postgres",
		NodeID: a, RegistrationAttemptID: uuid.New(), Sequence: 1, Attempt: 1, Success: true}, "results", uuid.New(), uuid.New(), "EffectResult", "event")
	if err != nil {
		t.Fatal(err)
	}
	single := make(chan error, 1)
	go func() {
		single <- handled(w, &bus.Message{Topic: "results", Partition: 0, Key: []byte(a.String()), Value: res})
	}()

	retried := make(chan struct{})
	go func() { w.retryPass(context.Background()); close(retried) }()
	select {
	case <-retried:
		t.Fatal("the retry loop handled a's due re-send while partition 0's batch was between its decision and its send's outcome")
	case err := <-single:
		t.Fatalf("a result of partition 0 was handled (%v) while partition 0's batch waited for its send", err)
	case <-time.After(100 * time.Millisecond):
	}
	if got := len(g.calls()) - before; got != 1 {
		t.Fatalf("%d sends while partition 0's batch waited, want partition 1's only", got)
	}
	g.open()
	if err := <-single; err != nil {
		t.Fatalf("partition 0's results: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("partition 0: %v", err)
	}
	select {
	case <-retried:
	case <-time.After(5 * time.Second):
		t.Fatal("the retry loop never ran")
	}
	// The two batches, then a's re-send and its state.
	if got := len(g.calls()) - before; got != 4 {
		t.Fatalf("sends: got %d, want 4", got)
	}
}

// The retry loop's re-send waiting for the broker holds only the lock of
// its node's partition, not the workflow's nor the other partitions': a
// batch of intents or results of another partition, a read of the state
// and a revocation go on meanwhile; a result of the node's own partition
// waits for the re-send's outcome. A revocation during the send drops the
// aggregation, and the retry loop then records nothing for it.
func TestRetrySendHoldsOnlyItsPartition(t *testing.T) {
	cases := []struct {
		name string
		// act returns what runs while the re-send of a (partition 0)
		// waits for the broker; b's records are on partition 1.
		act func(t *testing.T, w *Workflow, a, b uuid.UUID) func() error
		// waits: act must wait for the re-send's outcome.
		waits bool
		// revoked: a is dropped during the send; no state of a follows
		// the re-send and a is no longer in flight.
		revoked bool
		// after checks the workflow once everything is done.
		after func(t *testing.T, w *Workflow, a, b uuid.UUID)
	}{
		{
			name: "batch of another partition",
			act: func(t *testing.T, w *Workflow, _, b uuid.UUID) func() error {
				m := intentMsg(t, b, pipeline.PostgresUpsert, 1, uuid.New())
				m.Partition = 1
				return func() error { return handled(w, m) }
			},
			after: inFlight("b", func(_, b uuid.UUID) uuid.UUID { return b }, true),
		},
		{
			name: "results of another partition",
			act: func(t *testing.T, w *Workflow, _, b uuid.UUID) func() error {
				// b's attempt in flight on partition 1, answered while a's
				// re-send waits: it finishes.
				var msgs []*bus.Message
				attempt := uuid.New()
				for i, typ := range []string{pipeline.PostgresUpsert, pipeline.ConsulRegister} {
					m := intentMsg(t, b, typ, int64(i+1), attempt)
					m.Partition = 1
					msgs = append(msgs, m)
				}
				mustHandle(t, w, msgs...)
				msgs = nil
				for _, backend := range []string{"postgres", "consul"} {
					m := resultMsg(t, w, b, backend, 0, true)
					m.Partition = 1
					msgs = append(msgs, m)
				}
				return func() error { return handled(w, msgs...) }
			},
			after: inFlight("b", func(_, b uuid.UUID) uuid.UUID { return b }, false),
		},
		{
			name: "state read",
			act: func(_ *testing.T, w *Workflow, a, _ uuid.UUID) func() error {
				return func() error {
					if _, ok := w.InFlight(a); !ok {
						return errors.New("a is not in flight")
					}
					return nil
				}
			},
		},
		{
			name: "revocation",
			act: func(_ *testing.T, w *Workflow, _, _ uuid.UUID) func() error {
				return func() error { w.Revoke(); return nil }
			},
			revoked: true,
			after:   inFlight("a", func(a, _ uuid.UUID) uuid.UUID { return a }, false),
		},
		{
			name: "result of the node's own partition",
			act: func(t *testing.T, w *Workflow, a, _ uuid.UUID) func() error {
				// The re-sent delivery's success: handled after the re-send
				// was recorded, it settles the attempt.
				m := resultMsg(t, w, a, "postgres", 1, true)
				m.Partition = 0
				return func() error { return handled(w, m) }
			},
			waits: true,
			after: inFlight("a", func(a, _ uuid.UUID) uuid.UUID { return a }, false),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := uuid.New(), uuid.New()
			g := newGatedSender()
			t.Cleanup(g.open)
			w := New(attemptConfig(g, noDLQ{}))
			clock := t0
			w.now, w.rand = func() time.Time { return clock }, half
			openDueRetry(t, w, a, 0)
			act := c.act(t, w, a, b)
			clock = t0.Add(2 * time.Second) // a's re-send is due
			before := len(g.calls())
			g.gated = a.String()

			passed := make(chan struct{})
			go func() { w.retryPass(context.Background()); close(passed) }()
			select {
			case <-g.entered: // the re-send waits for the broker
			case <-time.After(5 * time.Second):
				t.Fatal("the retry loop did not re-send a's due intent")
			}
			done := make(chan error, 1)
			go func() { done <- act() }()
			if c.waits {
				select {
				case err := <-done:
					t.Fatalf("done (%v) while the retry loop's send for the partition's node was in flight", err)
				case <-time.After(100 * time.Millisecond):
				}
			} else {
				select {
				case err := <-done:
					done <- err // read again below
				case <-time.After(5 * time.Second):
					t.Fatal("waited for the retry loop's send on another partition")
				}
			}
			g.open()
			select {
			case <-passed:
			case <-time.After(5 * time.Second):
				t.Fatal("the retry pass did not finish")
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still waiting after the retry loop's send")
			}

			// a's re-send (attempt 1) went out; its state follows it
			// unless a was revoked meanwhile.
			calls := g.calls()[before:]
			resent, persisted := -1, -1
			for i, call := range calls {
				for _, m := range call {
					if k, _ := m.Key.Encode(); string(k) != a.String() || m.Value == nil {
						continue // another node's, or a tombstone
					}
					v, _ := m.Value.Encode()
					switch m.Topic {
					case "pg":
						env, err := envelope.Decode(v)
						if err != nil {
							t.Fatal(err)
						}
						in, err := pipeline.DecodeIntent(env.Payload)
						if err != nil {
							t.Fatal(err)
						}
						if in.Attempt == 1 && resent < 0 {
							resent = i
						}
					case "state":
						if agg, err := decodeState(m); err == nil && agg.Intents["postgres"].Attempt == 1 && persisted < 0 {
							persisted = i
						}
					}
				}
			}
			if resent < 0 {
				t.Fatal("a's intent was not re-sent")
			}
			if c.revoked != (persisted < 0) {
				t.Fatalf("state of a with the re-send: at send %d (re-send at %d), revoked %v", persisted, resent, c.revoked)
			}
			if c.after != nil {
				c.after(t, w, a, b)
			}
		})
	}
}

// inFlight checks that the node which picks is in flight (want) or not.
func inFlight(name string, which func(a, b uuid.UUID) uuid.UUID, want bool) func(t *testing.T, w *Workflow, a, b uuid.UUID) {
	return func(t *testing.T, w *Workflow, a, b uuid.UUID) {
		t.Helper()
		if _, ok := w.InFlight(which(a, b)); ok != want {
			t.Fatalf("%s in flight %v, want %v", name, ok, want)
		}
	}
}
