package compacted

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// Each case reads one partition laid out for it; the comments give the
// offsets as the broker assigns them (m: a commit marker, am: an abort
// marker).
func TestReadPartition(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	name := topic(t, brokers, 8, nil)
	w := newWriter(t, brokers, name)
	// p0 stays empty.
	w.commit(1, "a", "b", "c")                                  // a0 b1 c2 m3
	w.commit(2, "a", "b")                                       // a0 b1 m2
	w.abort(2, "x", "y")                                        // x3 y4 am5
	w.commit(3, "a")                                            // a0 m1
	w.abort(3, "x")                                             // x2 am3
	w.commit(3, "b")                                            // b4 m5
	w.send(4, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j") // a0 … j9
	w.commit(5, "a", "b")                                       // a0 b1 m2
	w.commit(5, "c")                                            // c3 m4
	w.send(6, "a", "b", "c", "d", "e")                          // a0 … e4; retention removes a0 … c2
	w.begin(7, "x")                                             // x0
	w.send(7, "a")                                              // a1, not in the transaction
	w.end(false)                                                // am2
	admin, err := sarama.NewClusterAdmin(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.DeleteRecords(name, map[int32]int64{6: 3}); err != nil {
		t.Fatal(err)
	}

	r := Reader{Client: committedClient(t, brokers), Topic: name}
	tests := []struct {
		name      string
		p         int32
		from, end int64
		want      []string
	}{
		{"empty partition", 0, sarama.OffsetOldest, sarama.OffsetNewest, nil},
		{"empty range", 4, 5, 5, nil},
		{"commit marker at the end", 1, sarama.OffsetOldest, sarama.OffsetNewest, []string{"a@0", "b@1", "c@2"}},
		{"aborted transaction at the end", 2, sarama.OffsetOldest, sarama.OffsetNewest, []string{"a@0", "b@1"}},
		{"aborted transaction in the middle", 3, sarama.OffsetOldest, sarama.OffsetNewest, []string{"a@0", "b@4"}},
		{"from an aborted record", 3, 2, sarama.OffsetNewest, []string{"b@4"}},
		{"end in the middle", 4, sarama.OffsetOldest, 5, []string{"a@0", "b@1", "c@2", "d@3", "e@4"}},
		{"from and end in the middle", 4, 3, 5, []string{"d@3", "e@4"}},
		{"end at a commit marker", 5, sarama.OffsetOldest, 3, []string{"a@0", "b@1"}},
		{"from before what retention kept", 6, 0, sarama.OffsetNewest, []string{"d@3", "e@4"}},
		{"oldest after retention", 6, sarama.OffsetOldest, sarama.OffsetNewest, []string{"d@3", "e@4"}},
		{"plain record within an aborted transaction", 7, sarama.OffsetOldest, sarama.OffsetNewest, []string{"a@1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A read that waited for a marker to be delivered would hang
			// until this deadline and fail.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var got []string
			n, err := r.ReadPartition(ctx, tt.p, tt.from, tt.end, collect(&got))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) || n != len(tt.want) {
				t.Errorf("read %v (n=%d), want %v", got, n, tt.want)
			}
		})
	}
}

// A range that reaches into a transaction still open is complete only when
// the transaction ends: committed, its records are handed; aborted, not.
func TestReadPartitionWaitsForOpenTransaction(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	for _, tt := range []struct {
		name   string
		commit bool
		want   []string
	}{
		{"committed", true, []string{"a@0", "x@1", "y@2"}},
		{"aborted", false, []string{"a@0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := topic(t, brokers, 1, nil)
			w := newWriter(t, brokers, name)
			w.send(0, "a")
			w.begin(0, "x", "y")
			r := Reader{Client: committedClient(t, brokers), Topic: name, Settle: 50 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			type result struct {
				got []string
				err error
				at  time.Time
			}
			done := make(chan result, 1)
			go func() {
				var got []string
				_, err := r.ReadPartition(ctx, 0, sarama.OffsetOldest, sarama.OffsetNewest, collect(&got))
				done <- result{got, err, time.Now()}
			}()
			time.Sleep(time.Second) // several checks find the transaction open
			ended := time.Now()
			w.end(tt.commit)
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.at.Before(ended) {
				t.Errorf("read ended before the transaction did")
			}
			if !slices.Equal(res.got, tt.want) {
				t.Errorf("read %v, want %v", res.got, tt.want)
			}
		})
	}
}

// A read ends early, with an error, when its context ends, when it stalls,
// or when its callback fails; what was handed until then is counted.
func TestReadPartitionStops(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	name := topic(t, brokers, 1, nil)
	newWriter(t, brokers, name).send(0, "a", "b", "c")
	client := committedClient(t, brokers)
	errStop := errors.New("stop")
	tests := []struct {
		name    string
		r       Reader
		timeout time.Duration
		fn      func(*sarama.ConsumerMessage) error
		end     int64
		n       int
		check   func(error) bool
	}{
		{"context ends", Reader{Client: client, Topic: name}, 500 * time.Millisecond, nil, 10, 3,
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"stall", Reader{Client: client, Topic: name, Stall: 300 * time.Millisecond}, 20 * time.Second, nil, 10, 3,
			func(err error) bool {
				k, _ := infraerr.KindOf(err)
				return k == infraerr.KindTimeout && !errors.Is(err, context.DeadlineExceeded)
			}},
		{"callback fails", Reader{Client: client, Topic: name}, 20 * time.Second,
			func(m *sarama.ConsumerMessage) error {
				if m.Offset == 1 {
					return errStop
				}
				return nil
			}, sarama.OffsetNewest, 2,
			func(err error) bool { return err == errStop }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			fn := tt.fn
			if fn == nil {
				fn = func(*sarama.ConsumerMessage) error { return nil }
			}
			start := time.Now()
			n, err := tt.r.ReadPartition(ctx, 0, sarama.OffsetOldest, tt.end, fn)
			if !tt.check(err) || n != tt.n {
				t.Fatalf("n=%d err=%v after %s", n, err, time.Since(start))
			}
		})
	}
}
