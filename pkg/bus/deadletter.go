package bus

import (
	"context"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// DeadLetterer parks a message that could not be handled. DeadLetter must
// return nil only once the broker has acknowledged the DLQ record, because
// the runner commits the message's offset right after.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, msg *Message, cause error) error
}

// DLQ adapts a dlq.Publisher to the runner's DeadLetterer: the failed message goes to the DLQ topic of its original
// topic with the spec's raw-path record and headers, carrying the message's
// correlation id and the spec 8.2 failure_class (publisher_malformed for a
// content error, consumer_error otherwise). Publish returns only after the
// broker acknowledged.
func DLQ(p *dlq.Publisher) DeadLetterer { return dlqAdapter{p} }

type dlqAdapter struct{ p *dlq.Publisher }

func (a dlqAdapter) DeadLetter(ctx context.Context, m *Message, cause error) error {
	class := dlq.ClassConsumerError
	if infraerr.IsContent(cause) {
		class = dlq.ClassPublisherMalformed
	}
	return a.p.Publish(ctx, m.ConsumerMessage(), dlq.Failure{Err: cause, Class: class, CorrelationID: m.CorrelationID})
}
