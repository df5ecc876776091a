// Package pgtest gives the projector's tests real PostgreSQL databases of
// their own: a throwaway database on the shared server (CREATE DATABASE as
// the CREATEDB role of OMNIBASE_INFRA_DB_URL), and a whole throwaway cluster
// (initdb + pg_ctl) that a test may stop and start without disturbing
// anybody else's tests.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// WithDatabase returns dsn with its database name replaced by name.
func WithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("pgtest: database url does not parse")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// NewDatabase creates an empty database on the shared server for the test
// and drops it when the test ends. It returns the database's DSN. With
// -short the test is skipped.
func NewDatabase(t testing.TB) string {
	t.Helper()
	skipShort(t)
	return NewDatabaseOn(t, testkit.PostgresURL(t))
}

// NewDatabaseOn is NewDatabase on the server of adminDSN.
func NewDatabaseOn(t testing.TB, adminDSN string) string {
	t.Helper()
	name := "onex_projector_" + testkit.Unique()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	dsn, err := WithDatabase(adminDSN, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real PostgreSQL server; skipped with -short")
	}
}

// Cluster is a PostgreSQL cluster owned by one test.
type Cluster struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// DSN connects as the superuser "onex" (password "onex") to the
	// database "postgres".
	DSN string
}

func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r), nil
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (pg_ctl, initdb) found")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// NewCluster initdbs and starts a cluster on a free loopback port; it is
// stopped and removed when the test ends. Without server binaries the test
// is skipped, or fails when ONEX_REQUIRE_INFRA=1.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	skipShort(t)
	bin, err := binDir()
	if err != nil {
		if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "onex-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, bin: bin, dir: dir, port: port,
		DSN: fmt.Sprintf("postgresql://onex:onex@127.0.0.1:%d/postgres?sslmode=disable", port)}
	t.Cleanup(func() {
		_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		_ = os.RemoveAll(dir)
	})
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("onex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.chown(); err != nil {
		t.Fatal(err)
	}
	if err := c.run("initdb", "-D", c.data(), "-U", "onex", "--pwfile="+pw, "-A", "scram-sha-256", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("pgtest: initdb: %v", err)
	}
	c.Start()
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// chown hands the directory to the postgres OS user when the test runs as
// root (the server refuses to run as root).
func (c *Cluster) chown() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("pgtest: running as root needs a postgres OS user: %w", err)
	}
	return exec.Command("chown", "-R", u.Uid+":"+u.Gid, c.dir).Run()
}

func (c *Cluster) run(tool string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, tool), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, tool)}, args...)...)
	}
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Start starts the cluster and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=60", c.port, c.dir)
	if err := c.run("pg_ctl", "-D", c.data(), "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		c.t.Fatalf("pgtest: start: %v", err)
	}
}

// Stop stops the cluster at once (connections are cut, as in a crash of the
// server or its host).
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop"); err != nil {
		c.t.Fatalf("pgtest: stop: %v", err)
	}
}
