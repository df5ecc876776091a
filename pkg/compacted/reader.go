package compacted

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// DefaultSettle is Reader.Settle when unset.
const DefaultSettle = 100 * time.Millisecond

// Reader reads the partitions of one topic. The zero value is not usable:
// Client and Topic are required. A Reader holds no state between calls and
// may be used by several goroutines at once.
type Reader struct {
	// Client fetches the records. Its consumer settings apply: the isolation
	// level (read_committed hands only committed records), the fetch sizes,
	// Consumer.MaxWaitTime and ChannelBufferSize. The reader does not close
	// it.
	Client sarama.Client
	// Topic is the topic read.
	Topic string
	// Settle is how long a partition must deliver nothing before the reader
	// asks its leader whether anything before the end is left to deliver
	// (DefaultSettle when zero). It bounds how long a read whose last offsets
	// are transaction markers or gaps goes on after its last record.
	Settle time.Duration
	// Stall, when positive, fails a read (infraerr.KindTimeout) whose
	// partition delivered no record for that long while the range was not
	// complete. It is checked every Settle. Zero waits as long as the
	// context allows, for a range that ends past what the partition holds.
	Stall time.Duration
	// Parallel bounds how many partitions ReadTopic reads at once; zero or
	// less reads all of them at once.
	Parallel int
	// FetchErrors, when set, is told the fetch errors of a read, which goes
	// on: sarama keeps retrying the fetch. When nil the first one fails the
	// read (infraerr.KindConnection), for the caller to retry as a whole.
	FetchErrors func(*sarama.ConsumerError)
	// Operation names the reads in their errors (infraerr.Context.Operation,
	// "read_compacted" when empty).
	Operation string
}

// ReadPartition hands fn every record of partition p from offset from up to
// offset end, not included, in offset order, and returns how many it handed.
// from may be sarama.OffsetOldest (or any offset retention removed: the
// oldest one kept), end sarama.OffsetNewest (the high-water mark now). An
// error of fn ends the read and is returned as it is.
//
// It returns once no record before end is left to deliver (package doc), the
// context ends (its error, wrapped), a fetch fails (unless FetchErrors takes
// it) or the partition stalls (Stall).
func (r Reader) ReadPartition(ctx context.Context, p int32, from, end int64, fn func(*sarama.ConsumerMessage) error) (int, error) {
	from, end, err := r.bounds(p, from, end)
	if err != nil || end <= from {
		return 0, err
	}
	consumer, err := sarama.NewConsumerFromClient(r.Client)
	if err != nil {
		return 0, r.fail(infraerr.KindConnection, "consumer", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(r.Topic, p, from)
	if err != nil {
		return 0, r.fail(infraerr.KindConnection, fmt.Sprintf("consume partition %d from %d", p, from), err)
	}
	defer pc.Close()
	n, _, err := r.catchUp(ctx, pc, p, from, end, fn)
	return n, err
}

// bounds turns the offsets a caller asks for into the range to read.
func (r Reader) bounds(p int32, from, end int64) (int64, int64, error) {
	oldest, err := r.Client.GetOffset(r.Topic, p, sarama.OffsetOldest)
	if err != nil {
		return 0, 0, r.fail(infraerr.KindConnection, fmt.Sprintf("partition %d start offset", p), err)
	}
	if from == sarama.OffsetNewest || end == sarama.OffsetNewest {
		hwm, err := r.Client.GetOffset(r.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, 0, r.fail(infraerr.KindConnection, fmt.Sprintf("partition %d end offset", p), err)
		}
		if from == sarama.OffsetNewest {
			from = hwm
		}
		if end == sarama.OffsetNewest {
			end = hwm
		}
	}
	if from == sarama.OffsetOldest || (from >= 0 && from < oldest) {
		from = oldest
	}
	if from < 0 || end < 0 {
		return 0, 0, infraerr.Configuration(r.ictx(), fmt.Sprintf("partition %d: no range from offset %d to %d", p, from, end), nil)
	}
	return from, end, nil
}

func (r Reader) settle() time.Duration {
	if r.Settle > 0 {
		return r.Settle
	}
	return DefaultSettle
}

func (r Reader) ictx() infraerr.Context {
	op := r.Operation
	if op == "" {
		op = "read_compacted"
	}
	return infraerr.Context{Transport: infraerr.TransportKafka, Operation: op, Target: r.Topic}
}

func (r Reader) fail(k infraerr.Kind, msg string, cause error) error {
	return infraerr.New(k, r.ictx(), msg, cause)
}
