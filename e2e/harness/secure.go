package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// SecureServers are the secured servers of the secured suite, started by
// the project's own scripts (ONEX_INFRA_SECURE=1, docs/security.md):
// Kafka with a SASL_SSL listener (SCRAM-SHA-512), a TLS-only PostgreSQL,
// and Consul with ACLs on (default deny) behind HTTPS, all with
// certificates from one local test CA.
type SecureServers struct {
	// Kafka are the fleet's KAFKA_* variables for the SASL_SSL listener
	// (bootstrap servers, protocol, mechanism, user, password, CA file).
	Kafka map[string]string
	// PostgresURL is a DSN with a password of its own (random per run, so
	// a search for it in what the run wrote means something); TLS comes
	// from POSTGRES_SSL_MODE and POSTGRES_SSL_CA_FILE, not from the DSN.
	PostgresURL string
	// Consul are the consul effect's CONSUL_* variables: the HTTPS address,
	// the CA and the token of the least policy.
	Consul map[string]string
	// ConsulReadOnlyToken may read the catalog and nothing else;
	// ConsulBootstrapToken is the agent's management token.
	ConsulReadOnlyToken, ConsulBootstrapToken string
	// CAFile is the local test CA every server's certificate chains to.
	CAFile string
}

// Secrets are the values no log line, record, metric or error of the
// secured run may contain.
func (s SecureServers) Secrets() map[string]string {
	out := map[string]string{
		"KAFKA_SASL_PASSWORD":         s.Kafka["KAFKA_SASL_PASSWORD"],
		"CONSUL_HTTP_TOKEN":           s.Consul["CONSUL_HTTP_TOKEN"],
		"the Consul read-only token":  s.ConsulReadOnlyToken,
		"the Consul management token": s.ConsulBootstrapToken,
	}
	if u, err := url.Parse(s.PostgresURL); err == nil {
		if pw, ok := u.User.Password(); ok {
			out["the PostgreSQL password"] = pw
		}
	}
	for k, v := range out {
		if v == "" {
			delete(out, k)
		}
	}
	return out
}

// SecureProvider is a Provider that can also run the secured servers.
type SecureProvider interface {
	// StartSecure starts the secured servers from empty data.
	StartSecure(ctx context.Context) (SecureServers, error)
	// StopSecure stops them.
	StopSecure(ctx context.Context) error
	// IssueCert makes a key and a certificate signed by the servers' CA
	// (EKU e.g. "clientAuth"; SAN "" or e.g. "DNS:localhost,IP:127.0.0.1")
	// and returns their paths.
	IssueCert(ctx context.Context, name, cn, san, eku string) (certFile, keyFile string, err error)
}

// secureEnv: the secured servers of the e2e run, on ports apart from the
// test infrastructure's (39094.., 5457, 38510..) and from the plaintext e2e
// servers, under the e2e state directory.
var secureEnv = map[string]string{
	"ONEX_INFRA_SECURE":       "1",
	"ONEX_KAFKA_SECURE_PORT":  "29094",
	"ONEX_PG_SECURE_CLUSTER":  "onexe2esecure",
	"ONEX_PG_SECURE_PORT":     "5447",
	"ONEX_CONSUL_SECURE_PORT": "28510",
}

// secureScripts is how each secured server is started and reset: the
// secured PostgreSQL is postgres.sh on another cluster with TLS only.
func (l *local) secureScript(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(l.root, "scripts", "infra", name), args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(stderr.Bytes(), 2000))
	}
	return out, nil
}

func (l *local) secureEnv(pgPassword string) []string {
	env := append([]string{}, l.env...)
	for k, v := range secureEnv {
		env = append(env, k+"="+v)
	}
	env = append(env, "ONEX_PG_CLUSTER="+secureEnv["ONEX_PG_SECURE_CLUSTER"], "ONEX_PG_PORT="+secureEnv["ONEX_PG_SECURE_PORT"], "ONEX_PG_SSL=1")
	if pgPassword != "" {
		env = append(env, "ONEX_PG_USER=onexsecure", "ONEX_PG_PASSWORD="+pgPassword)
	}
	return env
}

