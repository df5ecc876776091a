package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func clearEnv(t *testing.T) {
	for _, k := range []string{"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_ENVIRONMENT", "ONEX_ENVIRONMENT", "KAFKA_INSTANCE_ID",
		"OMNIBASE_INFRA_DB_URL", "ONEX_DRAIN_TIMEOUT", "ONEX_INPUT_TOPIC", "ONEX_OUTPUT_TOPIC", "ONEX_HTTP_PORT", "ONEX_HTTP_ADDR", "KAFKA_TOPIC_NAMESPACE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	clearKafkaSecurity(t)
	t.Setenv("OMNIBASE_ENV_FILE", filepath.Join(t.TempDir(), "missing.env"))
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "kafka required", env: map[string]string{}, wantErr: "KAFKA_BOOTSTRAP_SERVERS is required"},
		{name: "defaults", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}, check: func(t *testing.T, c *Config) {
			if c.Environment != "local" || c.DrainTimeout != 30*time.Second || c.HTTPAddr != ":8085" {
				t.Errorf("defaults wrong: %+v", c)
			}
		}},
		{name: "environment fallback", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "ONEX_ENVIRONMENT": "dev"}, check: func(t *testing.T, c *Config) {
			if c.Environment != "dev" {
				t.Errorf("environment = %q, want dev", c.Environment)
			}
		}},
		{name: "kafka env wins", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "ONEX_ENVIRONMENT": "dev", "KAFKA_ENVIRONMENT": "stage"}, check: func(t *testing.T, c *Config) {
			if c.Environment != "stage" {
				t.Errorf("environment = %q, want stage", c.Environment)
			}
		}},
		{name: "removed input topic", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "ONEX_INPUT_TOPIC": "x"}, wantErr: "ONEX_INPUT_TOPIC was removed"},
		{name: "bad instance id", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "KAFKA_INSTANCE_ID": "a b"}, wantErr: "KAFKA_INSTANCE_ID"},
		{name: "drain clamped", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "ONEX_DRAIN_TIMEOUT": "900"}, check: func(t *testing.T, c *Config) {
			if c.DrainTimeout != 300*time.Second || len(c.Warnings) != 1 {
				t.Errorf("drain = %v warnings = %v", c.DrainTimeout, c.Warnings)
			}
		}},
		{name: "kafka security checked at start", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "onex"}, wantErr: "KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs KAFKA_SASL_PASSWORD"},
		{name: "kafka security kept", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
			"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "onex", "KAFKA_SASL_PASSWORD": "pw"}, check: func(t *testing.T, c *Config) {
			if c.Kafka.String() != "SASL_PLAINTEXT PLAIN" || c.Kafka.Password.Reveal() != "pw" || len(c.Warnings) != 1 {
				t.Errorf("kafka %v warnings %q", c.Kafka, c.Warnings)
			}
		}},
		{name: "no topic namespace by default", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1"}, check: func(t *testing.T, c *Config) {
			if c.TopicNamespace != "" {
				t.Errorf("topic namespace = %q, want none", c.TopicNamespace)
			}
		}},
		{name: "topic namespace normalised", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "KAFKA_TOPIC_NAMESPACE": " bench-1. "}, check: func(t *testing.T, c *Config) {
			if c.TopicNamespace != "bench-1" {
				t.Errorf("topic namespace = %q, want bench-1", c.TopicNamespace)
			}
		}},
		{name: "topic namespace with a dot", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "KAFKA_TOPIC_NAMESPACE": "a.b"}, wantErr: "KAFKA_TOPIC_NAMESPACE"},
		{name: "topic namespace upper case", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "KAFKA_TOPIC_NAMESPACE": "Bench"}, wantErr: "one lowercase segment"},
		{name: "drain not a number", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "ONEX_DRAIN_TIMEOUT": "soon"}, wantErr: "ONEX_DRAIN_TIMEOUT"},
		{name: "bad dsn scheme", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "OMNIBASE_INFRA_DB_URL": "mysql://u:hunter2@h/db"}, wantErr: "scheme"},
		{name: "dsn without db", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "OMNIBASE_INFRA_DB_URL": "postgresql://u:hunter2@h:5432/"}, wantErr: "no database name"},
		{name: "good dsn", env: map[string]string{"KAFKA_BOOTSTRAP_SERVERS": "b:1", "OMNIBASE_INFRA_DB_URL": "postgres://u:hunter2@h:5432/db"}, check: func(t *testing.T, c *Config) {
			if c.DatabaseURL.Reveal() != "postgres://u:hunter2@h:5432/db" {
				t.Errorf("dsn not kept")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load("test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("postgresql://onex:hunter2@db:5432/x")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "dsn", s)
	j, _ := json.Marshal(struct{ S Secret }{s})
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%v %s", s, s), buf.String(), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret leaked: %s", out)
		}
	}
}

