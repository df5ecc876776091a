// Package config loads a service's settings from the environment variables of
// spec section 11, an optional KEY=VALUE env file, and defaults. Values that
// are secrets are held in Secret, which never prints its value.
//
// Resolution order (spec 11.2, uncontrolled lane): the process environment
// wins, then the env file (OMNIBASE_ENV_FILE, default ~/.omnibase/.env), then
// the defaults below. Existing environment variables are never overwritten.
// Secrets and transport settings from Infisical are written into the
// environment before Load runs, by package infisical (pkg/config/infisical),
// which ranks them below the process environment and above the env file, or
// above both on the controlled lane (docs/configuration.md).
package config

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/omninode/onex-fleet/pkg/topicns"
)

// Secret is a string that never reaches logs, errors or JSON.
type Secret string

// String redacts the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}

// LogValue redacts the value in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// GoString redacts the value in %#v output.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// MarshalJSON redacts the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Reveal returns the value, for the one call that needs it (a driver).
func (s Secret) Reveal() string { return string(s) }

// Config is the settings every service shares. Service-specific settings are
// read with the Env helpers by the service itself.
type Config struct {
	Service string

	KafkaBootstrap  string // KAFKA_BOOTSTRAP_SERVERS (required)
	Environment     string // KAFKA_ENVIRONMENT, then ONEX_ENVIRONMENT, default "local"
	InstanceID      string // KAFKA_INSTANCE_ID, [a-zA-Z0-9._-] only
	DeadLetterTopic string // KAFKA_DEAD_LETTER_TOPIC overrides DLQ routing
	// TopicNamespace (KAFKA_TOPIC_NAMESPACE, validated) prefixes every topic
	// name on the wire, the way the Python runtime does, so a benchmark or a
	// test fleet on a shared broker stays off the deployment's topics.
	// Empty by default: `make run` and deployments use the canonical names.
	TopicNamespace topicns.Namespace
	// ConsumeFromOldest is where a consumer group with no committed offset
	// starts: the oldest record (ONEX_CONSUMER_START=oldest, the default, so
	// nothing published before a service first starts is lost) or the
	// newest (=newest; tests use it to ignore earlier runs' records).
	ConsumeFromOldest bool

	// Kafka is how the Kafka clients encrypt and authenticate
	// (KAFKA_SECURITY_PROTOCOL and the rest, validated; see KafkaSecurity).
	Kafka KafkaSecurity

	DatabaseURL Secret // OMNIBASE_INFRA_DB_URL (a DSN with credentials)
	ConsulAddr  string // CONSUL_HTTP_ADDR, default 127.0.0.1:8500
	ConsulToken Secret // CONSUL_HTTP_TOKEN

	HTTPAddr     string        // ONEX_HTTP_ADDR, else :ONEX_HTTP_PORT (default 8085)
	GRPCAddr     string        // ONEX_GRPC_ADDR (projector read API), default :8086
	LogLevel     string        // ONEX_LOG_LEVEL, default INFO
	DrainTimeout time.Duration // ONEX_DRAIN_TIMEOUT seconds, 1..300 (clamped), default 30
	ContractsDir string        // ONEX_CONTRACTS_DIR, default ./contracts
	// Pprof serves net/http/pprof under /debug/pprof/ on the health server,
	// with the mutex and block profiles on (ONEX_PPROF=true). Off by
	// default: profiles expose internals and cost CPU while taken; `make
	// bench` turns it on to explain its figures.
	Pprof bool

	// Warnings collects non-fatal findings (clamped values, env file
	// problems) for the caller to log once its logger exists.
	Warnings []string
}

