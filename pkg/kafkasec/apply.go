// Package kafkasec secures the fleet's Kafka clients. It turns the Kafka
// security settings (config.KafkaSecurity: KAFKA_SECURITY_PROTOCOL and the
// rest, the Python runtime's names) into sarama's TLS and SASL
// configuration, runs the SCRAM exchange and the OAUTHBEARER
// client-credentials flow, and explains a refused connection in one line.
//
// bus.NewConfig applies it to every client it configures; the DLQ producer
// and the topic admin, which package bus cannot configure (it imports
// them), apply it themselves, so no Kafka client of the fleet connects
// without the process's settings.
package kafkasec

import (
	"net"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/config"
)

// Apply configures cfg to encrypt and authenticate as s says: TLS with the
// CA and the optional client certificate, SASL with the mechanism and its
// credentials (SASL handshake v1, whose SaslAuthenticate requests Kafka 4
// requires). PLAINTEXT leaves TLS and SASL off. It validates s first
// (config.KafkaSecurity.Validate), so an error is a configuration error that
// names the variable and never a secret.
//
// sarama keeps the password in cfg.Net.SASL.Password as a plain string: a
// configured *sarama.Config must not be printed.
func Apply(cfg *sarama.Config, s config.KafkaSecurity) error {
	if err := s.Validate(); err != nil {
		return err
	}
	tlsCfg, err := s.TLSConfig()
	if err != nil {
		return err
	}
	cfg.Net.TLS.Enable = tlsCfg != nil
	cfg.Net.TLS.Config = tlsCfg
	cfg.Net.SASL.Enable = s.SASL()
	if !s.SASL() {
		return nil
	}
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Version = sarama.SASLHandshakeV1
	switch s.Mechanism {
	case config.SASLPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case config.SASLScramSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = scramSHA256
	case config.SASLScramSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = scramSHA512
	case config.SASLOAuthBearer:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		cfg.Net.SASL.TokenProvider = SharedTokenSource(s.OAuth)
		return nil
	}
	cfg.Net.SASL.User = s.Username
	cfg.Net.SASL.Password = s.Password.Reveal()
	return nil
}

// ApplyEnv is Apply with the process's settings (config.LoadKafkaSecurity),
// read anew on every call.
func ApplyEnv(cfg *sarama.Config) error {
	s, err := config.LoadKafkaSecurity()
	if err != nil {
		return err
	}
	return Apply(cfg, s)
}

// ApplyEnvOrRefuse is ApplyEnv for constructors that return no error
// (dlq.NewProducerConfig, topics.NewAdminConfig): when the process's
// settings do not apply, every connection made with cfg fails with that
// error instead, so a client never falls back to an unsecured connection.
// The services refuse such settings at start (config.Load); this is the
// second line, for a file removed since.
func ApplyEnvOrRefuse(cfg *sarama.Config) {
	if err := ApplyEnv(cfg); err != nil {
		cfg.Net.Proxy.Enable = true
		cfg.Net.Proxy.Dialer = refusingDialer{err}
	}
}

// refusingDialer fails every dial with the configuration error it holds.
type refusingDialer struct{ err error }

func (d refusingDialer) Dial(_, _ string) (net.Conn, error) { return nil, d.err }
