package grpcsec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

// testToken is the admin token of these tests: it may appear in no error,
// warning, log line or rendering of the settings.
const testToken = "tok-Vb93-never-print-0123456789"

var serverVars = []string{EnvTLSCertFile, EnvTLSKeyFile, EnvClientCAFile, EnvAdminToken, EnvAdminSubjects}

func clearServerVars(t *testing.T) {
	t.Helper()
	for _, k := range serverVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestLoadServerSettings(t *testing.T) {
	ca := testca.New(t, "grpcsec settings CA")
	cert, key := ca.Issue(t, "server", "127.0.0.1", "localhost")
	_, otherKey := ca.Issue(t, "other", "localhost")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tlsEnv := map[string]string{EnvTLSCertFile: cert, EnvTLSKeyFile: key}
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
		want     string   // String() of the result
		subjects []string // AdminSubjects of the result
		err      string   // substring of the error; "" for none
		warnings []string // substrings, one per warning, in order
	}{
		{name: "unset is plaintext with admin disabled", want: "plaintext, admin disabled"},
		{name: "tls", env: tlsEnv, want: "TLS, admin disabled"},
		{name: "mtls", env: with(tlsEnv, EnvClientCAFile, ca.CertFile), want: "mTLS, admin disabled"},
		{name: "mtls with token and subjects", env: with(tlsEnv, EnvClientCAFile, ca.CertFile, EnvAdminToken, testToken,
			EnvAdminSubjects, " onexctl-admin , spiffe://fleet/admin,, "), want: "mTLS, admin by token or 2 subjects",
			subjects: []string{"onexctl-admin", "spiffe://fleet/admin"}},
		{name: "file names are trimmed", env: map[string]string{EnvTLSCertFile: " " + cert + " ", EnvTLSKeyFile: key + "\n"}, want: "TLS, admin disabled"},
		{name: "token without tls warns", env: map[string]string{EnvAdminToken: testToken}, want: "plaintext, admin by token",
			warnings: []string{"ONEX_GRPC_ADMIN_TOKEN is set without TLS"}},
		{name: "short token warns", env: with(tlsEnv, EnvAdminToken, "short"), want: "TLS, admin by token",
			warnings: []string{"ONEX_GRPC_ADMIN_TOKEN is shorter than 16 characters"}},
		{name: "subjects without a client CA warn", env: with(tlsEnv, EnvAdminSubjects, "onexctl-admin"), want: "TLS, admin by 1 subjects",
			subjects: []string{"onexctl-admin"}, warnings: []string{"ONEX_GRPC_ADMIN_SUBJECTS is set without ONEX_GRPC_CLIENT_CA_FILE"}},

		{name: "cert without key", env: map[string]string{EnvTLSCertFile: cert},
			err: "ONEX_GRPC_TLS_CERT_FILE and ONEX_GRPC_TLS_KEY_FILE go together"},
		{name: "key without cert", env: map[string]string{EnvTLSKeyFile: key},
			err: "ONEX_GRPC_TLS_CERT_FILE and ONEX_GRPC_TLS_KEY_FILE go together"},
		{name: "missing cert file", env: with(tlsEnv, EnvTLSCertFile, missing),
			err: "ONEX_GRPC_TLS_CERT_FILE " + missing + " cannot be read (no such file or directory)"},
		{name: "missing key file", env: with(tlsEnv, EnvTLSKeyFile, missing),
			err: "ONEX_GRPC_TLS_KEY_FILE " + missing + " cannot be read"},
		{name: "key of another certificate", env: with(tlsEnv, EnvTLSKeyFile, otherKey),
			err: "are no PEM certificate and matching unencrypted key (tls: private key does not match public key)"},
		{name: "cert file not PEM", env: with(tlsEnv, EnvTLSCertFile, notPEM),
			err: "ONEX_GRPC_TLS_CERT_FILE " + notPEM + " and ONEX_GRPC_TLS_KEY_FILE " + key + " are no PEM certificate"},
		{name: "client CA without TLS", env: map[string]string{EnvClientCAFile: ca.CertFile},
			err: "ONEX_GRPC_CLIENT_CA_FILE needs TLS: set ONEX_GRPC_TLS_CERT_FILE and ONEX_GRPC_TLS_KEY_FILE too"},
		{name: "missing client CA", env: with(tlsEnv, EnvClientCAFile, missing),
			err: "ONEX_GRPC_CLIENT_CA_FILE " + missing + " cannot be read"},
		{name: "client CA not PEM", env: with(tlsEnv, EnvClientCAFile, notPEM),
			err: "ONEX_GRPC_CLIENT_CA_FILE " + notPEM + " holds no PEM certificate"},
		{name: "token with blanks", env: with(tlsEnv, EnvAdminToken, testToken+" "),
			err: "ONEX_GRPC_ADMIN_TOKEN begins or ends with blanks"},
		{name: "token not printable", env: with(tlsEnv, EnvAdminToken, testToken+"\x01"),
			err: "ONEX_GRPC_ADMIN_TOKEN must be printable ASCII"},
		{name: "token not ascii", env: with(tlsEnv, EnvAdminToken, testToken+"é"),
			err: "ONEX_GRPC_ADMIN_TOKEN must be printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearServerVars(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := LoadServerSettings()
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.err)
				}
				if k, _ := infraerr.KindOf(err); k != infraerr.KindConfiguration {
					t.Errorf("kind %v, want configuration", k)
				}
				// What the service logs: the sanitized error, which must
				// keep the message (variable and file names) and never
				// show the token.
				safe := infraerr.SanitizeError(err)
				if !strings.Contains(safe, tt.err) {
					t.Errorf("sanitized error %q, want it to contain %q", safe, tt.err)
				}
				if strings.Contains(err.Error(), testToken) || strings.Contains(safe, testToken) {
					t.Errorf("the error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if !slices.Equal(s.AdminSubjects, tt.subjects) {
				t.Errorf("AdminSubjects = %q, want %q", s.AdminSubjects, tt.subjects)
			}
			w := s.Warnings()
			if len(w) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", w, len(tt.warnings))
			}
			for i := range w {
				if !strings.Contains(w[i], tt.warnings[i]) || strings.Contains(w[i], testToken) {
					t.Errorf("warning %q, want it to contain %q (and no token)", w[i], tt.warnings[i])
				}
			}
		})
	}
}

// TestServerSettingsNeverPrintToken renders the settings every way a log
// line, an error or a dump could.
func TestServerSettingsNeverPrintToken(t *testing.T) {
	s := ServerSettings{CertFile: "/tls/cert.pem", KeyFile: "/tls/key.pem", ClientCAFile: "/tls/ca.pem",
		AdminToken: testToken, AdminSubjects: []string{"onexctl-admin"}}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("settings", "grpc", s)
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	c := ClientSettings{CAFile: "/tls/ca.pem", Token: testToken}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), logged.String(), string(js),
		fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(out, testToken) {
			t.Errorf("rendering shows the token: %s", out)
		}
	}
	if !strings.Contains(logged.String(), `"admin_token_set":true`) || !strings.Contains(logged.String(), `"client_ca_file":"/tls/ca.pem"`) {
		t.Errorf("log line lacks the settings: %s", logged.String())
	}
}
