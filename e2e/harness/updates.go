package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/omninode/onex-fleet/pkg/bus"
)

// DeclaredRow is a projection row with the columns a node's introspection
// fills: its identity, endpoints and declared capabilities as Row has
// them, and the contract and topic columns (docs/reducer.md, "Declared
// capabilities and topics").
type DeclaredRow struct {
	NodeID          string
	State           string
	NodeType        string
	NodeName        *string
	NodeVersion     string
	Endpoints       map[string]string
	Capabilities    map[string]any
	ContractType    *string
	ContractVersion *string
	IntentTypes     []string
	Protocols       []string
	CapabilityTags  []string
	SubscribeTopics []string
	PublishTopics   []string
	Extras          map[string]any
	RegisteredAt    time.Time
	// RegistrationSequence is the reducer sequence of the last upsert
	// applied to the row (heartbeats do not move it).
	RegistrationSequence int64
}

// DeclaredRows returns the declared columns of the given nodes' rows (all
// rows when ids is empty), by node id. A topic column that is not a JSON
// array of strings is an error: the columns hold topic names.
func (d *DB) DeclaredRows(ctx context.Context, ids ...string) (map[string]DeclaredRow, error) {
	const cols = `entity_id::text, current_state::text, node_type, node_name, node_version, endpoints, capabilities,
	contract_type, contract_version, COALESCE(intent_types, '{}'), COALESCE(protocols, '{}'), COALESCE(capability_tags, '{}'),
	subscribe_topics, publish_topics, introspection_extras, registered_at, registration_sequence`
	out := map[string]DeclaredRow{}
	err := d.eachRow(ctx, cols, ids, func(rows pgx.Rows) error {
		var r DeclaredRow
		var endpoints, caps, sub, pub, extras []byte
		if err := rows.Scan(&r.NodeID, &r.State, &r.NodeType, &r.NodeName, &r.NodeVersion, &endpoints, &caps,
			&r.ContractType, &r.ContractVersion, &r.IntentTypes, &r.Protocols, &r.CapabilityTags,
			&sub, &pub, &extras, &r.RegisteredAt, &r.RegistrationSequence); err != nil {
			return err
		}
		_ = json.Unmarshal(endpoints, &r.Endpoints)
		_ = json.Unmarshal(caps, &r.Capabilities)
		_ = json.Unmarshal(extras, &r.Extras)
		for _, c := range []struct {
			name string
			raw  []byte
			dst  *[]string
		}{{"subscribe_topics", sub, &r.SubscribeTopics}, {"publish_topics", pub, &r.PublishTopics}} {
			if len(c.raw) == 0 || c.raw[0] != '[' {
				return fmt.Errorf("row %s: %s is %s, not a JSON array", r.NodeID, c.name, c.raw)
			}
			if err := json.Unmarshal(c.raw, c.dst); err != nil {
				return fmt.Errorf("row %s: %s is not an array of topic names: %w", r.NodeID, c.name, err)
			}
		}
		out[r.NodeID] = r
		return nil
	})
	return out, err
}

