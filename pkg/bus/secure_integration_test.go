package bus

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

// transcript is everything a secured test writes: sarama's own log, the log
// lines a service would write about the errors, and the errors themselves.
// At the end no secret may be in it (TestSecureKafka's last step).
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
	log *slog.Logger
}

func (tr *transcript) Write(p []byte) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.Write(p)
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.String()
}

// record writes err the way the services log a Kafka error (sanitized), and
// its full text too, as a developer's debug print would.
func (tr *transcript) record(what string, err error) {
	tr.log.Warn(what, "error", infraerr.SanitizeError(err))
	fmt.Fprintf(tr, "%s: %v\n", what, err)
}

// captureSarama sends sarama's log, which names brokers, mechanisms and
// failures, into tr for the test's duration.
func captureSarama(t *testing.T, tr *transcript) {
	prev := sarama.Logger
	sarama.Logger = log.New(tr, "[sarama] ", 0)
	t.Cleanup(func() { sarama.Logger = prev })
}

// TestSecureKafka runs the fleet's client settings against the secured
// broker of scripts/infra/kafka-secure.sh: every protocol and mechanism
// produces and consumes, the ways a connection is refused give one clear,
// classified error within seconds, and no secret reaches anything the test
// wrote.
func TestSecureKafka(t *testing.T) {
	sk := testkit.SecureKafkaBroker(t)
	tr := &transcript{}
	tr.log = observability.NewLogger(tr, "bus-secure-test", "DEBUG")
	captureSarama(t, tr)
	idp := testkit.NewTokenEndpoint(t, "onex-fleet-test")
	other := testca.New(t, "a CA the broker never heard of")
	const wrongPassword = "wrong-pw-7Kq2-never-print"

	scram512 := config.KafkaSecurity{Protocol: config.KafkaSASLSSL, Mechanism: config.SASLScramSHA512,
		Username: sk.Username, Password: config.Secret(sk.Password), CAFile: sk.CAFile}
	with := func(k config.KafkaSecurity, change func(*config.KafkaSecurity)) config.KafkaSecurity {
		change(&k)
		return k
	}
	oauth := config.KafkaSecurity{Protocol: config.KafkaSASLSSL, Mechanism: config.SASLOAuthBearer, CAFile: sk.CAFile,
		OAuth: config.OAuthClient{TokenURL: idp.URL, ClientID: idp.ClientID, ClientSecret: config.Secret(idp.ClientSecret)}}

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name   string
			broker string
			sec    config.KafkaSecurity
			txn    bool // also commit a transaction (markers travel over the inter-broker SASL_SSL listener)
		}{
			{name: "SASL_SSL SCRAM-SHA-512", broker: sk.SASLSSL, sec: scram512, txn: true},
			{name: "SASL_SSL SCRAM-SHA-256", broker: sk.SASLSSL, sec: with(scram512, func(k *config.KafkaSecurity) { k.Mechanism = config.SASLScramSHA256 })},
			{name: "SASL_SSL PLAIN", broker: sk.SASLSSL, sec: with(scram512, func(k *config.KafkaSecurity) { k.Mechanism = config.SASLPlain })},
			{name: "SASL_SSL OAUTHBEARER", broker: sk.SASLSSL, sec: oauth},
			{name: "SSL with a client certificate", broker: sk.SSL, sec: config.KafkaSecurity{Protocol: config.KafkaSSL,
				CAFile: sk.CAFile, CertFile: sk.ClientCertFile, KeyFile: sk.ClientKeyFile}},
			{name: "SASL_PLAINTEXT SCRAM-SHA-512", broker: sk.SASLPlaintext, sec: with(scram512, func(k *config.KafkaSecurity) {
				k.Protocol, k.CAFile = config.KafkaSASLPlaintext, ""
			})},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				roundTrip(t, []string{tt.broker}, tt.sec, tt.txn)
			})
		}
		if n := idp.Requests(); n < 1 || n > 2 {
			// Every client of the OAUTHBEARER case shares one token.
			t.Errorf("token endpoint asked %d times, want 1 (one token shared by the producer, the consumer and the admin)", n)
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name    string
			broker  string
			sec     config.KafkaSecurity
			prepare func()
			kind    infraerr.Kind
			want    string
		}{
			{name: "wrong password", broker: sk.SASLSSL,
				sec:  with(scram512, func(k *config.KafkaSecurity) { k.Password = wrongPassword }),
				kind: infraerr.KindAuthentication, want: "Kafka refused the SASL SCRAM-SHA-512 login: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"},
			{name: "unknown user over SASL_PLAINTEXT", broker: sk.SASLPlaintext,
				sec: with(scram512, func(k *config.KafkaSecurity) {
					k.Protocol, k.CAFile, k.Username, k.Password = config.KafkaSASLPlaintext, "", "nobody", wrongPassword
				}),
				kind: infraerr.KindAuthentication, want: "Kafka refused the SASL SCRAM-SHA-512 login"},
			{name: "untrusted CA", broker: sk.SASLSSL,
				sec:  with(scram512, func(k *config.KafkaSecurity) { k.CAFile = other.CertFile }),
				kind: infraerr.KindAuthentication, want: "the Kafka broker's certificate is not signed by a trusted CA (KAFKA_SSL_CA_FILE, else the system roots)"},
			{name: "system roots do not know the local CA", broker: sk.SASLSSL,
				sec:  with(scram512, func(k *config.KafkaSecurity) { k.CAFile = "" }),
				kind: infraerr.KindAuthentication, want: "not signed by a trusted CA"},
			{name: "no client certificate where one is required", broker: sk.SSL,
				sec:  config.KafkaSecurity{Protocol: config.KafkaSSL, CAFile: sk.CAFile},
				kind: infraerr.KindAuthentication, want: "the Kafka broker refused the TLS handshake (tls: bad certificate)"},
			{name: "client certificate of another CA", broker: sk.SSL,
				sec: func() config.KafkaSecurity {
					cert, key := other.Issue(t, "stranger", "localhost")
					return config.KafkaSecurity{Protocol: config.KafkaSSL, CAFile: sk.CAFile, CertFile: cert, KeyFile: key}
				}(),
				kind: infraerr.KindAuthentication, want: "the Kafka broker refused the TLS handshake (tls: "},
			{name: "token endpoint refuses the client", broker: sk.SASLSSL,
				// Another endpoint address: a token source of its own; the
				// shared one still holds the good token of the round trip.
				sec:     with(oauth, func(k *config.KafkaSecurity) { k.OAuth.TokenURL += "?refused" }),
				prepare: func() { idp.Refuse(true) },
				kind:    infraerr.KindAuthentication,
				want:    "kafka OAUTHBEARER token from " + idp.URL + ": the token endpoint refused KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET (HTTP 401 invalid_client)"},
			{name: "broker refuses an expired token", broker: sk.SASLSSL,
				sec: with(oauth, func(k *config.KafkaSecurity) { k.OAuth.TokenURL += "?expired" }),
				prepare: func() {
					idp.Refuse(false)
					idp.SetLifetime(-time.Minute)
				},
				kind: infraerr.KindAuthentication, want: "Kafka refused the OAUTHBEARER login: the broker rejected the token from KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.prepare != nil {
					tt.prepare()
				}
				t.Cleanup(func() {
					idp.Refuse(false)
					idp.SetLifetime(time.Hour)
				})
				err := refusedWithin(t, 20*time.Second, []string{tt.broker}, tt.sec)
				tr.record("kafka not reachable", err)
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q\nwant one containing %q", err, tt.want)
				}
				got := infraerr.SanitizeError(err)
				if !strings.Contains(got, tt.want) || strings.Contains(got, "\n") {
					t.Errorf("the services would log %q: not the one clear line %q", got, tt.want)
				}
				if kind, _ := infraerr.KindOf(err); kind != tt.kind || infraerr.Retriable(err) {
					t.Errorf("kind %v (retriable %v), want %v", kind, infraerr.Retriable(err), tt.kind)
				}
			})
		}
	})

	t.Run("no secret in anything written", func(t *testing.T) {
		written := tr.String()
		if !strings.Contains(written, "[sarama]") || !strings.Contains(written, "Kafka refused") {
			t.Fatalf("the transcript lacks sarama's log or the errors; the check would prove nothing:\n%s", written)
		}
		secrets := map[string]string{"the user's password": sk.Password, "the wrong password": wrongPassword,
			"the client secret": idp.ClientSecret}
		for i, tok := range idp.Issued() {
			secrets[fmt.Sprintf("access token %d", i)] = tok
		}
		broker, err := os.ReadFile(sk.LogFile)
		if err != nil {
			t.Fatalf("the broker's log: %v", err)
		}
		for name, secret := range secrets {
			if strings.Contains(written, secret) {
				t.Errorf("%s is in what the test wrote", name)
			}
			if strings.Contains(string(broker), secret) {
				t.Errorf("%s is in the broker's log %s", name, sk.LogFile)
			}
		}
	})
}

