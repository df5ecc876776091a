// Tests of the prefetch against the protocol double of Infisical in
// double_test.go (a stand-in speaking the SDK's HTTP protocol, not
// Infisical). They change the process environment, so none runs in parallel.
package infisical

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// testNeeds is a service with a fixed-list transport, plain env keys and an
// optional one.
var testNeeds = Needs{
	Service:    "projector-effect",
	Transports: []string{Kafka},
	Env:        []string{"OMNIBASE_INFRA_DB_URL", "CONSUL_HTTP_TOKEN"},
	Optional:   []string{"CONSUL_HTTP_TOKEN"},
}

// allKafka seeds every kafka key in /shared/kafka.
var allKafka = map[string]string{"KAFKA_GROUP_ID": "g-shared", "KAFKA_ACKS": "all", "KAFKA_REQUEST_TIMEOUT_MS": "30000"}

const testDSN = "postgresql://onex:hunter2-db-pass@db.internal:5432/omnibase_infra"

// clearEnv unsets every variable the prefetch reads or writes, for the test.
func clearEnv(t *testing.T) {
	t.Helper()
	vars := []string{"INFISICAL_ADDR", "INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET", "INFISICAL_PROJECT_ID",
		"INFISICAL_ENVIRONMENT", "INFISICAL_REQUIRED", "INFISICAL_TIMEOUT_SECONDS", "RUNTIME_PROFILE", "ONEX_SECRET_POLICY",
		"ONEX_LOG_LEVEL", "OMNIBASE_INFRA_DB_URL", "CONSUL_HTTP_TOKEN"}
	for _, keys := range TransportKeys {
		vars = append(vars, keys...)
	}
	for _, keys := range TransportExtras {
		vars = append(vars, keys...)
	}
	for _, k := range vars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("OMNIBASE_ENV_FILE", filepath.Join(t.TempDir(), "absent.env"))
}

// bootstrap points the prefetch at d with its credentials.
func bootstrap(d *double, addr string) map[string]string {
	return map[string]string{"INFISICAL_ADDR": addr, "INFISICAL_CLIENT_ID": d.clientID,
		"INFISICAL_CLIENT_SECRET": d.clientSecret, "INFISICAL_PROJECT_ID": d.projectID}
}

