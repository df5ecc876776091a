package compacted

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// ReadTopic reads every partition to the end it had at the start, in
// parallel or one after another; records written meanwhile are not read.
func TestReadTopic(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	name := topic(t, brokers, 3, nil)
	w := newWriter(t, brokers, name)
	// p0 stays empty.
	w.commit(1, "a", "b") // a0 b1 m2
	w.abort(1, "x")       // x3 am4
	w.send(2, "c", "d")   // c0 d1
	w.commit(2, "e")      // e2 m3
	want := []string{"1/a@0", "1/b@1", "2/c@0", "2/d@1", "2/e@2"}
	client := committedClient(t, brokers)

	for i, tt := range []struct {
		name     string
		parallel int
	}{{"all at once", 0}, {"one after another", 1}, {"two at a time", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var (
				mu  sync.Mutex
				got []string
			)
			n, err := Reader{Client: client, Topic: name, Parallel: tt.parallel}.ReadTopic(ctx, func(m *sarama.ConsumerMessage) error {
				mu.Lock()
				defer mu.Unlock()
				if i == 0 && len(got) == 0 {
					w.send(1, "late") // past the end taken at the start: read by the next cases only
				}
				got = append(got, fmt.Sprintf("%d/%s@%d", m.Partition, m.Key, m.Offset))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.parallel != 1 {
				slices.Sort(got)
			}
			if n != len(want) || !slices.Equal(got, want) {
				t.Errorf("read %v (n=%d), want %v", got, n, want)
			}
		})
		if i == 0 {
			want = slices.Insert(want, 2, "1/late@5")
		}
	}

	t.Run("a failing partition stops the others", func(t *testing.T) {
		errStop := errors.New("stop")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := Reader{Client: client, Topic: name}.ReadTopic(ctx, func(m *sarama.ConsumerMessage) error {
			if m.Partition == 2 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("err %v, want the callback's", err)
		}
	})
}
