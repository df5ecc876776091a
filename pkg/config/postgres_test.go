package config

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

func TestApplyPostgresSSL(t *testing.T) {
	ca := testca.New(t, "pg CA")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	const (
		dsn       = "postgresql://onex:" + testPassword + "@db:5432/omnibase_infra"
		dsnVerify = dsn + "?sslmode=verify-full&application_name=x"
	)
	tests := []struct {
		name    string
		dsn     string
		env     map[string]string
		mode    string // the resulting sslmode
		rootca  string // the resulting sslrootcert
		same    bool   // the DSN comes back byte for byte
		err     string
		errKind infraerr.Kind
	}{
		{name: "nothing set leaves the dsn alone", dsn: dsn + "?sslmode=disable", same: true, mode: "disable"},
		{name: "mode wins over the dsn", dsn: dsn + "?sslmode=disable", env: map[string]string{"POSTGRES_SSL_MODE": "require"}, mode: "require"},
		{name: "mode is case-insensitive", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": " Prefer "}, mode: "prefer"},
		{name: "ca wins over the dsn", dsn: dsn + "?sslrootcert=/old/ca.pem", env: map[string]string{"POSTGRES_SSL_CA_FILE": ca.CertFile},
			rootca: ca.CertFile},
		{name: "verify-full with a ca", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CA_FILE": ca.CertFile},
			mode: "verify-full", rootca: ca.CertFile},
		{name: "the dsn's verify-full with the env's ca", dsn: dsnVerify, env: map[string]string{"POSTGRES_SSL_CA_FILE": ca.CertFile},
			mode: "verify-full", rootca: ca.CertFile},
		{name: "system roots", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CA_FILE": "system"},
			mode: "verify-full", rootca: "system"},
		{name: "the dsn's own ca is checked too", dsn: dsn + "?sslmode=verify-ca&sslrootcert=" + url.QueryEscape(missing),
			err: "the sslrootcert of OMNIBASE_INFRA_DB_URL: " + missing + " cannot be read"},

		{name: "unknown mode", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "strict"},
			err: "POSTGRES_SSL_MODE must be one of disable, allow, prefer, require, verify-ca, verify-full"},
		{name: "verify-ca without a ca", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "verify-ca"},
			err: "POSTGRES_SSL_MODE verify-ca needs a CA file: set POSTGRES_SSL_CA_FILE"},
		{name: "the dsn's verify-full without a ca", dsn: dsnVerify,
			err: "the sslmode of OMNIBASE_INFRA_DB_URL verify-full needs a CA file: set POSTGRES_SSL_CA_FILE"},
		{name: "ca missing", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CA_FILE": missing},
			err: "POSTGRES_SSL_CA_FILE " + missing + " cannot be read (no such file or directory)"},
		{name: "ca not pem", dsn: dsn, env: map[string]string{"POSTGRES_SSL_CA_FILE": notPEM},
			err: "POSTGRES_SSL_CA_FILE " + notPEM + " holds no PEM certificate"},
		{name: "dsn not a url", dsn: "postgresql://onex:" + testPassword + "@db:port/x", env: map[string]string{"POSTGRES_SSL_MODE": "require"},
			err: "OMNIBASE_INFRA_DB_URL is not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POSTGRES_SSL_MODE", "")
			t.Setenv("POSTGRES_SSL_CA_FILE", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := ApplyPostgresSSL(tt.dsn)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if s := infraerr.SanitizeError(err); !strings.Contains(s, tt.err) {
					t.Errorf("sanitized %q lost the message", s)
				}
				assertNoSecret(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.same && got != tt.dsn {
				t.Errorf("dsn changed: %q", got)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("sslmode") != tt.mode || q.Get("sslrootcert") != tt.rootca {
				t.Errorf("sslmode=%q sslrootcert=%q, want %q %q", q.Get("sslmode"), q.Get("sslrootcert"), tt.mode, tt.rootca)
			}
			if p, _ := u.User.Password(); p != testPassword || u.Host != "db:5432" || u.Path != "/omnibase_infra" {
				t.Errorf("the rest of the dsn changed: %s", infraerr.RedactDSN(got))
			}
		})
	}
}