// setup applies the environment and env file of one case.
func setup(t *testing.T, env, envFile map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	if envFile != nil {
		p := filepath.Join(t.TempDir(), ".env")
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(envFile)) {
			fmt.Fprintf(&b, "%s=%s\n", k, envFile[k])
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("OMNIBASE_ENV_FILE", p)
		// The prefetch sets what the file holds; t.Setenv restores it.
		for k := range envFile {
			if _, ok := env[k]; !ok {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
		}
	}
}

func captureLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func TestPrefetchResolution(t *testing.T) {
	const (
		uncontrolled = "uncontrolled"
		controlled   = "controlled"
	)
	tests := []struct {
		name    string
		lane    string
		policy  string // ONEX_SECRET_POLICY; "" means RUNTIME_PROFILE=staging (best_effort)
		env     map[string]string
		envFile map[string]string
		folders map[string]map[string]string
		want    map[string]string // value after the prefetch; "<unset>" = not set
		sources map[string]Source
		wantErr string
		kind    infraerr.Kind
		logHas  []string
	}{
		{
			name: "uncontrolled: Infisical fills what nobody set", lane: uncontrolled,
			folders: map[string]map[string]string{"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": testDSN}},
			want:    map[string]string{"KAFKA_ACKS": "all", "OMNIBASE_INFRA_DB_URL": testDSN},
			sources: map[string]Source{"KAFKA_ACKS": SourceInfisicalShared, "OMNIBASE_INFRA_DB_URL": SourceInfisicalShared, "CONSUL_HTTP_TOKEN": SourceMissing},
		},
		{
			name: "uncontrolled: process env wins over Infisical", lane: uncontrolled,
			env:     map[string]string{"KAFKA_ACKS": "1"},
			folders: map[string]map[string]string{"/shared/kafka": allKafka},
			want:    map[string]string{"KAFKA_ACKS": "1", "KAFKA_GROUP_ID": "g-shared"},
			sources: map[string]Source{"KAFKA_ACKS": SourceProcessEnv, "KAFKA_GROUP_ID": SourceInfisicalShared},
		},
		{
			name: "uncontrolled: Infisical wins over the env file", lane: uncontrolled,
			envFile: map[string]string{"KAFKA_ACKS": "0", "OMNIBASE_INFRA_DB_URL": "postgresql://file@h/db"},
			folders: map[string]map[string]string{"/shared/kafka": allKafka},
			want:    map[string]string{"KAFKA_ACKS": "all", "OMNIBASE_INFRA_DB_URL": "postgresql://file@h/db"},
			sources: map[string]Source{"KAFKA_ACKS": SourceInfisicalShared, "OMNIBASE_INFRA_DB_URL": SourceEnvFile},
		},
		{
			name: "uncontrolled: missing keys are warnings", lane: uncontrolled,
			folders: map[string]map[string]string{"/shared/kafka": {"KAFKA_ACKS": "all"}},
			want:    map[string]string{"KAFKA_ACKS": "all", "KAFKA_GROUP_ID": "<unset>"},
			sources: map[string]Source{"KAFKA_GROUP_ID": SourceMissing, "OMNIBASE_INFRA_DB_URL": SourceMissing},
			logHas:  []string{`"level":"WARN","msg":"secret prefetch: key found nowhere"`, `"key":"KAFKA_GROUP_ID"`},
		},
		{
			name: "uncontrolled: per-service path wins over shared", lane: uncontrolled,
			folders: map[string]map[string]string{
				"/shared/kafka": allKafka, "/services/projector-effect/kafka": {"KAFKA_GROUP_ID": "g-projector"},
				"/services/reducer/kafka": {"KAFKA_ACKS": "0"}, // another service's folder
			},
			want:    map[string]string{"KAFKA_GROUP_ID": "g-projector", "KAFKA_ACKS": "all"},
			sources: map[string]Source{"KAFKA_GROUP_ID": SourceInfisicalService, "KAFKA_ACKS": SourceInfisicalShared},
		},
		{
			name: "controlled: per-service path wins over shared", lane: controlled, policy: "required",
			folders: map[string]map[string]string{
				"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": "postgresql://shared@h/db"},
				"/services/projector-effect/env": {"OMNIBASE_INFRA_DB_URL": testDSN},
			},
			want:    map[string]string{"OMNIBASE_INFRA_DB_URL": testDSN},
			sources: map[string]Source{"OMNIBASE_INFRA_DB_URL": SourceInfisicalService},
		},
		{
			name: "controlled: Infisical wins over process env and env file", lane: controlled, policy: "required",
			env:     map[string]string{"KAFKA_ACKS": "1"},
			envFile: map[string]string{"KAFKA_GROUP_ID": "g-file"},
			folders: map[string]map[string]string{"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": testDSN}},
			want:    map[string]string{"KAFKA_ACKS": "all", "KAFKA_GROUP_ID": "g-shared"},
			sources: map[string]Source{"KAFKA_ACKS": SourceInfisicalShared, "KAFKA_GROUP_ID": SourceInfisicalShared},
			logHas:  []string{`"msg":"secret prefetch: Infisical replaces the ambient value","component":"secret_prefetch","key":"KAFKA_ACKS","transport":"kafka","path":"/shared/kafka","replaced":"process_env"`},
		},
		{
			name: "controlled: ambient value accepted with provenance", lane: controlled, policy: "required",
			env:     map[string]string{"OMNIBASE_INFRA_DB_URL": testDSN},
			envFile: map[string]string{"KAFKA_REQUEST_TIMEOUT_MS": "5000"},
			folders: map[string]map[string]string{"/shared/kafka": {"KAFKA_GROUP_ID": "g", "KAFKA_ACKS": "all"}},
			want:    map[string]string{"OMNIBASE_INFRA_DB_URL": testDSN, "KAFKA_REQUEST_TIMEOUT_MS": "5000"},
			sources: map[string]Source{"OMNIBASE_INFRA_DB_URL": SourceProcessEnv, "KAFKA_REQUEST_TIMEOUT_MS": SourceEnvFile},
			logHas: []string{`"msg":"secret prefetch: not in Infisical, using the ambient value","component":"secret_prefetch","key":"OMNIBASE_INFRA_DB_URL","transport":"env","source":"process_env"`,
				`"key":"KAFKA_REQUEST_TIMEOUT_MS","transport":"kafka","source":"env_file"`},
		},
		{
			name: "controlled, required: missing in both is a boot failure", lane: controlled, policy: "required",
			folders: map[string]map[string]string{"/shared/kafka": allKafka},
			wantErr: "not in Infisical nor in the environment: OMNIBASE_INFRA_DB_URL", kind: infraerr.KindSecretResolution,
			logHas: []string{`"level":"ERROR","msg":"secret prefetch failed; not starting"`},
		},
		{
			name: "controlled, best_effort: missing in both is logged, boot goes on", lane: controlled, policy: "best_effort",
			folders: map[string]map[string]string{"/shared/kafka": allKafka},
			want:    map[string]string{"KAFKA_ACKS": "all", "OMNIBASE_INFRA_DB_URL": "<unset>"},
			sources: map[string]Source{"OMNIBASE_INFRA_DB_URL": SourceMissing},
			logHas:  []string{`"level":"ERROR","msg":"secret prefetch incomplete (best_effort); starting anyway"`},
		},
		{
			name: "controlled, required: an optional key may be missing", lane: controlled, policy: "required",
			folders: map[string]map[string]string{"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": testDSN}},
			want:    map[string]string{"CONSUL_HTTP_TOKEN": "<unset>"},
			sources: map[string]Source{"CONSUL_HTTP_TOKEN": SourceMissing},
		},
		{
			name: "controlled, required: Kafka security keys come with the kafka transport and may be missing", lane: controlled, policy: "required",
			folders: map[string]map[string]string{"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": testDSN},
				"/services/projector-effect/kafka": {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "hunter2-kafka-pass"}},
			want: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "hunter2-kafka-pass",
				"KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": "<unset>"},
			sources: map[string]Source{"KAFKA_SASL_PASSWORD": SourceInfisicalService, "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": SourceMissing},
		},
		{
			name: "controlled: an empty value in Infisical counts as present", lane: controlled, policy: "required",
			folders: map[string]map[string]string{"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": ""}},
			want:    map[string]string{"OMNIBASE_INFRA_DB_URL": ""},
			sources: map[string]Source{"OMNIBASE_INFRA_DB_URL": SourceInfisicalShared},
		},
		{
			name: "bootstrap variables may come from the env file", lane: uncontrolled, policy: "required",
			envFile: map[string]string{"INFISICAL_ADDR": "{addr}", "INFISICAL_CLIENT_ID": "{id}", "INFISICAL_CLIENT_SECRET": "{secret}", "INFISICAL_PROJECT_ID": "{project}"},
			folders: map[string]map[string]string{"/shared/kafka": allKafka},
			want:    map[string]string{"KAFKA_ACKS": "all"},
			sources: map[string]Source{"KAFKA_ACKS": SourceInfisicalShared},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			d, srv := newDouble(t)
			d.set(tt.folders)
			env := map[string]string{}
			if tt.envFile == nil || tt.envFile["INFISICAL_ADDR"] == "" {
				env = bootstrap(d, srv.URL)
			}
			maps.Copy(env, tt.env)
			if tt.lane == controlled {
				env["INFISICAL_REQUIRED"] = "true"
			}
			if tt.policy == "" {
				env["RUNTIME_PROFILE"] = "staging"
			} else {
				env["ONEX_SECRET_POLICY"] = tt.policy
			}
			file := maps.Clone(tt.envFile)
			for k, v := range file {
				file[k] = strings.NewReplacer("{addr}", srv.URL, "{id}", d.clientID, "{secret}", d.clientSecret, "{project}", d.projectID).Replace(v)
			}
			setup(t, env, file)

			log, buf := captureLog()
			res, err := Run(context.Background(), testNeeds, log)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if k, _ := infraerr.KindOf(err); k != tt.kind {
					t.Errorf("kind = %v, want %v", k, tt.kind)
				}
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr == "" && !res.Fetched {
				t.Errorf("Fetched = false")
			}
			for k, want := range tt.want {
				got, ok := os.LookupEnv(k)
				if want == "<unset>" {
					if ok {
						t.Errorf("%s set, want unset", k)
					}
					continue
				}
				if !ok || got != want {
					t.Errorf("%s = %q (set %v), want %q", k, got, ok, want)
				}
			}
			for k, want := range tt.sources {
				if got := res.Sources[k]; got != want {
					t.Errorf("source of %s = %q, want %q", k, got, want)
				}
			}
			for _, s := range tt.logHas {
				if !strings.Contains(buf.String(), s) {
					t.Errorf("log lacks %s\n%s", s, buf.String())
				}
			}
			for _, secret := range []string{d.clientSecret, d.token, "hunter2"} {
				if strings.Contains(buf.String(), secret) {
					t.Errorf("log holds a secret value %q:\n%s", secret, buf.String())
				}
			}
		})
	}
}

