package compacted

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// ReadTopic hands fn every record of every partition of the topic from its
// oldest offset up to the high-water mark the partition had when ReadTopic
// started, and returns how many it handed. Up to Parallel partitions are read
// at once over one consumer (one fetch per broker serves them all), so fn is
// called from several goroutines at once, one per partition, each in offset
// order; with Parallel 1 the partitions are read one after another in their
// order. The first error, of a partition or of fn, cancels the others and is
// returned.
func (r Reader) ReadTopic(ctx context.Context, fn func(*sarama.ConsumerMessage) error) (int, error) {
	parts, err := r.Client.Partitions(r.Topic)
	if err != nil {
		return 0, r.fail(infraerr.KindConnection, "partitions", err)
	}
	type span struct {
		p         int32
		from, end int64
	}
	// Every end is taken before any partition is read, so the read is of
	// the topic as it was at one moment.
	spans := make([]span, 0, len(parts))
	for _, p := range parts {
		from, end, err := r.bounds(p, sarama.OffsetOldest, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		if end > from {
			spans = append(spans, span{p, from, end})
		}
	}
	if len(spans) == 0 {
		return 0, nil
	}
	consumer, err := sarama.NewConsumerFromClient(r.Client)
	if err != nil {
		return 0, r.fail(infraerr.KindConnection, "consumer", err)
	}
	defer consumer.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallel := r.Parallel
	if parallel <= 0 || parallel > len(spans) {
		parallel = len(spans)
	}
	var (
		total    atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		slots    = make(chan struct{}, parallel)
	)
	failed := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	started := 0
	for _, s := range spans {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		pc, err := consumer.ConsumePartition(r.Topic, s.p, s.from)
		if err != nil {
			<-slots
			failed(r.fail(infraerr.KindConnection, fmt.Sprintf("consume partition %d from %d", s.p, s.from), err))
			break
		}
		started++
		wg.Add(1)
		go func() { // owned by ReadTopic: ends with its partition or ctx, awaited below
			defer wg.Done()
			defer func() { <-slots }()
			defer pc.Close()
			n, _, err := r.catchUp(ctx, pc, s.p, s.from, s.end, fn)
			total.Add(int64(n))
			if err != nil {
				failed(err)
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && started < len(spans) {
		firstErr = infraerr.Wrap(ctx.Err(), r.ictx(), fmt.Sprintf("stopped with %d of %d partitions started", started, len(spans)))
	}
	return int(total.Load()), firstErr
}