// Load reads the shared settings for service. It fails on a missing Kafka
// bootstrap list, on the removed ONEX_INPUT_TOPIC/ONEX_OUTPUT_TOPIC, and on
// malformed values, with messages that name the variable but never a secret.
func Load(service string) (*Config, error) {
	c := &Config{Service: service}
	c.Warnings = append(c.Warnings, LoadEnvFile(EnvFilePath())...)

	for _, removed := range []string{"ONEX_INPUT_TOPIC", "ONEX_OUTPUT_TOPIC"} {
		if _, ok := os.LookupEnv(removed); ok {
			return nil, fmt.Errorf("config: %s was removed; topics come from the service contract", removed)
		}
	}
	c.KafkaBootstrap = strings.TrimSpace(os.Getenv("KAFKA_BOOTSTRAP_SERVERS"))
	if c.KafkaBootstrap == "" {
		return nil, errors.New("config: KAFKA_BOOTSTRAP_SERVERS is required (Kafka is required infrastructure)")
	}
	c.Environment = firstNonEmpty(os.Getenv("KAFKA_ENVIRONMENT"), os.Getenv("ONEX_ENVIRONMENT"), "local")
	c.InstanceID = os.Getenv("KAFKA_INSTANCE_ID")
	for _, r := range c.InstanceID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return nil, fmt.Errorf("config: KAFKA_INSTANCE_ID may contain only [a-zA-Z0-9._-]")
		}
	}
	k, err := LoadKafkaSecurity()
	if err != nil {
		return nil, err
	}
	c.Kafka = k
	c.Warnings = append(c.Warnings, k.Warnings()...)
	c.DeadLetterTopic = os.Getenv("KAFKA_DEAD_LETTER_TOPIC")
	ns, err := topicns.Parse(os.Getenv(topicns.EnvVar))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.TopicNamespace = ns
	switch strings.ToLower(firstNonEmpty(os.Getenv("ONEX_CONSUMER_START"), "oldest")) {
	case "oldest", "earliest":
		c.ConsumeFromOldest = true
	case "newest", "latest":
	default:
		return nil, errors.New("config: ONEX_CONSUMER_START must be oldest or newest")
	}

	if dsn := os.Getenv("OMNIBASE_INFRA_DB_URL"); dsn != "" {
		if err := ValidateDSN(dsn); err != nil {
			return nil, err
		}
		c.DatabaseURL = Secret(dsn)
	}
	c.ConsulAddr = firstNonEmpty(os.Getenv("CONSUL_HTTP_ADDR"), "127.0.0.1:8500")
	c.ConsulToken = Secret(os.Getenv("CONSUL_HTTP_TOKEN"))

	port := firstNonEmpty(os.Getenv("ONEX_HTTP_PORT"), "8085")
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("config: ONEX_HTTP_PORT %q is not a port number", port)
	}
	c.HTTPAddr = firstNonEmpty(os.Getenv("ONEX_HTTP_ADDR"), ":"+port)
	c.GRPCAddr = firstNonEmpty(os.Getenv("ONEX_GRPC_ADDR"), ":8086")
	c.LogLevel = firstNonEmpty(os.Getenv("ONEX_LOG_LEVEL"), "INFO")
	c.ContractsDir = firstNonEmpty(os.Getenv("ONEX_CONTRACTS_DIR"), "./contracts")
	pprof, err := Bool("ONEX_PPROF", false)
	if err != nil {
		return nil, err
	}
	c.Pprof = pprof

	drain, err := Int("ONEX_DRAIN_TIMEOUT", 30)
	if err != nil {
		return nil, err
	}
	if drain < 1 || drain > 300 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("ONEX_DRAIN_TIMEOUT=%d outside 1..300, clamped", drain))
		drain = min(max(drain, 1), 300)
	}
	c.DrainTimeout = time.Duration(drain) * time.Second
	return c, nil
}

// ValidateDSN checks a PostgreSQL DSN per spec 11.1: scheme postgresql or
// postgres, a host, and a database name. Errors never include the DSN.
func ValidateDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return errors.New("config: OMNIBASE_INFRA_DB_URL is not a valid URL")
	}
	if u.Scheme != "postgresql" && u.Scheme != "postgres" {
		return fmt.Errorf("config: OMNIBASE_INFRA_DB_URL scheme must be postgresql or postgres, got %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("config: OMNIBASE_INFRA_DB_URL has no host")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("config: OMNIBASE_INFRA_DB_URL has no database name")
	}
	return nil
}

// Int reads an integer variable, returning def when unset.
func Int(name string, def int) (int, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("config: %s=%q is not an integer", name, v)
	}
	return n, nil
}

// Duration reads a number of unit (e.g. time.Second) from name, def when unset.
func Duration(name string, unit, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("config: %s=%q is not a non-negative number", name, v)
	}
	return time.Duration(f * float64(unit)), nil
}

// Float reads a decimal number from name, def when unset.
func Float(name string, def float64) (float64, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("config: %s=%q is not a number", name, v)
	}
	return f, nil
}

// String reads name, def when unset or empty.
func String(name, def string) string { return firstNonEmpty(os.Getenv(name), def) }

// Bool reads a boolean (true/1/yes, false/0/no), def when unset.
func Bool(name string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "":
		return def, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("config: %s must be true or false", name)
}

// EnvFilePath is the env file to load: OMNIBASE_ENV_FILE, else
// ~/.omnibase/.env ("" when there is no home directory).
func EnvFilePath() string {
	if p := os.Getenv("OMNIBASE_ENV_FILE"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".omnibase", ".env")
}

// LoadEnvFile sets each KEY=VALUE of path that is not already in the
// environment. A missing file is not an error. It returns warnings for lines
// it could not read; they name the line number, never the value.
func LoadEnvFile(path string) []string {
	_, warnings := LoadEnvFileKeys(path)
	return warnings
}

// LoadEnvFileKeys is LoadEnvFile that also returns the keys it set, so a
// caller can tell a value from the file apart from one the process was
// started with (the Infisical prefetch ranks them differently, spec 11.2).
func LoadEnvFileKeys(path string) (set []string, warnings []string) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			warnings = append(warnings, fmt.Sprintf("env file line %d ignored: not KEY=VALUE", n))
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		if _, exists := os.LookupEnv(k); !exists {
			_ = os.Setenv(k, v)
			set = append(set, k)
		}
	}
	return set, warnings
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
