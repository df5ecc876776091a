package workflow

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/wire"
)

// gatedSender blocks every Send that carries a record of the gated node
// until release is closed, and reports each send on sent.
type gatedSender struct {
	gated   string
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	inner   sender
}

func (g *gatedSender) Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error {
	for _, m := range msgs {
		if k, _ := m.Key.Encode(); string(k) == g.gated {
			g.entered <- struct{}{}
			<-g.release
			break
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inner.Send(ctx, msgs...)
}

// A batch waiting for its send holds only its own partition: another
// partition's batch is routed meanwhile, and the retry loop (which may touch
// any node) waits until the send is over.
func TestBatchSendHoldsOnlyItsPartition(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	g := &gatedSender{gated: a.String(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	cfg := attemptConfig(g, noDLQ{})
	cfg.Routes[pipeline.PostgresUpdate] = "pg"
	w := New(cfg)

	ma := intentMsg(t, a, pipeline.PostgresUpdate, 1, uuid.Nil)
	ma.Partition = 0
	mb := intentMsg(t, b, pipeline.PostgresUpdate, 2, uuid.Nil)
	mb.Partition = 1

	errs := make(chan error, 1)
	go func() { errs <- w.HandleBatch(context.Background(), []*bus.Message{ma}) }()
	<-g.entered // partition 0 is in its send

	done := make(chan error, 1)
	go func() { done <- w.HandleBatch(context.Background(), []*bus.Message{mb}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("partition 1: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("partition 1's batch waited for partition 0's send")
	}

	// A result of partition 0 handled alone (a batch's fallback) waits too.
	res, err := wire.Envelope(pipeline.EffectResult{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Backend: "postgres",
		NodeID: a, RegistrationAttemptID: uuid.New(), Sequence: 1, Attempt: 1, Success: true}, "results", uuid.New(), uuid.New(), "EffectResult", "event")
	if err != nil {
		t.Fatal(err)
	}
	single := make(chan error, 1)
	go func() {
		single <- w.Handle(context.Background(), &bus.Message{Topic: "results", Partition: 0, Key: []byte(a.String()), Value: res})
	}()

	retried := make(chan struct{})
	go func() { w.retryPass(context.Background()); close(retried) }()
	select {
	case <-retried:
		t.Fatal("the retry loop ran while partition 0's batch was between its decision and its send's outcome")
	case err := <-single:
		t.Fatalf("a result of partition 0 was handled (%v) while partition 0's batch waited for its send", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	if err := <-single; err != nil {
		t.Fatalf("result handled alone: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("partition 0: %v", err)
	}
	select {
	case <-retried:
	case <-time.After(5 * time.Second):
		t.Fatal("the retry loop never ran")
	}
	if got := len(g.inner.calls); got != 2 {
		t.Fatalf("sends: got %d, want 2", got)
	}
}
