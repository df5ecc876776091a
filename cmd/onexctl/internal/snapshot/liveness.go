package snapshot

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/compacted"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// PrintLiveness writes, one JSON line per key, the latest committed record
// of every key on the reducer's liveness checkpoint topic, as a compacted
// read would leave it: the key, where it was read, and the checkpoint
// (onex.fleet.v1.LivenessCheckpoint) as protojson; partition by partition,
// each partition's keys in the order first seen. Tombstones and restore
// markers are left out. Every partition is read up to the end it had when the
// read started; idle is how long one must stay quiet before the read asks the
// broker whether only transaction markers are left (compacted.Reader.Settle).
// It returns how many lines it wrote.
func PrintLiveness(ctx context.Context, brokers []string, topic string, idle time.Duration, w io.Writer) (int, error) {
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "onexctl-snapshots", FromOldest: true})
	if err != nil {
		return 0, err
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return 0, fmt.Errorf("liveness: kafka: %w", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("liveness: topic %s: %w", topic, err)
	}
	// latest is, per partition, the latest non-empty record of every key;
	// order, its keys in the order first seen.
	type keys struct {
		latest map[string]*sarama.ConsumerMessage
		order  []string
	}
	var mu sync.Mutex
	byPart := map[int32]*keys{}
	rd := compacted.Reader{Client: client, Topic: topic, Settle: idle, Operation: "print_liveness"}
	if _, err := rd.ReadTopic(ctx, func(m *sarama.ConsumerMessage) error {
		mu.Lock()
		defer mu.Unlock()
		ks := byPart[m.Partition]
		if ks == nil {
			ks = &keys{latest: map[string]*sarama.ConsumerMessage{}}
			byPart[m.Partition] = ks
		}
		k := string(m.Key)
		if _, seen := ks.latest[k]; !seen {
			ks.order = append(ks.order, k)
		}
		if len(m.Value) == 0 {
			delete(ks.latest, k)
		} else {
			ks.latest[k] = m
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("liveness: read %s: %w", topic, err)
	}
	opts := protojson.MarshalOptions{UseProtoNames: true}
	lines := 0
	for _, p := range parts {
		ks := byPart[p]
		if ks == nil {
			continue
		}
		latest, order := ks.latest, ks.order
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
