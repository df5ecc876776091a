package compacted

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// FollowTopic reports catching up once what each partition held at the
// start is read, though the last offsets are markers and one partition is
// empty, then goes on with new records until its context ends.
func TestFollowTopic(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	name := topic(t, brokers, 3, nil)
	w := newWriter(t, brokers, name)
	w.commit(0, "a", "b") // a0 b1 m2
	w.abort(0, "x")       // x3 am4
	w.send(1, "c")        // c0
	// p2 stays empty.
	client := committedClient(t, brokers)

	for _, tt := range []struct {
		name string
		from func(int32) int64
		want []string // at catching up
		next []string // after the records written then
	}{
		{"from the oldest", nil, []string{"0/a@0", "0/b@1", "1/c@0"}, []string{"0/d@5", "2/e@0"}},
		{"resumed", func(p int32) int64 { return 1 }, // past a0, c0 and e0
			[]string{"0/b@1", "0/d@5"}, []string{"0/d@6", "2/e@2"}},
		{"from past the end", func(p int32) int64 { return 100 },
			[]string{"0/a@0", "0/b@1", "0/d@5", "0/d@6", "1/c@0", "2/e@0", "2/e@2"}, []string{"0/d@7", "2/e@4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				got     []string
				atCatch []string
				caught  = make(chan struct{})
				calls   int
			)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- Reader{Client: client, Topic: name}.FollowTopic(ctx, tt.from, func() {
					mu.Lock()
					defer mu.Unlock()
					if calls++; calls == 1 {
						atCatch = slices.Sorted(slices.Values(got))
						close(caught)
					}
				}, func(m *sarama.ConsumerMessage) error {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, fmt.Sprintf("%d/%s@%d", m.Partition, m.Key, m.Offset))
					return nil
				})
			}()
			select {
			case <-caught:
			case err := <-done:
				t.Fatalf("ended before catching up: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("never caught up")
			}
			w.send(0, "d")
			w.commit(2, "e")
			want := slices.Sorted(slices.Values(append(slices.Clone(tt.want), tt.next...)))
			deadline := time.Now().Add(20 * time.Second)
			for {
				mu.Lock()
				now := slices.Sorted(slices.Values(got))
				mu.Unlock()
				if slices.Equal(now, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("followed %v, want %v", now, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ended with %v, want nil", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("did not stop with its context")
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(atCatch, tt.want) || calls != 1 {
				t.Errorf("caught up (%d calls) with %v read, want once with %v", calls, atCatch, tt.want)
			}
		})
	}
}
