package kafkasec_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

func TestApply(t *testing.T) {
	ca := testca.New(t, "apply CA")
	cert, key := ca.Issue(t, "client", "localhost")
	oauth := config.OAuthClient{TokenURL: "https://idp.example/token", ClientID: "fleet", ClientSecret: "cs"}
	tests := []struct {
		name  string
		sec   config.KafkaSecurity
		check func(t *testing.T, c *sarama.Config)
		err   string
	}{
		{name: "zero value is plaintext", check: func(t *testing.T, c *sarama.Config) {
			if c.Net.TLS.Enable || c.Net.SASL.Enable {
				t.Error("TLS or SASL on")
			}
		}},
		{name: "ssl with ca and client certificate", sec: config.KafkaSecurity{Protocol: "SSL", CAFile: ca.CertFile, CertFile: cert, KeyFile: key},
			check: func(t *testing.T, c *sarama.Config) {
				tc := c.Net.TLS.Config
				if !c.Net.TLS.Enable || c.Net.SASL.Enable || tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 ||
					tc.MinVersion != tls.VersionTLS12 || tc.InsecureSkipVerify {
					t.Errorf("tls %+v", tc)
				}
			}},
		{name: "ssl with system roots", sec: config.KafkaSecurity{Protocol: "SSL"}, check: func(t *testing.T, c *sarama.Config) {
			if !c.Net.TLS.Enable || c.Net.TLS.Config.RootCAs != nil {
				t.Error("want TLS with the system roots (RootCAs nil)")
			}
		}},
		{name: "scram-sha-512", sec: config.KafkaSecurity{Protocol: "SASL_SSL", Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"},
			check: func(t *testing.T, c *sarama.Config) {
				s := c.Net.SASL
				if !c.Net.TLS.Enable || !s.Enable || s.Mechanism != sarama.SASLTypeSCRAMSHA512 || s.User != "u" || s.Password != "p" ||
					s.Version != sarama.SASLHandshakeV1 || !s.Handshake || s.SCRAMClientGeneratorFunc == nil {
					t.Errorf("sasl %+v", s)
				}
				sc := s.SCRAMClientGeneratorFunc()
				if err := sc.Begin("u", "p", ""); err != nil {
					t.Fatal(err)
				}
				if first, err := sc.Step(""); err != nil || !strings.HasPrefix(first, "n,,n=u,r=") || sc.Done() {
					t.Errorf("first SCRAM message %q, %v", first, err)
				}
			}},
		{name: "scram-sha-256 over sasl_plaintext", sec: config.KafkaSecurity{Protocol: "SASL_PLAINTEXT", Mechanism: "SCRAM-SHA-256", Username: "u", Password: "p"},
			check: func(t *testing.T, c *sarama.Config) {
				if c.Net.TLS.Enable || c.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA256 || c.Net.SASL.SCRAMClientGeneratorFunc == nil {
					t.Errorf("sasl %+v", c.Net.SASL)
				}
			}},
		{name: "plain", sec: config.KafkaSecurity{Protocol: "SASL_SSL", Mechanism: "PLAIN", Username: "u", Password: "p"},
			check: func(t *testing.T, c *sarama.Config) {
				if c.Net.SASL.Mechanism != sarama.SASLTypePlaintext || c.Net.SASL.User != "u" {
					t.Errorf("sasl %+v", c.Net.SASL)
				}
			}},
		{name: "oauthbearer", sec: config.KafkaSecurity{Protocol: "SASL_SSL", Mechanism: "OAUTHBEARER", OAuth: oauth},
			check: func(t *testing.T, c *sarama.Config) {
				if c.Net.SASL.Mechanism != sarama.SASLTypeOAuth || c.Net.SASL.TokenProvider != kafkasec.SharedTokenSource(oauth) ||
					c.Net.SASL.User != "" || c.Net.SASL.Password != "" {
					t.Errorf("sasl %+v", c.Net.SASL)
				}
			}},
		{name: "invalid settings refused", sec: config.KafkaSecurity{Protocol: "SASL_SSL", Mechanism: "PLAIN"},
			err: "KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"},
		{name: "unreadable ca refused", sec: config.KafkaSecurity{Protocol: "SSL", CAFile: "/nonexistent/ca.pem"},
			err: "KAFKA_SSL_CA_FILE /nonexistent/ca.pem cannot be read (no such file or directory)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sarama.NewConfig()
			c.Version = sarama.V3_6_0_0
			err := kafkasec.Apply(c, tt.sec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("sarama refuses the result: %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestApplyEnvOrRefuse: settings that do not apply make every connection
// fail with their configuration error; they never leave a plaintext client.
func TestApplyEnvOrRefuse(t *testing.T) {
	for _, k := range config.KafkaSecurityVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	c := sarama.NewConfig()
	kafkasec.ApplyEnvOrRefuse(c)
	if c.Net.Proxy.Enable || c.Net.TLS.Enable {
		t.Fatal("plaintext settings must leave the config alone")
	}
	t.Setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
	t.Setenv("KAFKA_SSL_CA_FILE", "/nonexistent/ca.pem")
	c = sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	kafkasec.ApplyEnvOrRefuse(c)
	_, err := sarama.NewClient([]string{"127.0.0.1:1"}, c)
	if err == nil || !strings.Contains(err.Error(), "KAFKA_SSL_CA_FILE /nonexistent/ca.pem cannot be read") {
		t.Fatalf("connect error %v, want the configuration error", err)
	}
}

func TestExplain(t *testing.T) {
	saslCfg := func(mech sarama.SASLMechanism, useTLS bool) *sarama.Config {
		c := sarama.NewConfig()
		c.Net.SASL.Enable, c.Net.SASL.Mechanism, c.Net.TLS.Enable = true, mech, useTLS
		return c
	}
	tlsCfg := sarama.NewConfig()
	tlsCfg.Net.TLS.Enable = true
	plain := sarama.NewConfig()
	outOf := func(err error) error { return sarama.Wrap(sarama.ErrOutOfBrokers, err) }
	authFailed := sarama.Wrap(sarama.ErrSASLAuthenticationFailed, errors.New("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"))
	tokenErr := infraerr.Vouched(infraerr.KindAuthentication, infraerr.Context{}, "kafka OAUTHBEARER token from https://idp/token: refused", nil)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name string
		err  error
		cfg  *sarama.Config
		kind infraerr.Kind
		want string // "" : the error comes back as it was
	}{
		{"scram login refused", outOf(authFailed), saslCfg(sarama.SASLTypeSCRAMSHA512, true), infraerr.KindAuthentication,
			"Kafka refused the SASL SCRAM-SHA-512 login: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"},
		{"oauthbearer login refused", outOf(authFailed), saslCfg(sarama.SASLTypeOAuth, true), infraerr.KindAuthentication,
			"Kafka refused the OAUTHBEARER login: the broker rejected the token from KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"},
		{"mechanism not offered", outOf(sarama.ErrUnsupportedSASLMechanism), saslCfg(sarama.SASLTypePlaintext, false), infraerr.KindConfiguration,
			"the Kafka listener does not offer SASL mechanism PLAIN (KAFKA_SASL_MECHANISM)"},
		{"token request failed", outOf(tokenErr), saslCfg(sarama.SASLTypeOAuth, true), infraerr.KindAuthentication,
			"kafka OAUTHBEARER token from https://idp/token: refused"},
		{"unknown authority", outOf(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), tlsCfg, infraerr.KindAuthentication,
			"the Kafka broker's certificate is not signed by a trusted CA"},
		{"wrong host", outOf(x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"kafka-a"}}, Host: "kafka-b"}), tlsCfg,
			infraerr.KindAuthentication, "the Kafka broker's certificate is for another host (x509: certificate is valid for kafka-a, not kafka-b)"},
		{"expired", outOf(x509.CertificateInvalidError{Reason: x509.Expired, Detail: "it expired"}), tlsCfg, infraerr.KindAuthentication,
			"the Kafka broker's certificate is not valid (x509: certificate has expired or is not yet valid: it expired)"},
		{"plaintext listener", outOf(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), tlsCfg, infraerr.KindConfiguration,
			"the Kafka listener does not speak TLS"},
		{"tls alert", outOf(&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}), tlsCfg, infraerr.KindAuthentication,
			"the Kafka broker refused the TLS handshake (tls: bad certificate)"},
		{"not a security failure", outOf(refused), tlsCfg, 0, ""},
		{"sasl failure without sasl configured is not ours to explain", outOf(authFailed), plain, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kafkasec.Explain(tt.err, tt.cfg)
			if tt.want == "" {
				if got != tt.err {
					t.Errorf("got %v, want the error unchanged", got)
				}
				return
			}
			if line := infraerr.SanitizeError(got); !strings.Contains(line, tt.want) {
				t.Errorf("logged as %q, want %q", line, tt.want)
			}
			if k, _ := infraerr.KindOf(got); k != tt.kind || infraerr.Retriable(got) {
				t.Errorf("kind %v, want %v (not retriable)", k, tt.kind)
			}
		})
	}
	if kafkasec.Explain(nil, plain) != nil {
		t.Error("Explain(nil) must be nil")
	}
}
