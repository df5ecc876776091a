package bus

import (
	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
)

// NewClient is sarama.NewClient whose error, when the connection was
// refused for a security reason (a wrong password, an untrusted broker
// certificate, …), is the one line kafkasec.Explain makes of it; other
// errors are classified connection errors. sarama gives up after its
// metadata retries (cfg.Metadata.Retry, about a second with NewConfig), so
// it never hangs on a broker that refuses.
func NewClient(brokers []string, cfg *sarama.Config) (sarama.Client, error) {
	c, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		if err := kafkasec.Explain(err, cfg); infraerr.IsVouched(err) {
			return nil, err
		}
		return nil, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "connect"},
			"connect", err)
	}
	return c, nil
}

// NewClusterAdmin is sarama.NewClusterAdmin with NewClient's errors.
func NewClusterAdmin(brokers []string, cfg *sarama.Config) (sarama.ClusterAdmin, error) {
	a, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		if err := kafkasec.Explain(err, cfg); infraerr.IsVouched(err) {
			return nil, err
		}
		return nil, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "admin"},
			"cluster admin", err)
	}
	return a, nil
}
