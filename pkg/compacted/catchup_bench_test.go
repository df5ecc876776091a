package compacted

import (
	"context"
	"testing"

	"github.com/IBM/sarama"
)

// bufferedPartition is a partition consumer whose records are all
// buffered already, so that a benchmark times the reader's own work.
type bufferedPartition struct {
	sarama.PartitionConsumer
	msgs chan *sarama.ConsumerMessage
	errs chan *sarama.ConsumerError
}

func (b *bufferedPartition) Messages() <-chan *sarama.ConsumerMessage { return b.msgs }
func (b *bufferedPartition) Errors() <-chan *sarama.ConsumerError     { return b.errs }

// What the reader adds to every record of a restore (the reducer restores
// 100,000 nodes in about a second): receiving it, the range check, the
// callback.
func BenchmarkCatchUp(b *testing.B) {
	const n = 100_000
	r := Reader{Topic: "t"}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pc := &bufferedPartition{msgs: make(chan *sarama.ConsumerMessage, n), errs: make(chan *sarama.ConsumerError)}
		for off := range int64(n) {
			pc.msgs <- &sarama.ConsumerMessage{Offset: off}
		}
		b.StartTimer()
		got, _, err := r.catchUp(context.Background(), pc, 0, 0, n, func(*sarama.ConsumerMessage) error { return nil })
		if err != nil || got != n {
			b.Fatalf("read %d records, %v", got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
