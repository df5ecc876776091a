package snapshot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/compacted"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
)

// Rebuilder republishes the snapshot topic from the registry API.
type Rebuilder struct {
	// Registry is a client of the projector's RegistryService.
	Registry registryv1.RegistryServiceClient
	Brokers  []string
	// Topic is the compacted snapshot topic (topics.RegistrationSnapshots).
	Topic string
	// Force publishes every node, even over a newer snapshot on the topic.
	Force bool
	// DryRun reads and compares but publishes nothing.
	DryRun bool
	// Idle is how long a partition of the topic must stay quiet before the
	// read asks the broker whether only transaction markers are left, which
	// are never delivered (compacted.Reader.Settle; its default when zero).
	Idle time.Duration
	// Now stamps snapshot_created_at (default time.Now).
	Now func() time.Time
}

// Report says what a rebuild did.
type Report struct {
	// Nodes is how many nodes the registry listed.
	Nodes int `json:"nodes"`
	// Published is how many snapshots were written (or would be, dry run).
	Published int `json:"published"`
	// SkippedNewer is how many nodes already had a snapshot at least as new.
	SkippedNewer int `json:"skipped_newer"`
	// Invalid lists rows that could not be turned into a snapshot.
	Invalid []string `json:"invalid,omitempty"`
}

// Run rebuilds the topic and reports what it did. Each snapshot is
// acknowledged by the broker (acks=all, idempotent) before Run returns.
func (r *Rebuilder) Run(ctx context.Context) (Report, error) {
	var rep Report
	if r.Now == nil {
		r.Now = time.Now
	}
	cfg, err := bus.NewConfig(bus.Options{Brokers: r.Brokers, ClientID: "onexctl-snapshots", FromOldest: true})
	if err != nil {
		return rep, err
	}
	existing := map[uuid.UUID]int64{}
	if !r.Force {
		if existing, err = r.read(ctx, cfg); err != nil {
			return rep, err
		}
	}
	var producer *bus.Producer
	if !r.DryRun {
		if producer, err = bus.NewProducer(r.Brokers, cfg, nil); err != nil {
			return rep, fmt.Errorf("snapshot: producer: %w", err)
		}
		defer producer.Close()
	}
	var batch []*sarama.ProducerMessage
	flush := func() error {
		if producer == nil || len(batch) == 0 {
			batch = nil
			return nil
		}
		err := producer.Send(ctx, batch...)
		batch = nil
		return err
	}
	req := &registryv1.ListNodesRequest{PageSize: 500}
	for {
		resp, err := r.Registry.ListNodes(ctx, req)
		if err != nil {
			return rep, fmt.Errorf("snapshot: list nodes: %w", err)
		}
		for _, n := range resp.GetNodes() {
			rep.Nodes++
			st, err := State(n)
			if err != nil {
				rep.Invalid = append(rep.Invalid, err.Error())
				continue
			}
			if seq, ok := existing[st.NodeID]; ok && seq >= st.Sequence {
				rep.SkippedNewer++
				continue
			}
			rec, err := Record(n, r.Now())
			if err != nil {
				rep.Invalid = append(rep.Invalid, err.Error())
				continue
			}
			rep.Published++
			// Like the reducer's snapshots: the bare model as value, the
			// reducer state as the one header, no ONEX headers (spec 9.1).
			batch = append(batch, &sarama.ProducerMessage{Topic: r.Topic, Key: sarama.StringEncoder(st.NodeID.String()),
				Value: sarama.ByteEncoder(rec.Value), Headers: rec.Headers()})
		}
		if err := flush(); err != nil {
			return rep, fmt.Errorf("snapshot: publish: %w", err)
		}
		if resp.GetNextPageToken() == "" {
			return rep, nil
		}
		req = &registryv1.ListNodesRequest{PageSize: 500, PageToken: resp.GetNextPageToken()}
	}
}

// read returns the newest sequence of every node on the topic (tombstones
// remove the node), reading committed records only, every partition up to
// the end it had when the read started.
func (r *Rebuilder) read(ctx context.Context, cfg *sarama.Config) (map[uuid.UUID]int64, error) {
	client, err := sarama.NewClient(r.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("snapshot: kafka: %w", err)
	}
	defer client.Close()
	var (
		mu  sync.Mutex
		out = map[uuid.UUID]int64{}
	)
	rd := compacted.Reader{Client: client, Topic: r.Topic, Settle: r.Idle, Operation: "snapshot_rebuild"}
	if _, err := rd.ReadTopic(ctx, func(m *sarama.ConsumerMessage) error {
		id, err := uuid.ParseBytes(m.Key)
		if err != nil {
			return nil // not a node: a restore marker
		}
		seq, ok := Sequence(m.Value, pipeline.SnapshotState(m.Headers))
		mu.Lock()
		defer mu.Unlock()
		if ok {
			out[id] = seq
		} else if len(m.Value) == 0 {
			delete(out, id)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("snapshot: read %s: %w", r.Topic, err)
	}
	return out, nil
}