func TestEnvFileDoesNotOverride(t *testing.T) {
	clearEnv(t)
	p := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(p, []byte("# comment\nKAFKA_BOOTSTRAP_SERVERS=file:1\nexport ONEX_ENVIRONMENT=\"fromfile\"\nbogus line\n"), 0o600)
	t.Setenv("OMNIBASE_ENV_FILE", p)
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "env:1")
	c, err := Load("test")
	if err != nil {
		t.Fatal(err)
	}
	if c.KafkaBootstrap != "env:1" {
		t.Errorf("env file overrode the environment: %q", c.KafkaBootstrap)
	}
	if c.Environment != "fromfile" {
		t.Errorf("env file value not loaded: %q", c.Environment)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "line 4") {
		t.Errorf("warnings = %v, want one naming line 4", c.Warnings)
	}
	os.Unsetenv("ONEX_ENVIRONMENT")
}

func TestLoadEnvFileKeys(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantSet []string
		want    map[string]string
	}{
		{name: "sets only what is unset", file: "A_ONEX=1\nB_ONEX=file\n", env: map[string]string{"B_ONEX": "env"},
			wantSet: []string{"A_ONEX"}, want: map[string]string{"A_ONEX": "1", "B_ONEX": "env"}},
		{name: "an empty variable counts as set", file: "A_ONEX=file\n", env: map[string]string{"A_ONEX": ""},
			wantSet: nil, want: map[string]string{"A_ONEX": ""}},
		{name: "quotes and export", file: "export A_ONEX='x y'\nB_ONEX=\"z\"\n",
			wantSet: []string{"A_ONEX", "B_ONEX"}, want: map[string]string{"A_ONEX": "x y", "B_ONEX": "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"A_ONEX", "B_ONEX"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p := filepath.Join(t.TempDir(), ".env")
			if err := os.WriteFile(p, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			set, warnings := LoadEnvFileKeys(p)
			if fmt.Sprint(set) != fmt.Sprint(tt.wantSet) || len(warnings) != 0 {
				t.Errorf("set = %v warnings = %v, want %v and none", set, warnings, tt.wantSet)
			}
			for k, v := range tt.want {
				if got := os.Getenv(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestFloat(t *testing.T) {
	cases := []struct {
		val     string
		want    float64
		wantErr bool
	}{
		{"", 0.3, false},
		{"0.5", 0.5, false},
		{" 0.05 ", 0.05, false},
		{"1e-1", 0.1, false},
		{"half", 0, true},
		{"NaN", 0, true},
		{"+Inf", 0, true},
	}
	for _, c := range cases {
		t.Setenv("ONEX_TEST_FLOAT", c.val)
		got, err := Float("ONEX_TEST_FLOAT", 0.3)
		if (err != nil) != c.wantErr || (!c.wantErr && got != c.want) {
			t.Errorf("Float(%q) = %v, %v; want %v (error %v)", c.val, got, err, c.want, c.wantErr)
		}
	}
}