func (l *local) StartSecure(ctx context.Context) (SecureServers, error) {
	pw, err := randomHex(16)
	if err != nil {
		return SecureServers{}, err
	}
	env := l.secureEnv(pw)
	// From empty data, with new passwords and tokens.
	for _, step := range [][]string{
		{"kafka-secure.sh", "reset"}, {"consul-secure.sh", "reset"}, {"postgres.sh", "reset"},
		{"kafka-secure.sh", "start"}, {"consul-secure.sh", "start"}, {"postgres.sh", "start"},
	} {
		if _, err := l.secureScript(ctx, env, step[0], step[1:]...); err != nil {
			return SecureServers{}, err
		}
	}
	s := SecureServers{Kafka: map[string]string{}, Consul: map[string]string{}}
	out, err := l.secureScript(ctx, env, "kafka-secure.sh", "env")
	if err != nil {
		return SecureServers{}, err
	}
	s.Kafka = exports(out)
	if s.Kafka["KAFKA_SASL_PASSWORD"] == "" || s.Kafka["KAFKA_BOOTSTRAP_SERVERS"] == "" {
		return SecureServers{}, fmt.Errorf("kafka-secure.sh env printed no bootstrap or password")
	}
	out, err = l.secureScript(ctx, env, "env.sh")
	if err != nil {
		return SecureServers{}, err
	}
	infra := exports(out)
	s.CAFile = infra["ONEX_INFRA_CA_FILE"]
	// The DSN without sslmode: the fleet gets TLS from POSTGRES_SSL_*.
	s.PostgresURL = fmt.Sprintf("postgresql://onexsecure:%s@127.0.0.1:%s/omnibase_infra", pw, secureEnv["ONEX_PG_SECURE_PORT"])
	b, err := os.ReadFile(infra["ONEX_CONSUL_SECURE_ENV"])
	if err != nil {
		return SecureServers{}, fmt.Errorf("the secured Consul's client settings: %w", err)
	}
	c := exports(b)
	s.ConsulReadOnlyToken = c["ONEX_CONSUL_SECURE_READONLY_TOKEN"]
	s.ConsulBootstrapToken = c["ONEX_CONSUL_SECURE_BOOTSTRAP_TOKEN"]
	for k, v := range c {
		if strings.HasPrefix(k, "CONSUL_") {
			s.Consul[k] = v
		}
	}
	if s.CAFile == "" || s.Consul["CONSUL_HTTP_TOKEN"] == "" || s.ConsulReadOnlyToken == "" {
		return SecureServers{}, fmt.Errorf("incomplete secured settings (CA %q, Consul keys %d)", s.CAFile, len(s.Consul))
	}
	return s, nil
}

func (l *local) StopSecure(ctx context.Context) error {
	if os.Getenv("ONEX_E2E_KEEP") == "1" {
		return nil
	}
	env := l.secureEnv("")
	var first error
	for _, s := range []string{"consul-secure.sh", "postgres.sh", "kafka-secure.sh"} {
		if _, err := l.secureScript(ctx, env, s, "stop"); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (l *local) IssueCert(ctx context.Context, name, cn, san, eku string) (string, string, error) {
	out, err := l.secureScript(ctx, l.secureEnv(""), "tls.sh", "issue", name, cn, san, eku)
	if err != nil {
		return "", "", err
	}
	crt := strings.TrimSpace(string(out))
	return crt, strings.TrimSuffix(crt, ".pem") + ".key", nil
}

// exports parses `export NAME=value` lines (values as printf %q quotes
// them: plain, or in single quotes).
func exports(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[k] = strings.Trim(v, `'"`)
	}
	return out
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
