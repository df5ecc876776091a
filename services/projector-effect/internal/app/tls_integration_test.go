package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

// TestPostgresTLS connects the way the projector does (LoadSettings, then
// the pool from its DSN) to the TLS-only PostgreSQL of `make
// test-infra-up`, whose certificate comes from the local test CA:
// POSTGRES_SSL_MODE and POSTGRES_SSL_CA_FILE win over the DSN's own
// sslmode, verification works, and what it must refuse it refuses.
func TestPostgresTLS(t *testing.T) {
	dsn, ca := testkit.SecurePostgres(t)
	other := testca.New(t, "a CA the server never heard of")
	shipped := loadContract(t, testkit.ContractsDir(t))
	tests := []struct {
		name   string
		dsn    string
		env    map[string]string
		errHas string // "" : connects over TLS
	}{
		{name: "verify-full wins over the dsn's sslmode=disable", dsn: dsn + "?sslmode=disable",
			env: map[string]string{"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CA_FILE": ca}},
		{name: "verify-ca by host name", dsn: strings.Replace(dsn, "127.0.0.1", "localhost", 1),
			env: map[string]string{"POSTGRES_SSL_MODE": "verify-ca", "POSTGRES_SSL_CA_FILE": ca}},
		{name: "the dsn's verify-full with the CA from the environment", dsn: dsn + "?sslmode=verify-full",
			env: map[string]string{"POSTGRES_SSL_CA_FILE": ca}},
		{name: "require encrypts without verifying", dsn: dsn, env: map[string]string{"POSTGRES_SSL_MODE": "require"}},
		{name: "disable is refused by the server", dsn: dsn + "?sslmode=require", env: map[string]string{"POSTGRES_SSL_MODE": "disable"},
			errHas: "no encryption"},
		{name: "a server certificate from another CA is refused", dsn: dsn,
			env: map[string]string{"POSTGRES_SSL_MODE": "verify-full", "POSTGRES_SSL_CA_FILE": other.CertFile}, errHas: "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POSTGRES_SSL_MODE", "")
			t.Setenv("POSTGRES_SSL_CA_FILE", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			s, err := LoadSettings(&config.Config{Environment: "dev", DatabaseURL: config.Secret(tt.dsn)}, shipped)
			if err != nil {
				t.Fatalf("settings: %v", err)
			}
			pcfg, err := pgxpool.ParseConfig(s.DatabaseURL.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			pcfg.ConnConfig.ConnectTimeout = 10 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pool, err := pgxpool.NewWithConfig(ctx, pcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			var encrypted bool
			err = pool.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&encrypted)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if !encrypted {
				t.Error("the connection is not encrypted")
			}
		})
	}
}
