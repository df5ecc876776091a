package compacted

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// catchUp hands fn the records pc delivers from offset from on until none
// before end is left to deliver. It returns how many it handed and the first
// record at or past end if the consumer delivered one first; that one is not
// handed to fn.
func (r Reader) catchUp(ctx context.Context, pc sarama.PartitionConsumer, p int32, from, end int64,
	fn func(*sarama.ConsumerMessage) error) (n int, over *sarama.ConsumerMessage, err error) {
	if end <= from {
		return 0, nil, nil
	}
	settle := r.settle()
	// A ticker at a quarter of Settle rather than a timer reset per record:
	// a restore hands out hundreds of thousands of records, and a partition
	// is quiet after four ticks without one, within a quarter of Settle of
	// its last record.
	tick := time.NewTicker(max(settle/quietTicks, time.Millisecond))
	defer tick.Stop()
	quiet := 0
	next := from // every offset before it is read
	delivered := false
	lastRecord := time.Now()
	errs := pc.Errors()
	for {
		select {
		case <-ctx.Done():
			return n, nil, infraerr.Wrap(ctx.Err(), r.ictx(), fmt.Sprintf("partition %d read to offset %d of %d", p, next, end))
		case cerr, ok := <-errs:
			if !ok {
				errs = nil // closed with Messages, which reports it
				continue
			}
			if err := r.fetchError(cerr); err != nil {
				return n, nil, err
			}
		case m, ok := <-pc.Messages():
			if !ok {
				// sarama gives a partition up on its own when its offset is
				// out of range (retention passed it).
				return n, nil, r.fail(infraerr.KindConnection, fmt.Sprintf("partition %d consumer closed at offset %d of %d", p, next, end), nil)
			}
			if m.Offset >= end {
				return n, m, nil
			}
			n++
			if err := fn(m); err != nil {
				return n, nil, err
			}
			if m.Offset >= end-1 {
				return n, nil, nil
			}
			next, delivered = m.Offset+1, true
		case now := <-tick.C:
			if delivered || len(pc.Messages()) > 0 {
				if delivered {
					delivered, lastRecord = false, now
				}
				quiet = 0
				continue
			}
			if quiet++; quiet < quietTicks {
				continue
			}
			quiet = 0
			done, err := r.settled(p, next, end)
			if err != nil {
				if err := r.fetchError(&sarama.ConsumerError{Topic: r.Topic, Partition: p, Err: err}); err != nil {
					return n, nil, err
				}
			}
			if done {
				return n, nil, nil
			}
			if r.Stall > 0 && now.Sub(lastRecord) >= r.Stall {
				return n, nil, r.fail(infraerr.KindTimeout,
					fmt.Sprintf("partition %d: no record for %s at offset %d of %d", p, r.Stall, next, end), nil)
			}
		}
	}
}

// quietTicks is how many ticks a partition must deliver nothing to be quiet.
const quietTicks = 4

// fetchError reports a fetch error to FetchErrors, or returns it when the
// read is to fail on it.
func (r Reader) fetchError(cerr *sarama.ConsumerError) error {
	if r.FetchErrors != nil {
		r.FetchErrors(cerr)
		return nil
	}
	return r.fail(infraerr.KindConnection, fmt.Sprintf("fetch partition %d", cerr.Partition), cerr.Err)
}