// TestPrefetchGating covers the cases where nothing may be fetched.
func TestPrefetchGating(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string // on top of a complete bootstrap
		unset   []string
		wantErr string
		logHas  string
	}{
		{name: "default profile is disabled", logHas: "policy disabled"},
		{name: "local-dev profile is disabled", env: map[string]string{"RUNTIME_PROFILE": "local-dev"}, logHas: "policy disabled"},
		{name: "unknown profile falls back to default", env: map[string]string{"RUNTIME_PROFILE": "prod-eu"}, logHas: `RUNTIME_PROFILE \"prod-eu\" is unknown`},
		{name: "override disables production", env: map[string]string{"RUNTIME_PROFILE": "production", "ONEX_SECRET_POLICY": "disabled", "INFISICAL_REQUIRED": "true"}, logHas: `"policy_from":"ONEX_SECRET_POLICY"`},
		{name: "best_effort without INFISICAL_ADDR", env: map[string]string{"RUNTIME_PROFILE": "staging"}, unset: []string{"INFISICAL_ADDR"}, logHas: `"unset":["INFISICAL_ADDR"]`},
		{name: "best_effort without one credential", env: map[string]string{"ONEX_SECRET_POLICY": "best_effort"}, unset: []string{"INFISICAL_CLIENT_SECRET"}, logHas: "Infisical not configured"},
		{name: "required without the address fails", env: map[string]string{"RUNTIME_PROFILE": "production"}, unset: []string{"INFISICAL_ADDR", "INFISICAL_PROJECT_ID"},
			wantErr: "policy required (RUNTIME_PROFILE) but INFISICAL_ADDR, INFISICAL_PROJECT_ID not set"},
		{name: "misspelt override fails", env: map[string]string{"ONEX_SECRET_POLICY": "require"}, wantErr: "ONEX_SECRET_POLICY must be"},
		{name: "bad timeout fails", env: map[string]string{"RUNTIME_PROFILE": "staging", "INFISICAL_TIMEOUT_SECONDS": "soon"}, wantErr: "INFISICAL_TIMEOUT_SECONDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			d, srv := newDouble(t)
			d.set(map[string]map[string]string{"/shared/kafka": allKafka})
			env := bootstrap(d, srv.URL)
			maps.Copy(env, tt.env)
			for _, k := range tt.unset {
				delete(env, k)
			}
			setup(t, env, nil)
			log, buf := captureLog()
			res, err := Run(context.Background(), testNeeds, log)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if n := len(d.Requests()); n != 0 {
				t.Errorf("%d HTTP requests, want none: %v", n, d.Requests())
			}
			if res.Fetched || len(res.Sources) != 0 {
				t.Errorf("result %+v, want nothing fetched", res)
			}
			if _, ok := os.LookupEnv("KAFKA_ACKS"); ok {
				t.Errorf("KAFKA_ACKS set though nothing may be fetched")
			}
			if tt.logHas != "" && !strings.Contains(buf.String(), tt.logHas) {
				t.Errorf("log lacks %s\n%s", tt.logHas, buf.String())
			}
		})
	}
}

