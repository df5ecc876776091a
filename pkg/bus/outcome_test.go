package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// perMessage turns a per-message test function into a Handle: an error is
// the message's outcome (retry when retriable, else dead letter), and the
// first retry ends the batch.
func perMessage(f func(context.Context, *Message) error) Handle {
	return func(ctx context.Context, msgs []*Message) (Output, error) {
		out := Output{Outcomes: Outcomes(len(msgs))}
		for i, m := range msgs {
			if err := f(MessageContext(ctx, m), m); err != nil {
				out.Outcomes[i] = failed(err)
				if out.Outcomes[i].Verdict == Retry {
					return out, nil
				}
			}
		}
		return out, nil
	}
}

// fakeSession records the offsets a claim marks.
type fakeSession struct {
	ctx    context.Context
	mu     sync.Mutex
	marked []int64
}

func (s *fakeSession) Claims() map[string][]int32 { return nil }
func (s *fakeSession) MemberID() string           { return "m" }
func (s *fakeSession) GenerationID() int32        { return 1 }
func (s *fakeSession) MarkOffset(_ string, _ int32, off int64, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marked = append(s.marked, off)
}
func (s *fakeSession) Commit()                                  {}
func (s *fakeSession) ResetOffset(string, int32, int64, string) {}
func (s *fakeSession) MarkMessage(m *sarama.ConsumerMessage, _ string) {
	s.MarkOffset("", 0, m.Offset+1, "")
}
func (s *fakeSession) Context() context.Context { return s.ctx }

// sendLog is a Sender that records what it sent and fails its first
// failFirst sends.
type sendLog struct {
	failFirst int
	sends     [][]string
}

func (l *sendLog) Send(_ context.Context, msgs ...*sarama.ProducerMessage) error {
	if l.failFirst > 0 {
		l.failFirst--
		return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka}, "broker down", nil)
	}
	var vs []string
	for _, m := range msgs {
		b, _ := m.Value.Encode()
		vs = append(vs, string(b))
	}
	l.sends = append(l.sends, vs)
	return nil
}

// echo is a record carrying a message's value, what the test handlers
// produce for every message they finish.
func echo(m *Message) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: "out", Value: sarama.ByteEncoder(m.Value)}
}

func values(msgs []*Message) string {
	var vs []string
	for _, m := range msgs {
		vs = append(vs, string(m.Value))
	}
	return strings.Join(vs, ",")
}

