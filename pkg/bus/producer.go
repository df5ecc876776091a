package bus

import (
	"context"
	"errors"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
)

// Producer publishes records and returns only after the broker acknowledged
// them (acks=all, idempotent), so a caller may commit its input afterwards.
// It is safe for concurrent use.
type Producer struct {
	sp      sarama.SyncProducer
	metrics *Metrics
}

// NewProducer connects a synchronous producer with cfg (from NewConfig).
func NewProducer(brokers []string, cfg *sarama.Config, m *Metrics) (*Producer, error) {
	sp, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		if err := kafkasec.Explain(err, cfg); infraerr.IsVouched(err) {
			return nil, err
		}
		return nil, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka", Operation: "connect_producer"},
			"create producer", err)
	}
	return &Producer{sp: sp, metrics: m}, nil
}

// Send publishes msgs as one batch. It returns nil only if every record was
// acknowledged; otherwise a retriable Kafka error listing how many failed
// (some of the batch may be written: consumers must be idempotent).
// ctx is checked before sending; sarama's own timeouts bound the send.
func (p *Producer) Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return infraerr.New(infraerr.KindTimeout, infraerr.Context{Transport: "kafka", Operation: "publish"}, "publish cancelled", err)
	}
	var err error
	if len(msgs) == 1 {
		_, _, err = p.sp.SendMessage(msgs[0])
	} else {
		err = p.sp.SendMessages(msgs)
	}
	if err != nil {
		failed := map[*sarama.ProducerMessage]bool{}
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) {
			for _, pe := range perrs {
				failed[pe.Msg] = true
			}
		}
		p.count(msgs, failed)
		return classifyProduceErr(err)
	}
	p.count(msgs, nil)
	return nil
}

func (p *Producer) count(msgs []*sarama.ProducerMessage, failed map[*sarama.ProducerMessage]bool) {
	if p.metrics == nil {
		return
	}
	for _, m := range msgs {
		if !failed[m] {
			p.metrics.Produced.WithLabelValues(m.Topic).Inc()
		}
	}
}

func classifyProduceErr(err error) error {
	kind := infraerr.KindConnection
	switch {
	case errors.Is(err, sarama.ErrUnknownTopicOrPartition):
		// Spec 6.4: unknown topic is a configuration error, never retried.
		kind = infraerr.KindConfiguration
	case errors.Is(err, sarama.ErrMessageSizeTooLarge), errors.Is(err, sarama.ErrInvalidMessage):
		kind = infraerr.KindRequestRejected
	case errors.Is(err, sarama.ErrRequestTimedOut):
		kind = infraerr.KindTimeout
	}
	return infraerr.New(kind, infraerr.Context{Transport: "kafka", Operation: "publish"}, "publish failed", err)
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.sp.Close() }