// TestPrefetchFailureSanitized: failures reach neither logs nor errors with a
// secret in them, whatever the server says.
func TestPrefetchFailureSanitized(t *testing.T) {
	echo := func(submitted string) string {
		return "Invalid credentials for clientSecret=" + submitted + " dsn=" + testDSN + " token=st.access-token.9a8b7c6d5e"
	}
	tests := []struct {
		name    string
		policy  string
		prepare func(d *double) (addr string)
		wantErr string
		kind    infraerr.Kind
	}{
		{name: "wrong secret, server echoes it", policy: "required", kind: infraerr.KindAuthentication,
			wantErr: "infisical login: HTTP 401 (request id req-Q2xz81)",
			prepare: func(d *double) string { d.clientSecret = "not-what-we-send"; d.errorMessage = echo; return "" }},
		{name: "list fails, server echoes a DSN", policy: "required", kind: infraerr.KindRequestRejected,
			wantErr: "infisical list /shared/kafka: HTTP 400 (request id req-Q2xz81)",
			prepare: func(d *double) string { d.listFailures, d.listStatus, d.errorMessage = 99, 400, echo; return "" }},
		{name: "unknown environment", policy: "required", kind: infraerr.KindConfiguration,
			wantErr: "infisical list /shared/kafka: HTTP 404 (request id req-Q2xz81)",
			prepare: func(d *double) string { d.environment = "staging"; return "" }},
		{name: "server down", policy: "required", kind: infraerr.KindConnection,
			wantErr: "infisical login: operation failed: connection refused",
			prepare: func(d *double) string { return "http://127.0.0.1:1" }},
		{name: "best_effort logs and goes on", policy: "best_effort",
			prepare: func(d *double) string { d.clientSecret = "not-what-we-send"; d.errorMessage = echo; return "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			d, srv := newDouble(t)
			d.set(map[string]map[string]string{"/shared/kafka": allKafka})
			env := bootstrap(d, srv.URL)
			env["ONEX_SECRET_POLICY"] = tt.policy
			var addr string
			d.configure(func(d *double) { addr = tt.prepare(d) })
			if addr != "" {
				env["INFISICAL_ADDR"] = addr
			}
			setup(t, env, nil)
			sent := env["INFISICAL_CLIENT_SECRET"]

			log, buf := captureLog()
			res, err := Run(context.Background(), testNeeds, log)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("best_effort returned %v", err)
				}
				if res.Fetched || !strings.Contains(buf.String(), "secret prefetch failed (best_effort)") {
					t.Errorf("want a logged, ignored failure; fetched=%v log:\n%s", res.Fetched, buf.String())
				}
			} else {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if k, _ := infraerr.KindOf(err); k != tt.kind {
					t.Errorf("kind = %v, want %v", k, tt.kind)
				}
				if !strings.Contains(buf.String(), tt.wantErr) {
					t.Errorf("log lacks the error:\n%s", buf.String())
				}
			}
			outputs := []string{buf.String()}
			if err != nil {
				outputs = append(outputs, err.Error(), fmt.Sprintf("%+v %#v", err, err), infraerr.SanitizeError(err))
			}
			for _, out := range outputs {
				for _, secret := range []string{sent, d.token, "hunter2"} {
					if strings.Contains(out, secret) {
						t.Errorf("secret %q leaked into %s", secret, out)
					}
				}
			}
		})
	}
}