// The runner carries out what a Handle returns: records sent before the
// batch is marked, rejected messages dead-lettered, a retried message and
// those after it handed again, a failed batch handed one message at a time,
// spent retries and panics dead-lettered. Each case runs one batch of the
// five messages 0..4 through the claim loop with a fake session.
func TestOutcomes(t *testing.T) {
	transient := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "db"}, "refused", nil)
	content := infraerr.Content("value", "poison")
	// handle builds a Handle from a function deciding each message's
	// outcome; records are produced for the messages it finishes.
	handle := func(decide func(call int, msgs []*Message, m *Message) Outcome) func(*int) Handle {
		return func(calls *int) Handle {
			return func(_ context.Context, msgs []*Message) (Output, error) {
				*calls++
				out := Output{Outcomes: Outcomes(len(msgs))}
				for i, m := range msgs {
					o := decide(*calls, msgs, m)
					out.Outcomes[i] = o
					if o.Verdict == Retry {
						break
					}
					if o.Verdict == Done {
						out.Records = append(out.Records, echo(m))
					}
				}
				return out, nil
			}
		}
	}
	tests := []struct {
		name   string
		handle func(calls *int) Handle
		send   *sendLog
		// want: the batches handed (values), what was sent, the
		// dead-letter causes' kinds, the retries counted.
		wantCalls []string
		wantSent  string
		wantDLQ   []string
		retries   float64
	}{
		{name: "all done", handle: handle(func(int, []*Message, *Message) Outcome { return Outcome{} }),
			wantCalls: []string{"0,1,2,3,4"}, wantSent: "0,1,2,3,4"},
		{name: "a rejected message is dead-lettered, the rest done", handle: handle(func(_ int, _ []*Message, m *Message) Outcome {
			if string(m.Value) == "2" {
				return Reject(content)
			}
			return Outcome{}
		}), wantCalls: []string{"0,1,2,3,4"}, wantSent: "0,1,3,4", wantDLQ: []string{"2:content"}},
		{name: "a retried message and those after it are handed again", handle: handle(func(call int, _ []*Message, m *Message) Outcome {
			if string(m.Value) == "2" && call == 1 {
				return RetryLater(transient)
			}
			return Outcome{}
		}), wantCalls: []string{"0,1,2,3,4", "2,3,4"}, wantSent: "0,1|2,3,4", retries: 1},
		{name: "spent retries dead-letter the message and move on", handle: handle(func(_ int, _ []*Message, m *Message) Outcome {
			if string(m.Value) == "2" {
				return RetryLater(transient)
			}
			return Outcome{}
		}), wantCalls: []string{"0,1,2,3,4", "2,3,4", "2,3,4", "3,4"}, wantSent: "0,1|3,4", wantDLQ: []string{"2:connection"}, retries: 2},
		{name: "a failed batch is handed one at a time, the culprit dead-lettered", handle: func(calls *int) Handle {
			return func(_ context.Context, msgs []*Message) (Output, error) {
				*calls++
				for _, m := range msgs {
					if string(m.Value) == "2" {
						return Output{Records: []*sarama.ProducerMessage{echo(msgs[0])}}, content
					}
				}
				var out Output
				for _, m := range msgs {
					out.Records = append(out.Records, echo(m))
				}
				return out, nil
			}
		}, wantCalls: []string{"0,1,2,3,4", "0", "1", "2", "3", "4"}, wantSent: "0|1|3|4", wantDLQ: []string{"2:content"}},
		{name: "a panic is never retried", handle: func(calls *int) Handle {
			return func(_ context.Context, msgs []*Message) (Output, error) {
				*calls++
				for _, m := range msgs {
					if string(m.Value) == "2" {
						panic("poison")
					}
				}
				return Output{}, nil
			}
		}, wantCalls: []string{"0,1,2,3,4", "0", "1", "2", "3", "4"}, wantDLQ: []string{"2:panic"}},
		{name: "a failed send is the batch's failure", handle: handle(func(int, []*Message, *Message) Outcome { return Outcome{} }),
			send: &sendLog{failFirst: 1}, wantCalls: []string{"0,1,2,3,4", "0", "1", "2", "3", "4"}, wantSent: "0|1|2|3|4"},
		{name: "a batch of one whose send fails is retried", handle: handle(func(int, []*Message, *Message) Outcome { return Outcome{} }),
			send: &sendLog{failFirst: 2}, wantCalls: []string{"0,1,2,3,4", "0", "0", "1", "2", "3", "4"}, wantSent: "0|1|2|3|4", retries: 1},
		{name: "outcomes that do not match the batch fail it", handle: func(calls *int) Handle {
			return func(_ context.Context, msgs []*Message) (Output, error) {
				*calls++
				return Output{Outcomes: Outcomes(1)}, nil
			}
		}, wantCalls: []string{"0,1,2,3,4", "0", "1", "2", "3", "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			var handed []string
			h := tt.handle(&calls)
			send := tt.send
			if send == nil {
				send = &sendLog{}
			}
			dl := &recordingDLQ{}
			m := NewMetrics(nil).Handler("h")
			r, err := NewRunner(RunnerConfig{Brokers: []string{"unused"}, Config: sarama.NewConfig(), Group: "g", Topics: []string{"t"},
				Handle: func(ctx context.Context, msgs []*Message) (Output, error) {
					handed = append(handed, values(msgs))
					return h(ctx, msgs)
				}, Send: send, DeadLetter: dl, Retry: fastPolicy(), Log: discardLogger(), Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			s := &fakeSession{ctx: context.Background()}
			b := &claimBatch{h: &groupHandler{r: r, work: context.Background()}, s: s, stop: make(chan struct{})}
			var msgs []*Message
			for i := range 5 {
				msgs = append(msgs, &Message{Topic: "t", Offset: int64(10 + i), Value: []byte(fmt.Sprint(i)), CorrelationID: uuid.New()})
			}
			if !b.run(msgs) {
				t.Fatal("run stopped without a stop")
			}
			if strings.Join(handed, " ") != strings.Join(tt.wantCalls, " ") {
				t.Errorf("batches handed %q, want %q", handed, tt.wantCalls)
			}
			var sent []string
			for _, s := range send.sends {
				sent = append(sent, strings.Join(s, ","))
			}
			if got := strings.Join(sent, "|"); got != tt.wantSent {
				t.Errorf("sent %q, want %q", got, tt.wantSent)
			}
			var dlq []string
			for i, c := range dl.causes {
				kind := "panic"
				if k, ok := infraerr.KindOf(c); ok {
					kind = map[infraerr.Kind]string{infraerr.KindContent: "content", infraerr.KindConnection: "connection"}[k]
				}
				dlq = append(dlq, dl.values[i]+":"+kind)
			}
			if strings.Join(dlq, " ") != strings.Join(tt.wantDLQ, " ") {
				t.Errorf("dead-lettered %q, want %q", dlq, tt.wantDLQ)
			}
			if last := s.marked[len(s.marked)-1]; last != 15 {
				t.Errorf("last marked offset %d, want 15 (every message finished)", last)
			}
			for i := 1; i < len(s.marked); i++ {
				if s.marked[i] <= s.marked[i-1] {
					t.Errorf("marks went backwards: %v", s.marked)
				}
			}
			handled, dead := testutil.ToFloat64(m.Consumed.WithLabelValues("t", "handled")), testutil.ToFloat64(m.Consumed.WithLabelValues("t", "dead_lettered"))
			if int(handled) != 5-len(tt.wantDLQ) || int(dead) != len(tt.wantDLQ) {
				t.Errorf("consumed handled=%v dead_lettered=%v, want each message counted once under its outcome", handled, dead)
			}
			if n := histogramCount(t, m.Duration.WithLabelValues("t", "h")); int(n) != len(tt.wantCalls) {
				t.Errorf("%d handler observations, want one per call (%d)", n, len(tt.wantCalls))
			}
			if got := testutil.ToFloat64(m.Retries.WithLabelValues("t")); got != tt.retries {
				t.Errorf("retries %v, want %v", got, tt.retries)
			}
		})
	}
}

// A message waiting for its retry when the claim stops is neither
// dead-lettered nor marked: the next owner gets it.
func TestRetryStopsOnShutdown(t *testing.T) {
	dl := &recordingDLQ{}
	slow := retry.Policy{MaxAttempts: 5, Initial: time.Hour, Max: time.Hour, Multiplier: 2}
	r, err := NewRunner(RunnerConfig{Brokers: []string{"unused"}, Config: sarama.NewConfig(), Group: "g", Topics: []string{"t"},
		Handle: func(_ context.Context, msgs []*Message) (Output, error) {
			out := Output{Outcomes: Outcomes(len(msgs))}
			out.Outcomes[1] = RetryLater(infraerr.New(infraerr.KindTimeout, infraerr.Context{}, "slow", nil))
			return out, nil
		}, DeadLetter: dl, Retry: slow, Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	s := &fakeSession{ctx: context.Background()}
	b := &claimBatch{h: &groupHandler{r: r, work: context.Background()}, s: s, stop: stop}
	done := make(chan bool)
	go func() {
		done <- b.run([]*Message{{Topic: "t", Offset: 7}, {Topic: "t", Offset: 8}, {Topic: "t", Offset: 9}})
	}()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	select {
	case ok := <-done:
		if ok {
			t.Fatal("run reported the batch finished")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retry wait ignored the stop")
	}
	if len(dl.causes) != 0 {
		t.Fatal("a message whose retry was interrupted by shutdown must not be dead-lettered")
	}
	if len(s.marked) != 1 || s.marked[0] != 8 {
		t.Fatalf("marked %v, want only the message before the retried one (next offset 8)", s.marked)
	}
}

// A DLQ write that fails is tried again; the message is marked only once it
// succeeded.
func TestDeadLetterWriteRetried(t *testing.T) {
	dl := &recordingDLQ{fail: 1}
	r, err := NewRunner(RunnerConfig{Brokers: []string{"unused"}, Config: sarama.NewConfig(), Group: "g", Topics: []string{"t"},
		Handle: func(_ context.Context, msgs []*Message) (Output, error) {
			return Output{Outcomes: []Outcome{Reject(errors.New("no"))}}, nil
		}, DeadLetter: dl, Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSession{ctx: context.Background()}
	b := &claimBatch{h: &groupHandler{r: r, work: context.Background()}, s: s, stop: make(chan struct{})}
	msg := &Message{Topic: "t", Offset: 3, Value: []byte("x")}
	if !b.run([]*Message{msg}) {
		t.Fatal("run stopped")
	}
	if len(dl.causes) != 1 || !msg.DeadLettered() || len(s.marked) != 1 || s.marked[0] != 4 {
		t.Fatalf("causes %v dead-lettered %v marked %v", dl.causes, msg.DeadLettered(), s.marked)
	}
}

// A handler that gives up because the claim is stopping leaves its batch to
// the next owner: it is not handed again one at a time, not dead-lettered
// and not marked, whether the handler says so with an error or with a
// Retry outcome.
func TestStoppedHandlerLeavesTheBatch(t *testing.T) {
	stopped := fmt.Errorf("effect: %w", retry.ErrStopped)
	for _, tt := range []struct {
		name string
		out  func(n int) (Output, error)
	}{
		{"error", func(int) (Output, error) { return Output{}, stopped }},
		{"retry outcome", func(n int) (Output, error) {
			out := Output{Outcomes: Outcomes(n)}
			out.Outcomes[0] = RetryLater(stopped)
			return out, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			dl := &recordingDLQ{}
			r, err := NewRunner(RunnerConfig{Brokers: []string{"unused"}, Config: sarama.NewConfig(), Group: "g", Topics: []string{"t"},
				Handle: func(_ context.Context, msgs []*Message) (Output, error) {
					calls++
					return tt.out(len(msgs))
				}, DeadLetter: dl, Retry: fastPolicy(), Log: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			s := &fakeSession{ctx: context.Background()}
			b := &claimBatch{h: &groupHandler{r: r, work: context.Background()}, s: s, stop: make(chan struct{})}
			if b.run([]*Message{{Topic: "t", Offset: 1}, {Topic: "t", Offset: 2}, {Topic: "t", Offset: 3}}) {
				t.Fatal("run reported a stopped batch finished")
			}
			if calls != 1 || len(dl.causes) != 0 || len(s.marked) != 0 {
				t.Fatalf("calls %d, dead-lettered %d, marked %v; want 1 call and nothing else", calls, len(dl.causes), s.marked)
			}
		})
	}
}
