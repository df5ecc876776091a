package bus

import (
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
)

// KafkaVersion is the protocol version the fleet speaks. Kafka 4.x brokers
// dropped request versions older than 2.1, so sarama must not fall back to its
// ancient default.
var KafkaVersion = sarama.V3_6_0_0

// Options are the Kafka settings a service takes from its environment.
type Options struct {
	// Brokers is the bootstrap list (KAFKA_BOOTSTRAP_SERVERS).
	Brokers []string
	// ClientID names this process in broker logs and quotas.
	ClientID string
	// FromOldest makes a group with no committed offset start at the oldest
	// record instead of the newest. The fleet's own groups use it so nothing
	// published before a service first starts is lost.
	FromOldest bool
	// SessionTimeout, Heartbeat: consumer group liveness (spec 45 s / 15 s
	// are Python's; the fleet defaults to 10 s / 3 s for faster failover).
	SessionTimeout time.Duration
	Heartbeat      time.Duration
	// MaxMessageBytes bounds a record and a record batch per partition
	// (DefaultMaxMessageBytes unless set). Python's KAFKA_MAX_REQUEST_SIZE
	// (4 MiB) is not the same knob: aiokafka caps its batches separately
	// (16 KiB), sarama grows a batch up to this bound, and the broker
	// refuses a batch above its message.max.bytes (1 MiB by default).
	MaxMessageBytes int
	// Security is how the client encrypts and authenticates. Nil means the
	// process's settings, read from the environment on each call
	// (KAFKA_SECURITY_PROTOCOL and the rest, config.LoadKafkaSecurity), so
	// every client of a service and of onexctl is secured alike without its
	// caller passing anything; tests and tools that talk to another cluster
	// set it.
	Security *config.KafkaSecurity
}

// DefaultMaxMessageBytes keeps a producer's batches under a broker's
// default message.max.bytes (1,048,588): with 4 MiB, an uncompressed
// producer at a few thousand records per second built batches the broker
// refused whole ("Message was too large"), found by make bench.
const DefaultMaxMessageBytes = 1_000_000

// ParseBrokers splits a comma-separated bootstrap list, dropping blanks.
func ParseBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// NewConfig returns the sarama configuration with the fleet's guarantees:
// an idempotent producer with acks=all, read_committed consumers (so reducer
// output is seen only once its transaction commits), manual marking of
// offsets after handling, an explicit protocol version, and the TLS and SASL
// settings of o.Security (kafkasec.Apply). Invalid security settings are a
// configuration error that names the variable.
func NewConfig(o Options) (*sarama.Config, error) {
	if len(o.Brokers) == 0 {
		return nil, fmt.Errorf("bus: no Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS is required)")
	}
	c := sarama.NewConfig()
	c.Version = KafkaVersion
	c.ClientID = o.ClientID
	if c.ClientID == "" {
		c.ClientID = "onex-fleet"
	}
	c.Metadata.AllowAutoTopicCreation = false

	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	// One request in flight per broker: sarama (v1.61) refuses an idempotent
	// producer with MaxOpenRequests > 1, and without idempotence a retried
	// request could land after a later one and reorder a node's records.
	// Throughput comes from batching instead: while a request is in flight
	// the next one accumulates everything sent meanwhile (Runner batch mode,
	// Producer.Send with many records).
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 10
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Producer.Compression = sarama.CompressionLZ4
	if o.MaxMessageBytes > 0 {
		c.Producer.MaxMessageBytes = o.MaxMessageBytes
	} else {
		c.Producer.MaxMessageBytes = DefaultMaxMessageBytes
	}

	c.Consumer.IsolationLevel = sarama.ReadCommitted
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = time.Second
	c.Consumer.Offsets.Initial = sarama.OffsetNewest
	if o.FromOldest {
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
	}
	c.Consumer.Group.Session.Timeout = orDefault(o.SessionTimeout, 10*time.Second)
	c.Consumer.Group.Heartbeat.Interval = orDefault(o.Heartbeat, 3*time.Second)
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	c.Consumer.MaxProcessingTime = time.Second
	var err error
	if o.Security != nil {
		err = kafkasec.Apply(c, *o.Security)
	} else {
		err = kafkasec.ApplyEnv(c)
	}
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("bus: invalid sarama config: %w", err)
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
