package snapshot

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/bus"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// PrintLiveness writes, one JSON line per key, the latest committed record
// of every key on the reducer's liveness checkpoint topic, as a compacted
// read would leave it: the key, where it was read, and the checkpoint
// (onex.fleet.v1.LivenessCheckpoint) as protojson. Tombstones and restore
// markers are left out. It returns how many lines it wrote.
func PrintLiveness(ctx context.Context, brokers []string, topic string, idle time.Duration, w io.Writer) (int, error) {
	if idle <= 0 {
		idle = time.Second
	}
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "onexctl-snapshots", FromOldest: true})
	if err != nil {
		return 0, err
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return 0, fmt.Errorf("liveness: kafka: %w", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, fmt.Errorf("liveness: consumer: %w", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("liveness: topic %s: %w", topic, err)
	}
	opts := protojson.MarshalOptions{UseProtoNames: true}
	lines := 0
	for _, p := range parts {
		latest, order, err := readLatest(ctx, client, consumer, topic, p, idle)
		if err != nil {
			return lines, err
		}
		for _, k := range order {
			m, ok := latest[k]
			if !ok {
				continue
			}
			var cp fleetv1.LivenessCheckpoint
			if err := proto.Unmarshal(m.Value, &cp); err != nil {
				return lines, fmt.Errorf("liveness: %s/%d@%d: %w", topic, p, m.Offset, err)
			}
			b, err := opts.Marshal(&cp)
			if err != nil {
				return lines, err
			}
			if _, err := fmt.Fprintf(w, `{"key":%q,"partition":%d,"offset":%d,"checkpoint":%s}`+"\n", k, p, m.Offset, b); err != nil {
				return lines, err
			}
			lines++
		}
	}
	return lines, nil
}

// readLatest reads partition p from its oldest record to its current end
// and returns the latest non-empty record of every key, with the keys in the
// order first seen.
func readLatest(ctx context.Context, client sarama.Client, consumer sarama.Consumer, topic string, p int32, idle time.Duration) (map[string]*sarama.ConsumerMessage, []string, error) {
	latest := map[string]*sarama.ConsumerMessage{}
	var order []string
	end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil || end == 0 {
		return latest, nil, err
	}
	pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, nil, fmt.Errorf("liveness: read %s/%d: %w", topic, p, err)
	}
	defer pc.AsyncClose()
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-t.C: // the rest are transaction markers
			return latest, order, nil
		case m := <-pc.Messages():
			k := string(m.Key)
			if _, seen := latest[k]; !seen {
				order = append(order, k)
			}
			if len(m.Value) == 0 {
				delete(latest, k)
			} else {
				latest[k] = m
			}
			if m.Offset+1 >= end {
				return latest, order, nil
			}
			t.Reset(idle)
		}
	}
}
