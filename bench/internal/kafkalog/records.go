package kafkalog

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Count is what reading the start of a range found.
type Count struct {
	Range
	// Read is how many of the range's offsets the reading covered, from
	// its start; Records how many records (not transaction markers) were
	// among them.
	Read, Records int64
}

// Estimate is the records in the whole range: those read, scaled to the
// range when the reading stopped short of its end (the share of markers
// among a partition's offsets stays what it was while the load does).
func (c Count) Estimate() float64 {
	n := c.Offsets()
	switch {
	case c.Read >= n:
		return float64(c.Records)
	case c.Read <= 0:
		return float64(n) // nothing read: every offset counts as a record
	}
	return float64(c.Records) * float64(n) / float64(c.Read)
}

// CountRecords reads up to limit offsets from the start of every range,
// uncommitted (an aborted transaction's records were written all the
// same), and counts the records it is handed: the client hands out no
// transaction markers, so the offsets it skips are markers. A partition
// handed nothing for idle has no record left before the end of what is
// read: the offsets left are markers too. cfg is a client configuration
// (its isolation level is set here).
func CountRecords(ctx context.Context, brokers []string, cfg *sarama.Config, ranges []Range, limit int64, idle time.Duration) ([]Count, error) {
	c := *cfg
	c.Consumer.IsolationLevel = sarama.ReadUncommitted
	c.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer(brokers, &c)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer consumer.Close()
	out := make([]Count, len(ranges))
	errs := make([]error, len(ranges))
	var wg sync.WaitGroup
	for i, r := range ranges {
		out[i] = Count{Range: r, Read: min(r.Offsets(), limit)}
		if out[i].Read <= 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(r.Topic, r.Partition, r.From)
		if err != nil {
			return nil, fmt.Errorf("read %s/%d from %d: %w", r.Topic, r.Partition, r.From, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			out[i].Records, errs[i] = countPartition(ctx, pc, r.From+out[i].Read, idle)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("read %s/%d: %w", ranges[i].Topic, ranges[i].Partition, err)
		}
	}
	return out, ctx.Err()
}

// countPartition counts the records pc hands out before offset stop.
func countPartition(ctx context.Context, pc sarama.PartitionConsumer, stop int64, idle time.Duration) (int64, error) {
	var n int64
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-timer.C:
			return n, nil // markers up to stop
		case err := <-pc.Errors():
			return n, err
		case m, ok := <-pc.Messages():
			if !ok || m.Offset >= stop {
				return n, nil
			}
			n++
			if m.Offset == stop-1 {
				return n, nil
			}
			timer.Reset(idle)
		}
	}
}
