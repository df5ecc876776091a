package dlq

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
)

// Publisher writes DLQ records through a sarama.SyncProducer. It is safe for
// concurrent use if the producer is (sarama's is).
type Publisher struct {
	producer sarama.SyncProducer
	source   string
	router   Router
	now      func() time.Time
	m        *Metrics
}

// Option configures a Publisher.
type Option func(*Publisher)

// WithSource sets the header source (the bus environment, e.g. "local",
// "dev"); default DefaultSource.
func WithSource(env string) Option { return func(p *Publisher) { p.source = strings.TrimSpace(env) } }

// WithRouter sets the DLQ routing (e.g. RouterFromEnv(os.LookupEnv) for the
// KAFKA_DEAD_LETTER_TOPIC override); default category routing.
func WithRouter(r Router) Option { return func(p *Publisher) { p.router = r } }

// WithClock sets the clock for failure timestamps; default time.Now.
func WithClock(now func() time.Time) Option { return func(p *Publisher) { p.now = now } }

// SourceFromEnv returns the bus environment as the Python runtime resolves it:
// KAFKA_ENVIRONMENT, else ONEX_ENVIRONMENT, else DefaultSource.
func SourceFromEnv(lookup func(string) (string, bool)) string {
	for _, k := range []string{"KAFKA_ENVIRONMENT", "ONEX_ENVIRONMENT"} {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return DefaultSource
}

// Metric names.
const (
	MetricMessages = "onex_dlq_messages_total"
	MetricFailures = "onex_dlq_publish_failures_total"
)

// Metrics are the DLQ series: onex_dlq_messages_total{original_topic,
// dlq_topic,failure_type,error_type} and onex_dlq_publish_failures_total{
// dlq_topic}. Every writer of DLQ records in a process shares them: the
// Publisher, and writers that put DLQ records in their own Kafka
// transactions (the reducer).
type Metrics struct {
	messages *prometheus.CounterVec
	failures *prometheus.CounterVec
}

// NewMetrics creates the DLQ series and registers them on reg (nil: not
// registered); when they are already registered on reg (another Publisher),
// the existing series are shared.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricMessages,
			Help: "DLQ records acknowledged by the broker (or committed in a transaction), by original topic, DLQ topic, failure type and error type.",
		}, []string{"original_topic", "dlq_topic", "failure_type", "error_type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFailures,
			Help: "DLQ records that could not be built or were not acknowledged, by DLQ topic.",
		}, []string{"dlq_topic"}),
	}
	if reg != nil {
		var err error
		if m.messages, err = register(reg, m.messages); err != nil {
			return nil, err
		}
		if m.failures, err = register(reg, m.failures); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Written counts one DLQ record for a message of originalTopic, written to
// dlqTopic for failure f (its failure type and error type become labels).
func (m *Metrics) Written(originalTopic, dlqTopic string, f Failure) {
	ftype, _ := failureType(f)
	m.messages.WithLabelValues(topicLabel(originalTopic), topicLabel(dlqTopic), failureTypeLabel(ftype), errorTypeLabel(infraerr.TypeName(f.Err))).Inc()
}

// Failed counts one DLQ record for dlqTopic that was not written.
func (m *Metrics) Failed(dlqTopic string) { m.failures.WithLabelValues(topicLabel(dlqTopic)).Inc() }

// NewPublisher returns a Publisher writing through producer, which must be
// configured with Producer.RequiredAcks = WaitForAll and
// Producer.Return.Successes = true (NewProducerConfig does both). The DLQ
// series (see Metrics) are registered on reg (nil: not registered), shared
// with any other Publisher or Metrics on reg.
func NewPublisher(producer sarama.SyncProducer, reg prometheus.Registerer, opts ...Option) (*Publisher, error) {
	if producer == nil {
		return nil, errors.New("dlq: nil producer")
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	p := &Publisher{producer: producer, source: DefaultSource, now: time.Now, m: m}
	for _, o := range opts {
		o(p)
	}
	if p.source == "" {
		p.source = DefaultSource
	}
	return p, nil
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return c, nil
}

// Label values are restricted to bounded vocabularies, never free text.
const labelOther = "other"

func topicLabel(s string) string {
	if validKafkaName(s) {
		return s
	}
	return labelOther
}

func failureTypeLabel(s string) string {
	if s == FailureTypeContent || s == FailureTypeInfra {
		return s
	}
	return labelOther
}

func errorTypeLabel(s string) string {
	if s == "" || len(s) > 64 {
		return labelOther
	}
	for i, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '_' || (i > 0 && r >= '0' && r <= '9')) {
			return labelOther
		}
	}
	return s
}