// roundTrip creates a topic, produces three records with the fleet's
// producer and reads them back with a read_committed consumer, all with
// sec; with txn it also commits a transaction and reads that record.
func roundTrip(t *testing.T, brokers []string, sec config.KafkaSecurity, txn bool) {
	t.Helper()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-secure-test", Security: &sec})
	if err != nil {
		t.Fatal(err)
	}
	topic := "onex.evt.test.secure-" + testkit.Unique() + ".v1"
	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	defer func() { _ = admin.DeleteTopic(topic) }()

	p, err := NewProducer(brokers, cfg, nil)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := range 3 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("node"), Value: sarama.StringEncoder(fmt.Sprint(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Send(ctx, msgs...); err != nil {
		t.Fatalf("send: %v", err)
	}
	want := []string{"0", "1", "2"}
	if txn {
		tcfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-secure-test-txn", Security: &sec})
		if err != nil {
			t.Fatal(err)
		}
		tcfg.Producer.Transaction.ID = "bus-secure-test-" + testkit.Unique()
		tp, err := sarama.NewSyncProducer(brokers, tcfg)
		if err != nil {
			t.Fatalf("transactional producer: %v", err)
		}
		defer tp.Close()
		if err := tp.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("node"), Value: sarama.StringEncoder("txn")}); err != nil {
			t.Fatal(err)
		}
		if err := tp.CommitTxn(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		want = append(want, "txn")
	}

	c, err := sarama.NewConsumer(brokers, cfg)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	defer pc.Close()
	var got []string
	for len(got) < len(want) {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case <-ctx.Done():
			t.Fatalf("read %q of %q before the deadline", got, want)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("read %q, want %q", got, want)
	}
}

// refusedWithin connects with sec, expecting a refusal within limit (a
// refused connection must never hang), and returns the error.
func refusedWithin(t *testing.T, limit time.Duration, brokers []string, sec config.KafkaSecurity) error {
	t.Helper()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-secure-test", Security: &sec})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		c, err := NewClient(brokers, cfg)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("connected; want a refusal")
		}
		t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), infraerr.SanitizeError(err))
		return err
	case <-time.After(limit):
		t.Fatalf("no answer within %s: a refused connection must not hang", limit)
		return nil
	}
}
