// Package schema applies the projection's migrations (the migrations
// module's embedded files) with golang-migrate over the pgx/v5 driver.
//
// Guarantees:
//   - Every change of the schema runs under golang-migrate's PostgreSQL
//     advisory lock (pg_advisory_lock on an id derived from the database and
//     its migrations table), so several replicas starting at once are safe:
//     one migrates, the others wait and then find the schema at head.
//   - A migration that failed leaves the version "dirty"; Up then refuses to
//     run and says so, because only an operator can tell what half-applied
//     SQL left behind (golang-migrate's force command after a fix).
package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/omninode/onex-fleet/migrations"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// MigrationsTable is golang-migrate's version table.
const MigrationsTable = "schema_migrations"

// LockTimeout bounds the wait for another replica's migration.
const LockTimeout = 5 * time.Minute

// Head returns the newest migration version in the embedded files.
func Head() (uint, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return 0, err
	}
	var head uint
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		v, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			continue
		}
		head = max(head, uint(v))
	}
	if head == 0 {
		return 0, errors.New("schema: no migrations embedded")
	}
	return head, nil
}

func open(dsn string) (*migrate.Migrate, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "migrate"},
			"database url", errors.New(infraerr.SanitizeString(err.Error())))
	}
	db := stdlib.OpenDB(*cfg)
	driver, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{MigrationsTable: MigrationsTable})
	if err != nil {
		_ = db.Close()
		return nil, classify("migrate_open", err)
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		_ = driver.Close()
		return nil, err
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		_ = driver.Close()
		return nil, classify("migrate_open", err)
	}
	m.LockTimeout = LockTimeout
	return m, nil
}

// run calls fn with a migrator for dsn, stopping it gracefully (after the
// migration in progress) when ctx ends.
func run(ctx context.Context, dsn string, fn func(*migrate.Migrate) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := open(dsn)
	if err != nil {
		return err
	}
	defer m.Close()
	done := make(chan struct{})
	defer close(done)
	go func() { // owned: ends when fn returns or ctx ends
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-done:
		}
	}()
	err = fn(m)
	if errors.Is(err, migrate.ErrNoChange) {
		return nil
	}
	var dirty migrate.ErrDirty
	if errors.As(err, &dirty) {
		return infraerr.Configuration(infraerr.Context{Transport: infraerr.TransportDB, Operation: "migrate"},
			fmt.Sprintf("schema version %d is dirty: a migration failed part-way; fix the schema by hand, then force the version", dirty.Version), nil)
	}
	if err != nil {
		return classify("migrate", err)
	}
	return nil
}

// Up applies every pending migration.
func Up(ctx context.Context, dsn string) error {
	return run(ctx, dsn, func(m *migrate.Migrate) error { return m.Up() })
}

// Down rolls every migration back.
func Down(ctx context.Context, dsn string) error {
	return run(ctx, dsn, func(m *migrate.Migrate) error { return m.Down() })
}

// Steps applies n migrations forward (n > 0) or rolls -n back (n < 0).
func Steps(ctx context.Context, dsn string, n int) error {
	return run(ctx, dsn, func(m *migrate.Migrate) error { return m.Steps(n) })
}

// Version reads the schema version through pool: (0, false, nil) when no
// migration ever ran.
func Version(ctx context.Context, pool *pgxpool.Pool) (version uint, dirty bool, err error) {
	var v int64
	err = pool.QueryRow(ctx, `SELECT version, dirty FROM `+MigrationsTable+` LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		// No table yet is "no version" too.
		if strings.Contains(err.Error(), "42P01") {
			return 0, false, nil
		}
		return 0, false, classify("schema_version", err)
	}
	return uint(v), dirty, nil
}

// classify drops golang-migrate's query excerpt (schema text has no place in
// logs) and classifies the driver error underneath.
func classify(op string, err error) error {
	var pe *database.Error
	var ve database.Error
	switch {
	case errors.As(err, &pe) && pe.OrigErr != nil:
		err = fmt.Errorf("%s: %w", pe.Err, pe.OrigErr)
	case errors.As(err, &ve) && ve.OrigErr != nil:
		err = fmt.Errorf("%s: %w", ve.Err, ve.OrigErr)
	}
	return store.Classify(op, err)
}