// ActiveWithCapabilityTags runs the MCP discovery query of spec 4.8 (ACTIVE
// rows whose capability_tags contain every tag given) and returns the node
// ids it finds.
func (d *DB) ActiveWithCapabilityTags(ctx context.Context, tags ...string) (map[string]bool, error) {
	rows, err := d.pool.Query(ctx, `SELECT entity_id::text FROM registration_projections
	WHERE current_state = 'active' AND capability_tags @> $1::text[]`, tags)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// WaitConsumed waits until every consumer group that consumes one of
// topicNames has committed, on every partition, at least the offset that
// was the partition's end when WaitConsumed was called: everything
// published to those topics before the call has been handled by the
// services reading them. The fleet's consumers commit an offset only
// after handling the record (and publishing what it leads to), so calling
// it hop after hop (node topic, reducer input, intents, effect intents)
// waits until what a node published has reached PostgreSQL and Consul,
// whatever it led to.
//
// A group reading a transactional topic commits the offset after the last
// record it was given, one short of the partition's end when the
// transaction's commit marker is last: when a group stands exactly there,
// the record before the end is read back, and a marker (a record no
// consumer is given) counts as consumed.
//
// A group that has committed nothing on a partition that has records is
// not waited for in silence: it is an error after timeout. The node-facing
// groups start at the newest record when they have no offsets (spec 3.4),
// so a partition that got no record since the group joined has none; the
// caller publishes a record the fleet ignores to such partitions first.
func WaitConsumed(ctx context.Context, brokers []string, timeout time.Duration, topicNames ...string) error {
	topicNames = Namespace.PhysicalAll(topicNames) // canonical names, read on Namespace
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "e2e-drain"})
	if err != nil {
		return err
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return err
	}
	defer admin.Close() // closes client too
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return err
	}
	defer consumer.Close()
	markers := map[string]bool{}
	isMarker := func(topic string, p int32, off int64) bool {
		k := fmt.Sprintf("%s/%d/%d", topic, p, off)
		if v, ok := markers[k]; ok {
			return v
		}
		markers[k] = recordIsMarker(consumer, topic, p, off)
		return markers[k]
	}
	target := map[string]map[int32]int64{}
	for _, topic := range topicNames {
		parts, err := client.Partitions(topic)
		if err != nil {
			return fmt.Errorf("partitions of %s: %w", topic, err)
		}
		target[topic] = map[int32]int64{}
		for _, p := range parts {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return fmt.Errorf("end of %s[%d]: %w", topic, p, err)
			}
			target[topic][p] = end
		}
	}
	return Eventually(ctx, timeout, func(context.Context) error {
		consumers, err := groupsConsuming(admin, target)
		if err != nil {
			return err
		}
		for _, topic := range topicNames {
			if len(consumers[topic]) == 0 {
				return fmt.Errorf("no consumer group has all partitions of %s assigned (rebalancing?)", topic)
			}
		}
		for _, topic := range topicNames {
			for _, group := range consumers[topic] {
				parts := slices.Sorted(maps.Keys(target[topic]))
				resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
				if err != nil {
					return fmt.Errorf("offsets of %s: %w", group, err)
				}
				for _, p := range parts {
					end := target[topic][p]
					if end == 0 {
						continue // an empty partition
					}
					b := resp.GetBlock(topic, p)
					if b == nil || b.Err != sarama.ErrNoError || b.Offset < 0 {
						return fmt.Errorf("group %s has committed no offset on %s[%d] (end %d)", group, topic, p, end)
					}
					if b.Offset < end && !(b.Offset == end-1 && isMarker(topic, p, end-1)) {
						return fmt.Errorf("group %s committed %s[%d] up to %d, the end was %d", group, topic, p, b.Offset, end)
					}
				}
			}
		}
		return nil
	})
}

// groupsConsuming returns, per topic of target, the consumer groups whose
// members together hold every partition of it.
func groupsConsuming(admin sarama.ClusterAdmin, target map[string]map[int32]int64) (map[string][]string, error) {
	all, err := admin.ListConsumerGroups()
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(all))
	descs, err := admin.DescribeConsumerGroups(names)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, d := range descs {
		held := map[string]map[int32]bool{}
		for _, m := range d.Members {
			a, err := m.GetMemberAssignment()
			if err != nil || a == nil {
				continue
			}
			for topic, parts := range a.Topics {
				if held[topic] == nil {
					held[topic] = map[int32]bool{}
				}
				for _, p := range parts {
					held[topic][p] = true
				}
			}
		}
		for topic, parts := range target {
			if h := held[topic]; len(h) > 0 {
				if len(h) < len(parts) {
					return nil, fmt.Errorf("group %s holds %d of the %d partitions of %s (rebalancing?)", d.GroupId, len(h), len(parts), topic)
				}
				out[topic] = append(out[topic], d.GroupId)
			}
		}
	}
	for _, groups := range out {
		sort.Strings(groups)
	}
	return out, nil
}

// recordIsMarker reports whether the record at offset off of topic[p] is
// one no consumer is given (a transaction marker, or a record of an
// aborted transaction): reading from off, the first record given is a
// later one, or none comes.
func recordIsMarker(consumer sarama.Consumer, topic string, p int32, off int64) bool {
	pc, err := consumer.ConsumePartition(topic, p, off)
	if err != nil {
		return false
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		return m.Offset != off
	case <-time.After(time.Second):
		return true
	}
}