// Publish dead-letters msg: it resolves the DLQ topic (f.DLQTopic, else the
// Publisher's Router), builds the record with Build at the Publisher's clock
// and sends it synchronously. It returns nil only after the broker has
// acknowledged the record (with acks=all), so the caller may then commit
// msg's offset; on any error the record may or may not have been written and
// the caller must NOT commit (redelivery then dead-letters it again:
// at-least-once).
//
// Errors are *infraerr.Error: KindConfiguration for a record that cannot be
// built or an unknown DLQ topic, otherwise the classified send failure
// (connection/timeout: retriable). ctx is checked before sending; the send
// itself is bounded by the producer's own timeouts (sarama's SyncProducer
// cannot be cancelled), and no goroutine is started.
func (p *Publisher) Publish(ctx context.Context, msg *sarama.ConsumerMessage, f Failure) error {
	if strings.TrimSpace(f.DLQTopic) == "" && msg != nil {
		f.DLQTopic = p.router.TopicFor(msg.Topic)
	}
	ectx := infraerr.Context{Transport: infraerr.TransportKafka, Operation: "dlq_publish", Target: f.DLQTopic, CorrelationID: f.CorrelationID}
	pm, err := Build(msg, f, p.source, p.now())
	if err != nil {
		p.m.Failed(f.DLQTopic)
		return infraerr.Configuration(ectx, "cannot build DLQ record", err)
	}
	if err := ctx.Err(); err != nil {
		return infraerr.Wrap(err, ectx, "DLQ publish cancelled before send")
	}
	if _, _, err := p.producer.SendMessage(pm); err != nil {
		p.m.Failed(pm.Topic)
		kind, known := infraerr.KindOf(err)
		switch {
		case errors.Is(err, sarama.ErrUnknownTopicOrPartition), errors.Is(err, sarama.ErrMessageSizeTooLarge):
			// Neither gets better by retrying (Build keeps records under
			// MaxValueBytes; a topic with a lower max.message.bytes is a
			// configuration error).
			kind = infraerr.KindConfiguration
		case errors.Is(err, sarama.ErrTopicAuthorizationFailed):
			kind = infraerr.KindAuthentication
		case errors.Is(err, sarama.ErrRequestTimedOut):
			kind = infraerr.KindTimeout
		case !known:
			kind = infraerr.KindConnection
		}
		return infraerr.New(kind, ectx, "DLQ publish failed", err)
	}
	p.m.Written(msg.Topic, pm.Topic, f)
	return nil
}

// NewProducerConfig returns a sarama config for the SyncProducer behind a
// Publisher: Kafka protocol 3.6 (Kafka 4.x rejects sarama's older default),
// acks=all, idempotent writes (hence one in-flight request per broker),
// successes returned (required by SyncProducer), a 1 MB message limit, and
// the process's Kafka security settings (kafkasec.ApplyEnvOrRefuse: settings
// that do not apply make every connection fail, never go unsecured).
func NewProducerConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	if clientID != "" {
		cfg.ClientID = clientID
	}
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	// Not above the broker's default message.max.bytes: a bigger batch is
	// refused whole (bus.DefaultMaxMessageBytes; bus imports this package).
	cfg.Producer.MaxMessageBytes = 1_000_000
	kafkasec.ApplyEnvOrRefuse(cfg)
	return cfg
}
