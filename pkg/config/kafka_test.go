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

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

// The secret values of these tests: none may appear in an error, a warning
// or any rendering of the settings.
const (
	testPassword     = "pw-Zq81-never-print"
	testClientSecret = "cs-Hx27-never-print"
)

func clearKafkaSecurity(t *testing.T) {
	t.Helper()
	for _, k := range KafkaSecurityVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestLoadKafkaSecurity(t *testing.T) {
	ca := testca.New(t, "test CA")
	cert, key := ca.Issue(t, "client", "localhost")
	_, otherKey := ca.Issue(t, "other", "localhost")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	missing := filepath.Join(dir, "missing.pem")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}

	scram := map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"KAFKA_SASL_USERNAME": "onex", "KAFKA_SASL_PASSWORD": testPassword, "KAFKA_SSL_CA_FILE": ca.CertFile}
	oauth := map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER",
		"KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": "https://idp.example/token", "KAFKA_SASL_OAUTHBEARER_CLIENT_ID": "fleet",
		"KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET": testClientSecret}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	tests := []struct {
		name     string
		env      map[string]string
		want     string // String() of the result
		err      string // substring of the error; "" for none
		warnings []string
	}{
		{name: "unset is plaintext", env: nil, want: "PLAINTEXT"},
		{name: "lower case names", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_MECHANISM": "scram-sha-256",
			"KAFKA_SASL_USERNAME": "onex", "KAFKA_SASL_PASSWORD": testPassword}, want: "SASL_SSL SCRAM-SHA-256"},
		{name: "ssl with system roots", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL"}, want: "SSL"},
		{name: "ssl with client certificate", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": ca.CertFile,
			"KAFKA_SSL_CERT_FILE": cert, "KAFKA_SSL_KEY_FILE": key}, want: "SSL"},
		{name: "scram over tls", env: scram, want: "SASL_SSL SCRAM-SHA-512"},
		{name: "plain over sasl_plaintext warns", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
			"KAFKA_SASL_USERNAME": "onex", "KAFKA_SASL_PASSWORD": testPassword}, want: "SASL_PLAINTEXT PLAIN",
			warnings: []string{"PLAIN over SASL_PLAINTEXT sends its credentials unencrypted"}},
		{name: "oauthbearer", env: oauth, want: "SASL_SSL OAUTHBEARER"},
		{name: "oauthbearer over plain http warns", env: with(oauth, "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", "http://idp.example/token"),
			want: "SASL_SSL OAUTHBEARER", warnings: []string{"plain http"}},
		{name: "oauthbearer on loopback http is quiet", env: with(oauth, "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", "http://127.0.0.1:8080/token"),
			want: "SASL_SSL OAUTHBEARER"},
		{name: "tls files ignored by plaintext", env: map[string]string{"KAFKA_SSL_CA_FILE": missing}, want: "PLAINTEXT",
			warnings: []string{"KAFKA_SSL_CA_FILE is ignored: KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS"}},
		{name: "credentials ignored by ssl", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": testPassword},
			want: "SSL", warnings: []string{"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are ignored"}},

		{name: "unknown protocol", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "TLS"}, err: "KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},
		{name: "unknown mechanism", env: with(scram, "KAFKA_SASL_MECHANISM", "GSSAPI"), err: "KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"},
		{name: "sasl without mechanism", env: with(scram, "KAFKA_SASL_MECHANISM", ""), err: "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM"},
		{name: "mechanism without sasl", env: with(scram, "KAFKA_SECURITY_PROTOCOL", "SSL"), err: "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL=SSL does not use SASL"},
		{name: "scram without password", env: with(scram, "KAFKA_SASL_PASSWORD", ""), err: "KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs KAFKA_SASL_PASSWORD"},
		{name: "plain without both", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"},
			err: "KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"},
		{name: "oauthbearer without endpoint", env: with(oauth, "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", ""),
			err: "KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"},
		{name: "oauthbearer without client", env: with(oauth, "KAFKA_SASL_OAUTHBEARER_CLIENT_ID", "", "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", ""),
			err: "needs KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"},
		{name: "oauthbearer endpoint not a url", env: with(oauth, "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", "idp.example/token?secret="+testClientSecret),
			err: "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL must be an absolute http or https URL"},
		{name: "ca file missing", env: with(scram, "KAFKA_SSL_CA_FILE", missing), err: "KAFKA_SSL_CA_FILE " + missing + " cannot be read (no such file or directory)"},
		{name: "ca file not pem", env: with(scram, "KAFKA_SSL_CA_FILE", notPEM), err: "KAFKA_SSL_CA_FILE " + notPEM + " holds no PEM certificate"},
		{name: "cert without key", env: with(scram, "KAFKA_SSL_CERT_FILE", cert), err: "KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together"},
		{name: "key unreadable", env: with(scram, "KAFKA_SSL_CERT_FILE", cert, "KAFKA_SSL_KEY_FILE", missing), err: "KAFKA_SSL_KEY_FILE " + missing + " cannot be read"},
		{name: "key of another certificate", env: with(scram, "KAFKA_SSL_CERT_FILE", cert, "KAFKA_SSL_KEY_FILE", otherKey),
			err: "private key does not match public key"},
	}
	if os.Geteuid() != 0 { // root reads a file of mode 0
		tests = append(tests, struct {
			name     string
			env      map[string]string
			want     string
			err      string
			warnings []string
		}{name: "ca file unreadable", env: with(scram, "KAFKA_SSL_CA_FILE", unreadable), err: "cannot be read (permission denied)"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearKafkaSecurity(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			k, err := LoadKafkaSecurity()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				// One clear line, printable by the services' sanitizer as it is.
				got := infraerr.SanitizeError(err)
				if !strings.Contains(got, tt.err) || strings.Contains(got, "\n") {
					t.Errorf("sanitized error %q does not say %q", got, tt.err)
				}
				if kind, _ := infraerr.KindOf(err); kind != infraerr.KindConfiguration {
					t.Errorf("kind %v, want configuration", kind)
				}
				assertNoSecret(t, err.Error(), got)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if k.String() != tt.want {
				t.Errorf("String() = %q, want %q", k.String(), tt.want)
			}
			w := k.Warnings()
			if len(w) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d matching %q", w, len(tt.warnings), tt.warnings)
			}
			for i := range w {
				if !strings.Contains(w[i], tt.warnings[i]) {
					t.Errorf("warning %q, want %q", w[i], tt.warnings[i])
				}
			}
			assertNoSecret(t, strings.Join(w, "\n"))
		})
	}
}

