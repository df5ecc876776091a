package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// DLQPrefix starts every DLQ topic name of the taxonomy.
const DLQPrefix = "onex.dlq."

// ErrStop, returned by a Scan callback, ends the scan early without error.
var ErrStop = errors.New("replay: stop scan")

// DefaultIdle is how long a partition may deliver nothing before the scan
// takes it as read (see Scanner.Idle).
const DefaultIdle = 2 * time.Second

// NewClientConfig returns the sarama configuration for the replay tool: the
// fleet's (bus.NewConfig: protocol 3.6, read_committed, idempotent producer
// with acks=all) with Partitioner as the producer's partitioner.
func NewClientConfig(brokers []string, clientID string) (*sarama.Config, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: clientID})
	if err != nil {
		return nil, err
	}
	cfg.Producer.Partitioner = Partitioner
	return cfg, nil
}

// DLQTopics returns the broker's DLQ topics on namespace ns (names starting
// "<ns>.onex.dlq."), sorted, without quarantine (the quarantine topic holds
// no DLQ records). An empty quarantine means topics.DLQQuarantine; it is
// put on ns too.
func DLQTopics(client sarama.Client, ns topicns.Namespace, quarantine string) ([]string, error) {
	if quarantine == "" {
		quarantine = topics.DLQQuarantine
	}
	quarantine = ns.Physical(quarantine)
	if err := client.RefreshMetadata(); err != nil {
		return nil, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "list_topics"}, "list DLQ topics")
	}
	all, err := client.Topics()
	if err != nil {
		return nil, infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "list_topics"}, "list DLQ topics")
	}
	var out []string
	for _, t := range all {
		if strings.HasPrefix(t, ns.Prefix()+DLQPrefix) && t != quarantine {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Scanner reads topics without a consumer group.
type Scanner struct {
	// Client is the connection; its config must be read_committed
	// (NewClientConfig). Scanner does not close it.
	Client sarama.Client
	// Idle ends the reading of a partition that has delivered nothing for
	// this long before reaching the high-water mark it had at the start
	// (transaction markers and aborted records occupy offsets that are never
	// delivered). Zero means DefaultIdle.
	Idle time.Duration
}

// Scan calls fn for every record of topicNames, topic by topic (in the order
// given), partition by partition, in offset order, from each partition's
// oldest offset up to its high-water mark at the time the partition is
// reached. It commits nothing. fn returning ErrStop ends the scan with nil;
// any other error ends it with that error. ctx cancels the scan.
func (s Scanner) Scan(ctx context.Context, topicNames []string, fn func(*Entry) error) error {
	consumer, err := sarama.NewConsumerFromClient(s.Client)
	if err != nil {
		return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "consume"}, "DLQ consumer")
	}
	defer consumer.Close()
	for _, topic := range topicNames {
		parts, err := s.Client.Partitions(topic)
		if err != nil {
			if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				return infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportKafka, Operation: "consume", Target: topic}, "topic "+topic+" does not exist", err)
			}
			return infraerr.Wrap(err, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "consume", Target: topic}, "partitions of "+topic)
		}
		for _, p := range parts {
			if err := s.scanPartition(ctx, consumer, topic, p, fn); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

func (s Scanner) scanPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, fn func(*Entry) error) error {
	ectx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "consume", Target: fmt.Sprintf("%s/%d", topic, p)}
	oldest, err := s.Client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil {
		return infraerr.Wrap(err, ectx, "oldest offset")
	}
	hwm, err := s.Client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return infraerr.Wrap(err, ectx, "high-water mark")
	}
	if oldest >= hwm {
		return nil
	}
	pc, err := consumer.ConsumePartition(topic, p, oldest)
	if err != nil {
		return infraerr.Wrap(err, ectx, "consume partition")
	}
	defer pc.Close()
	idle := s.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case cerr := <-pc.Errors():
			if cerr != nil {
				return infraerr.Wrap(cerr.Err, ectx, "read partition")
			}
		case m, ok := <-pc.Messages():
			if !ok {
				return nil
			}
			if m.Offset >= hwm {
				return nil
			}
			if err := fn(NewEntry(m)); err != nil {
				return err
			}
			if m.Offset >= hwm-1 {
				return nil
			}
			timer.Reset(idle) // Go ≥ 1.23: no stale tick survives Reset
		}
	}
}

// ErrNotFound is returned by Read when no record is delivered at the
// requested position.
var ErrNotFound = errors.New("replay: no record at that position")

// Read returns the record at topic/partition/offset. It returns an error
// wrapping ErrNotFound when the offset is outside the partition (deleted by
// retention, or not written yet) or holds no deliverable record (a
// transaction marker, or a record of an aborted transaction).
func (s Scanner) Read(ctx context.Context, topic string, partition int32, offset int64) (*Entry, error) {
	pos := FormatPosition(topic, partition, offset)
	ectx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "consume", Target: pos}
	oldest, err := s.Client.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return nil, infraerr.Wrap(err, ectx, "oldest offset")
	}
	hwm, err := s.Client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return nil, infraerr.Wrap(err, ectx, "high-water mark")
	}
	if offset < oldest || offset >= hwm {
		return nil, fmt.Errorf("%s: %w (the partition holds offsets %d to %d)", pos, ErrNotFound, oldest, hwm-1)
	}
	consumer, err := sarama.NewConsumerFromClient(s.Client)
	if err != nil {
		return nil, infraerr.Wrap(err, ectx, "DLQ consumer")
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, offset)
	if err != nil {
		return nil, infraerr.Wrap(err, ectx, "consume partition")
	}
	defer pc.Close()
	idle := s.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	timer := time.NewTimer(idle)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
	case cerr := <-pc.Errors():
		if cerr != nil {
			return nil, infraerr.Wrap(cerr.Err, ectx, "read partition")
		}
	case m := <-pc.Messages():
		if m != nil && m.Offset == offset {
			return NewEntry(m), nil
		}
	}
	return nil, fmt.Errorf("%s: %w", pos, ErrNotFound)
}
