// Package testkit gives tests the addresses of the real servers they run
// against (Kafka, PostgreSQL, Consul) and small helpers to use them without
// stepping on each other.
//
// Addresses come from the environment that scripts/infra/env.sh prints. When
// a server's variable is unset, the test is skipped — unless
// ONEX_REQUIRE_INFRA=1 (which `make test` and CI set), in which case it fails:
// CI must never pass by skipping the tests that matter.
package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/kafkasec"
)

func need(t testing.TB, name, what string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if v != "" {
		return v
	}
	msg := fmt.Sprintf("%s not set: this test needs a real %s (run `eval \"$(scripts/infra/env.sh)\"` after `scripts/infra/up.sh`)", name, what)
	if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// KafkaBrokers returns the bootstrap list of the real Kafka broker.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, b := range strings.Split(need(t, "KAFKA_BOOTSTRAP_SERVERS", "Kafka broker"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// PostgresURL returns the DSN of the real PostgreSQL server.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return need(t, "OMNIBASE_INFRA_DB_URL", "PostgreSQL server")
}

// ConsulAddr returns the HTTP address of the real Consul agent.
func ConsulAddr(t testing.TB) string {
	t.Helper()
	return need(t, "CONSUL_HTTP_ADDR", "Consul agent")
}

// Unique returns a short random lowercase token for names that must not
// collide between test runs (topics, groups, databases).
func Unique() string {
	return strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}

// AdminConfig is a sarama config suitable for test admin and clients, with
// the process's Kafka security settings like every client of the fleet.
func AdminConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	kafkasec.ApplyEnvOrRefuse(c)
	return c
}

// CreateTopic creates a topic for the test and deletes it when the test ends.
func CreateTopic(t testing.TB, brokers []string, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, AdminConfig())
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	err = admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		a, err := sarama.NewClusterAdmin(brokers, AdminConfig())
		if err != nil {
			return
		}
		defer a.Close()
		_ = a.DeleteTopic(name)
	})
	WaitTopic(t, brokers, name, partitions)
}

// DeleteTopic deletes topic and waits until the broker no longer knows it,
// so that a test can make a topic a service writes to disappear (and
// create it again with CreateTopic).
func DeleteTopic(t testing.TB, brokers []string, name string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(brokers, AdminConfig())
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	if err := admin.DeleteTopic(name); err != nil {
		t.Fatalf("delete topic %s: %v", name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		md, err := admin.DescribeTopics([]string{name})
		if err == nil && len(md) == 1 && md[0].Err == sarama.ErrUnknownTopicOrPartition {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s still known 30s after its deletion", name)
}

// WaitTopic waits until every partition of topic has a leader.
func WaitTopic(t testing.TB, brokers []string, name string, partitions int32) {
	t.Helper()
	client, err := sarama.NewClient(brokers, AdminConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_ = client.RefreshMetadata(name)
		ps, err := client.Partitions(name)
		if err == nil && int32(len(ps)) == partitions {
			ok := true
			for _, p := range ps {
				if _, err := client.Leader(name, p); err != nil {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not ready after 30s", name)
}

// ReadAll consumes every partition of topic from the oldest offset until
// want records have been read or timeout passes, and returns them in
// partition-then-offset order per partition as read. isolation selects
// read_committed when committed is true.
func ReadAll(t testing.TB, brokers []string, topic string, want int, timeout time.Duration, committed bool) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := AdminConfig()
	if committed {
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	out := make(chan *sarama.ConsumerMessage, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		defer pc.Close()
		go func(pc sarama.PartitionConsumer) {
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case out <- m:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}(pc)
	}
	var msgs []*sarama.ConsumerMessage
	for len(msgs) < want {
		select {
		case m := <-out:
			msgs = append(msgs, m)
		case <-ctx.Done():
			return msgs
		}
	}
	return msgs
}

// StartGroupAtEnd commits, for a consumer group that has no offsets yet,
// the current end offset of every partition of each topic. A service started
// afterwards in that group (with its production setting of starting from the
// oldest record) then sees only what the test produces, not earlier runs'
// records on the shared topics.
func StartGroupAtEnd(t testing.TB, brokers []string, group string, topicNames ...string) {
	t.Helper()
	client, err := sarama.NewClient(brokers, AdminConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatalf("offset manager: %v", err)
	}
	defer om.Close()
	for _, topic := range topicNames {
		parts, err := client.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		for _, p := range parts {
			end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatalf("end offset %s/%d: %v", topic, p, err)
			}
			pom, err := om.ManagePartition(topic, p)
			if err != nil {
				t.Fatalf("manage %s/%d: %v", topic, p, err)
			}
			pom.MarkOffset(end, "")
			defer pom.Close()
		}
	}
	om.Commit()
}

// FixturesDir finds the golden wire fixtures, ../shared/fixtures next to the
// repository, by walking up from the test's directory.
func FixturesDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "fixtures")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/fixtures not found in any parent directory (expected ../shared/fixtures next to the repository)")
		}
		dir = parent
	}
}

// Fixture reads one golden fixture file.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(FixturesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