// TestEnvFileNeverOverwritesEnv: whatever the policy and lane, a value the
// process was started with is never replaced by the env file's.
func TestEnvFileNeverOverwritesEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "disabled", env: map[string]string{}},
		{name: "uncontrolled", env: map[string]string{"RUNTIME_PROFILE": "staging"}},
		{name: "controlled", env: map[string]string{"ONEX_SECRET_POLICY": "required", "INFISICAL_REQUIRED": "yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			d, srv := newDouble(t)
			// Infisical has nothing for these keys, so only the file competes.
			d.set(map[string]map[string]string{"/shared/kafka": {"KAFKA_GROUP_ID": "g"}})
			env := bootstrap(d, srv.URL)
			maps.Copy(env, tt.env)
			env["KAFKA_ACKS"] = "from-env"
			env["OMNIBASE_INFRA_DB_URL"] = testDSN
			setup(t, env, map[string]string{"KAFKA_ACKS": "from-file", "OMNIBASE_INFRA_DB_URL": "postgresql://file@h/db", "KAFKA_REQUEST_TIMEOUT_MS": "7000"})
			log, _ := captureLog()
			if _, err := Run(context.Background(), testNeeds, log); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for k, want := range map[string]string{"KAFKA_ACKS": "from-env", "OMNIBASE_INFRA_DB_URL": testDSN, "KAFKA_REQUEST_TIMEOUT_MS": "7000"} {
				if got := os.Getenv(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestPrefetchHonoursContext: a server that accepts and never answers holds
// the boot only until the deadline, and nothing is applied afterwards.
func TestPrefetchHonoursContext(t *testing.T) {
	tests := []struct {
		name       string
		ctxTimeout time.Duration // 0: INFISICAL_TIMEOUT_SECONDS bounds it
		envTimeout string
		stallAfter int // requests answered before the server stalls
	}{
		{name: "caller deadline, stalled login", ctxTimeout: 300 * time.Millisecond},
		{name: "caller deadline, stalled list", ctxTimeout: 300 * time.Millisecond, stallAfter: 1},
		{name: "INFISICAL_TIMEOUT_SECONDS, stalled login", envTimeout: "0.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			d, srv := newDouble(t)
			d.set(map[string]map[string]string{"/shared/kafka": allKafka})
			stall := make(chan struct{})
			t.Cleanup(func() { close(stall) }) // runs before srv.Close
			d.configure(func(d *double) { d.stall, d.stallAfter = stall, tt.stallAfter })
			env := bootstrap(d, srv.URL)
			env["ONEX_SECRET_POLICY"] = "required"
			if tt.envTimeout != "" {
				env["INFISICAL_TIMEOUT_SECONDS"] = tt.envTimeout
			}
			setup(t, env, nil)

			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			log, _ := captureLog()
			done := make(chan error, 1)
			go func() {
				_, err := Run(ctx, testNeeds, log)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run still blocked on a stalled server: the deadline was not honoured")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want one wrapping context.DeadlineExceeded", err)
			}
			if k, _ := infraerr.KindOf(err); k != infraerr.KindTimeout {
				t.Errorf("kind = %v, want timeout", k)
			}
			if _, ok := os.LookupEnv("KAFKA_ACKS"); ok {
				t.Errorf("KAFKA_ACKS applied by an abandoned fetch")
			}
		})
	}
}

// TestPrefetchRetriesTransientFailures: a 503 is retried within the
// deadline; a 401 is not.
func TestPrefetchRetriesTransientFailures(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		failures     int
		wantErr      bool
		wantRequests int
	}{
		{name: "503 twice then fine", status: 503, failures: 2, wantRequests: 2 + 2 + 5}, // two failed passes (login, first list), then login and four lists
		{name: "401 not retried", status: 401, failures: 1, wantErr: true, wantRequests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			d, srv := newDouble(t)
			d.set(map[string]map[string]string{"/shared/kafka": allKafka, "/shared/env": {"OMNIBASE_INFRA_DB_URL": testDSN}})
			d.configure(func(d *double) { d.listFailures, d.listStatus = tt.failures, tt.status })
			env := bootstrap(d, srv.URL)
			env["ONEX_SECRET_POLICY"] = "required"
			setup(t, env, nil)
			log, _ := captureLog()
			_, err := Run(context.Background(), testNeeds, log)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if n := len(d.Requests()); n != tt.wantRequests {
				t.Errorf("%d requests, want %d: %v", n, tt.wantRequests, d.Requests())
			}
			if !tt.wantErr && os.Getenv("KAFKA_ACKS") != "all" {
				t.Errorf("KAFKA_ACKS not applied after the retry")
			}
		})
	}
}
