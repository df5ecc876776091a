package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// Explain turns the error of connecting with cfg (sarama.NewClient and the
// clients built on it) into one line an operator can act on, when it is a
// security failure: a refused SASL login, a mechanism the listener does not
// offer, a broker certificate that is untrusted, expired or for another
// host, a listener that does not speak TLS, a failed token request. The
// result is a Vouched, non-retriable infraerr error that wraps err, naming
// variables and never a secret; sarama's own text would be blanked whole by
// the sanitizer for containing "auth" or "token". Any other error, and nil,
// comes back as it was.
func Explain(err error, cfg *sarama.Config) error {
	if err == nil {
		return nil
	}
	var ie *infraerr.Error
	if errors.As(err, &ie) && infraerr.IsVouched(ie) {
		return ie // a token request or configuration error of this package
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		notTLS     tls.RecordHeaderError
		remote     *net.OpError
		mechanism  = string(cfg.Net.SASL.Mechanism)
		sasl       = cfg.Net.SASL.Enable
		useTLS     = cfg.Net.TLS.Enable
		authFailed = errors.Is(err, sarama.ErrSASLAuthenticationFailed)
	)
	switch {
	case sasl && authFailed && mechanism == sarama.SASLTypeOAuth:
		return explained(infraerr.KindAuthentication, "Kafka refused the OAUTHBEARER login: the broker rejected the token from KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", err)
	case sasl && authFailed:
		return explained(infraerr.KindAuthentication, fmt.Sprintf("Kafka refused the SASL %s login: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD", mechanism), err)
	case sasl && errors.Is(err, sarama.ErrUnsupportedSASLMechanism):
		return explained(infraerr.KindConfiguration, fmt.Sprintf("the Kafka listener does not offer SASL mechanism %s (KAFKA_SASL_MECHANISM)", mechanism), err)
	case useTLS && errors.As(err, &unknownCA):
		return explained(infraerr.KindAuthentication, "the Kafka broker's certificate is not signed by a trusted CA (KAFKA_SSL_CA_FILE, else the system roots)", err)
	case useTLS && errors.As(err, &hostname):
		// crypto/x509 lists the names the certificate holds and the host
		// asked for: public facts.
		return explained(infraerr.KindAuthentication, "the Kafka broker's certificate is for another host ("+hostname.Error()+")", err)
	case useTLS && errors.As(err, &invalid):
		return explained(infraerr.KindAuthentication, "the Kafka broker's certificate is not valid ("+invalid.Error()+")", err)
	case useTLS && errors.As(err, &notTLS):
		return explained(infraerr.KindConfiguration, "the Kafka listener does not speak TLS: check KAFKA_SECURITY_PROTOCOL and KAFKA_BOOTSTRAP_SERVERS", err)
	case useTLS && errors.As(err, &remote) && remote.Op == "remote error":
		// A TLS alert from the broker: crypto/tls names it in fixed words
		// ("tls: certificate required").
		return explained(infraerr.KindAuthentication, "the Kafka broker refused the TLS handshake ("+remote.Err.Error()+"): a listener that wants a client certificate needs KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE signed by a CA it trusts", err)
	}
	return err
}

func explained(kind infraerr.Kind, msg string, cause error) error {
	return infraerr.Vouched(kind, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "connect"}, msg, cause)
}