// TestKafkaSecurityNeverPrints renders settings that hold both secrets every
// way a log line or an error could.
func TestKafkaSecurityNeverPrints(t *testing.T) {
	k := KafkaSecurity{Protocol: KafkaSASLSSL, Mechanism: SASLOAuthBearer, Username: "onex", Password: testPassword,
		OAuth: OAuthClient{TokenURL: "https://idp.example/token?client_secret=" + testClientSecret, ClientID: "fleet", ClientSecret: testClientSecret}}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("kafka", "security", k, "value", k.Password)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("kafka", "security", k, "secret", k.OAuth.ClientSecret)
	j, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	renderings := []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q", k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v %s %q %x", k.Password, k.Password, k.Password, k.Password, k.Password, k.Password),
		fmt.Sprintf("%#v %+v", k.OAuth, k.OAuth), text.String(), js.String(), string(j),
	}
	assertNoSecret(t, renderings...)
	for _, want := range []string{"protocol=SASL_SSL", "mechanism=OAUTHBEARER", "username=onex", "token_endpoint=https://idp.example/token"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("log line lacks %q: %s", want, text.String())
		}
	}
	if k.Password.Reveal() != testPassword {
		t.Error("Reveal must give the value to the one caller that needs it")
	}
}

func assertNoSecret(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		for _, secret := range []string{testPassword, testClientSecret} {
			if strings.Contains(s, secret) {
				t.Errorf("a secret leaked: %q", s)
			}
		}
	}
}
