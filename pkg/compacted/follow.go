package compacted

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// FollowTopic hands fn the records of every partition of the topic, from
// the offset from returns for the partition on, and goes on with the records
// written after, until ctx ends (it then returns nil) or a partition fails
// (its error, or fn's, once every partition has stopped). It is how a view
// of a table that every replica needs whole is kept, without a consumer
// group.
//
// caughtUp, when set, is called once every partition has been read up to
// the high-water mark it had when FollowTopic started (package doc: nothing
// before it left to deliver), from the goroutine of the partition that got
// there last, or at once when there was nothing to read. Stall applies to
// that catching up only.
//
// fn is called from one goroutine per partition, concurrently, each
// partition's records in offset order. A nil from starts every partition at
// its oldest offset; from may return sarama.OffsetOldest. A start offset that
// retention removed, or one past the partition's end (the topic was
// recreated or truncated), starts the partition at its oldest offset.
func (r Reader) FollowTopic(ctx context.Context, from func(p int32) int64, caughtUp func(), fn func(*sarama.ConsumerMessage) error) error {
	parts, err := r.Client.Partitions(r.Topic)
	if err != nil {
		return r.fail(infraerr.KindConnection, "partitions", err)
	}
	type span struct {
		p         int32
		from, end int64
	}
	spans := make([]span, 0, len(parts))
	for _, p := range parts {
		start := int64(sarama.OffsetOldest)
		if from != nil {
			start = from(p)
		}
		s, end, err := r.bounds(p, start, sarama.OffsetNewest)
		if err == nil && s > end {
			s, end, err = r.bounds(p, sarama.OffsetOldest, end)
		}
		if err != nil {
			return err
		}
		spans = append(spans, span{p, s, end})
	}
	consumer, err := sarama.NewConsumerFromClient(r.Client)
	if err != nil {
		return r.fail(infraerr.KindConnection, "consumer", err)
	}
	defer consumer.Close()

	var pending atomic.Int64
	pending.Store(int64(len(spans)))
	reached := func() {
		if pending.Add(-1) == 0 && caughtUp != nil {
			caughtUp()
		}
	}
	if len(spans) == 0 && caughtUp != nil {
		caughtUp()
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	errs := make(chan error, len(spans))
	for _, s := range spans {
		pc, err := consumer.ConsumePartition(r.Topic, s.p, s.from)
		if err != nil {
			return r.fail(infraerr.KindConnection, fmt.Sprintf("consume partition %d from %d", s.p, s.from), err)
		}
		wg.Add(1)
		go func() { // owned by FollowTopic: ends with ctx or its partition's error, awaited before it returns
			defer wg.Done()
			defer pc.Close()
			_, over, err := r.catchUp(ctx, pc, s.p, s.from, s.end, fn)
			if err == nil {
				reached()
				if over != nil {
					err = fn(over)
				}
			}
			if err == nil {
				err = r.tail(ctx, pc, s.p, fn)
			}
			if err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// tail hands fn every record pc delivers until ctx ends.
func (r Reader) tail(ctx context.Context, pc sarama.PartitionConsumer, p int32, fn func(*sarama.ConsumerMessage) error) error {
	errs := pc.Errors()
	for {
		select {
		case <-ctx.Done():
			return nil
		case cerr, ok := <-errs:
			if !ok {
				errs = nil // closed with Messages, which reports it
				continue
			}
			if err := r.fetchError(cerr); err != nil {
				return err
			}
		case m, ok := <-pc.Messages():
			if !ok {
				return r.fail(infraerr.KindConnection, fmt.Sprintf("partition %d consumer closed", p), nil)
			}
			if err := fn(m); err != nil {
				return err
			}
		}
	}
}
