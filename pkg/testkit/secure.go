package testkit

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SecureKafka is the secured broker scripts/infra/kafka-secure.sh runs next
// to the plaintext one, as its client.env describes it.
type SecureKafka struct {
	// SASLSSL, SSL and SASLPlaintext are the listeners' host:port. SSL
	// requires a client certificate.
	SASLSSL, SSL, SASLPlaintext string
	// CAFile is the CA that signed the broker's certificate and the client
	// certificate (ClientCertFile, ClientKeyFile).
	CAFile, ClientCertFile, ClientKeyFile string
	// Username and Password are a SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN user.
	Username, Password string
	// LogFile is the broker's own log.
	LogFile string
}

// SecureKafkaBroker returns the secured broker named by ONEX_KAFKA_SECURE_ENV
// (scripts/infra/env.sh sets it; `make test-infra-up` starts the broker).
// Like the other servers, it is skipped when absent unless
// ONEX_REQUIRE_INFRA=1.
func SecureKafkaBroker(t testing.TB) SecureKafka {
	t.Helper()
	path := need(t, "ONEX_KAFKA_SECURE_ENV", "secured Kafka broker")
	f, err := os.Open(path)
	if err != nil {
		msg := "secured Kafka broker not set up (" + err.Error() + "): run `scripts/infra/kafka-secure.sh start` with the test servers' environment (`make test-infra-up`)"
		if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			kv[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return SecureKafka{
		SASLSSL: kv["SASL_SSL"], SSL: kv["SSL"], SASLPlaintext: kv["SASL_PLAINTEXT"],
		CAFile: kv["CA_FILE"], ClientCertFile: kv["CLIENT_CERT_FILE"], ClientKeyFile: kv["CLIENT_KEY_FILE"],
		Username: kv["USERNAME"], Password: kv["PASSWORD"],
		// kafka-secure.sh keeps its state in $ONEX_STATE_DIR/kafka-secure
		// and its log beside that directory.
		LogFile: filepath.Join(filepath.Dir(filepath.Dir(path)), "kafka-secure.log"),
	}
}

// SecurePostgres returns the DSN of the TLS-only PostgreSQL cluster that
// `make test-infra-up` runs next to the plain one (ONEX_PG_SECURE_URL, no
// sslmode in it) and the CA its server certificate chains to
// (ONEX_INFRA_CA_FILE).
func SecurePostgres(t testing.TB) (dsn, caFile string) {
	t.Helper()
	return need(t, "ONEX_PG_SECURE_URL", "TLS-only PostgreSQL server"), need(t, "ONEX_INFRA_CA_FILE", "local test CA")
}
