package kafkasec

import (
	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// scramClient is sarama's SCRAMClient over github.com/xdg-go/scram, the
// implementation sarama's own examples use (RFC 5802, SASLprep of the
// credentials).
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func scramSHA256() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
func scramSHA512() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }

// Begin starts a conversation for user and password.
func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		// The library's message may quote the user name; the cause is kept
		// for errors.Is, the line names the variables only.
		return infraerr.Vouched(infraerr.KindConfiguration, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "scram"},
			"KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD holds characters SCRAM does not allow (SASLprep, RFC 4013)", err)
	}
	c.conv = client.NewConversation()
	return nil
}

// Step answers the server's challenge.
func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

// Done reports whether the exchange is over.
func (c *scramClient) Done() bool { return c.conv.Done() }
