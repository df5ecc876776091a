// Package runcheck checks that `make run` (scripts/run.sh) stops what it
// started when it is signalled: the servers it started (Kafka, PostgreSQL,
// Consul), the four services and the simulated fleet, while a server that
// ran before it is left running.
//
// It runs against a server set of its own (state /tmp/onex-runcheck, Kafka
// 17092, PostgreSQL 17476 cluster onexrun, Consul 17500, services
// 17085-17089), apart from `make run`'s, `make test`'s and the e2e suite's,
// so it never stops a server another run uses. Gated like the e2e suite on
// ONEX_REQUIRE_INFRA=1 or ONEX_E2E=1 (`make test`, `make e2e`).
package runcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The fourth server set (after make run's, make test's and the e2e suite's).
const stateDir = "/tmp/onex-runcheck"

var setEnv = map[string]string{
	"ONEX_STATE_DIR":             stateDir,
	"ONEX_KAFKA_PORT":            "17092",
	"ONEX_KAFKA_CONTROLLER_PORT": "17093",
	"ONEX_PG_PORT":               "17476",
	"ONEX_PG_CLUSTER":            "onexrun",
	"ONEX_CONSUL_PORT":           "17500",
	"ONEX_CONSUL_DNS_PORT":       "17600",
	"ONEX_CONSUL_SERVER_PORT":    "17300",
	"ONEX_CONSUL_SERF_LAN_PORT":  "17301",
	"ONEX_CONSUL_SERF_WAN_PORT":  "17302",
	"ONEX_CONSUL_GRPC_PORT":      "17502",
	"ONEX_RUN_PORT_BASE":         "17085", // services 17085-17089
	"ONEX_RUN_NODES":             "5",
}

// servers in the order the scripts start them; each with the port it
// listens on.
var servers = []struct{ name, port string }{
	{"postgres", "17476"}, {"kafka", "17092"}, {"consul", "17500"},
}

var servicePorts = []string{"17085", "17087", "17088", "17089"}

var root string

func TestMain(m *testing.M) {
	if os.Getenv("ONEX_REQUIRE_INFRA") != "1" && os.Getenv("ONEX_E2E") != "1" {
		fmt.Println("runcheck: skipped (set ONEX_REQUIRE_INFRA=1 or ONEX_E2E=1; `make test` does)")
		os.Exit(0)
	}
	// A shell starting this binary in the background may leave SIGINT
	// ignored, and an ignored signal stays ignored in the children: the
	// Ctrl-C the tests send would never reach run.sh. Catching it here
	// makes the children start with the default action.
	if signal.Ignored(syscall.SIGINT) {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGINT)
	}
	var err error
	if root, err = findRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "runcheck:", err)
		os.Exit(1)
	}
	// Leftovers of an interrupted earlier run of this package (its own set).
	stopAll()
	code := m.Run()
	// Remove what the tests created: the PostgreSQL cluster, Kafka's data.
	stopAll()
	for _, s := range []string{"postgres", "kafka"} {
		if out, err := script(s, "reset"); err != nil {
			fmt.Fprintf(os.Stderr, "runcheck: %s.sh reset: %v\n%s", s, err, out)
		}
	}
	_ = os.RemoveAll(stateDir)
	os.Exit(code)
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above " + dir)
		}
		dir = parent
	}
}

// env is this process's environment without anything pointing at another
// server set (make test exports its own) or at an outer make, plus the
// test's set.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "ONEX_CACHE_DIR": // the installed Kafka jars and Consul binary
		case strings.HasPrefix(k, "ONEX_"), strings.HasPrefix(k, "MAKE"), k == "MFLAGS",
			k == "KAFKA_BOOTSTRAP_SERVERS", k == "OMNIBASE_INFRA_DB_URL", k == "CONSUL_HTTP_ADDR", k == "TERM":
			continue
		}
		out = append(out, kv)
	}
	for k, v := range setEnv {
		out = append(out, k+"="+v)
	}
	return append(out, "TERM=dumb")
}

// script runs scripts/infra/NAME.sh ARGS against the test's set.
func script(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "infra", name+".sh"), args...)
	cmd.Env = env()
	return cmd.CombinedOutput()
}

func running(name string) bool {
	_, err := script(name, "status")
	return err == nil
}

func stopAll() {
	for i := len(servers) - 1; i >= 0; i-- {
		if out, err := script(servers[i].name, "stop"); err != nil {
			fmt.Fprintf(os.Stderr, "runcheck: %s.sh stop: %v\n%s", servers[i].name, err, out)
		}
	}
}

func listening(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// run is one `make run` or run.sh under test, in a process group of its own
// (so the test can send it a terminal's Ctrl-C without receiving it).
type run struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	err  error // of Wait, once done is closed

	mu    sync.Mutex
	out   bytes.Buffer
	pids  map[int]string // fleet processes, from the "started ... (pid N" lines
	up    chan struct{}  // closed at the "fleet up" line
	upMsg string
	// seen is closed at the first line containing seenText (when set).
	seen     chan struct{}
	seenText string
	seenOnce bool
}

var startedRe = regexp.MustCompile(`^started (\S+).*\(pid (\d+)`)

func start(t *testing.T, argv ...string) *run {
	return startWatching(t, "", argv...)
}

// startWatching is start, and r.seen is closed at the first line of the
// output containing text.
func startWatching(t *testing.T, text string, argv ...string) *run {
	t.Helper()
	r := &run{t: t, done: make(chan struct{}), pids: map[int]string{}, up: make(chan struct{}),
		seen: make(chan struct{}), seenText: text}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Dir = root
	r.cmd.Env = env()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	go r.read(pr)
	go func() { r.err = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default: // the run is still going: end its group and its processes
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
		for pid := range r.fleetPIDs() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		stopAll()
		if t.Failed() || testing.Verbose() {
			t.Logf("output of %s:\n%s", strings.Join(argv, " "), r.output())
		}
	})
	return r
}

func (r *run) read(pr *os.File) {
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// The live view clears the screen every 2 s.
		line := strings.TrimLeft(sc.Text(), "\x1b[0123456789;HJ")
		r.mu.Lock()
		r.out.WriteString(time.Now().Format("15:04:05.0 ") + line + "\n")
		if m := startedRe.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[2])
			r.pids[pid] = m[1]
		}
		if r.seenText != "" && !r.seenOnce && strings.Contains(line, r.seenText) {
			r.seenOnce = true
			close(r.seen)
		}
		if strings.HasPrefix(line, "fleet up:") && r.upMsg == "" {
			r.upMsg = line
			close(r.up)
		}
		r.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, pr)
}

func (r *run) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.out.String()
	if len(s) > 6000 {
		s = "...\n" + s[len(s)-6000:]
	}
	return s
}

func (r *run) fleetPIDs() map[int]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int]string, len(r.pids))
	for k, v := range r.pids {
		m[k] = v
	}
	return m
}

// waitUp waits for the "fleet up" line and checks what it claims.
func (r *run) waitUp() {
	r.t.Helper()
	select {
	case <-r.up:
	case <-r.done:
		r.t.Fatalf("exited before the fleet was up: %v", r.err)
	case <-time.After(6 * time.Minute):
		r.t.Fatal("the fleet was not up within 6 minutes")
	}
	if want := "fleet up: 4 of 4 services ready"; r.upMsg != want {
		r.t.Fatalf("got %q, want %q", r.upMsg, want)
	}
	if n := len(r.fleetPIDs()); n != 5 {
		r.t.Fatalf("%d fleet processes announced, want 5 (four services, the simulated fleet): %v", n, r.fleetPIDs())
	}
	for _, p := range servicePorts {
		resp, err := http.Get("http://127.0.0.1:" + p + "/readyz")
		if err != nil {
			r.t.Fatalf("readyz on %s: %v", p, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.t.Fatalf("readyz on %s: %s", p, resp.Status)
		}
	}
	for _, s := range servers {
		if !running(s.name) {
			r.t.Fatalf("%s of the test's set is not running with the fleet up", s.name)
		}
	}
}

// waitExit waits for the signalled run to finish stopping.
func (r *run) waitExit(limit time.Duration) {
	r.t.Helper()
	select {
	case <-r.done:
		r.t.Logf("exited (%v)", r.err)
	case <-time.After(limit):
		r.t.Fatalf("still running %s after the signal", limit)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []string {
	var out []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid pgrp ...
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			out = append(out, s[:i+1])
		}
	}
	return out
}

// checkStopped checks that every server in stopped is down, every one in
// kept still runs, and the fleet's processes are gone.
func (r *run) checkStopped(kept ...string) {
	r.t.Helper()
	for _, s := range servers {
		keep := false
		for _, k := range kept {
			keep = keep || k == s.name
		}
		switch {
		case keep && !running(s.name):
			r.t.Errorf("%s ran before the run and was stopped", s.name)
		case !keep && running(s.name):
			r.t.Errorf("%s, started by the run, still runs", s.name)
		case !keep && listening(s.port):
			r.t.Errorf("%s stopped but something still listens on its port %s", s.name, s.port)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		for pid, name := range r.fleetPIDs() {
			if alive(pid) {
				left = append(left, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		left = append(left, groupMembers(r.cmd.Process.Pid)...)
		for _, p := range append(servicePorts, "17086") {
			if listening(p) {
				left = append(left, "a listener on "+p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Errorf("left running after the run stopped: %s", strings.Join(left, ", "))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func requireStopped(t *testing.T) {
	t.Helper()
	for _, s := range servers {
		if running(s.name) || listening(s.port) {
			t.Fatalf("%s of the test's set (port %s) runs before the test", s.name, s.port)
		}
	}
}

// Ctrl-C in a terminal: SIGINT to the whole foreground process group.
func TestRunScriptCtrlC(t *testing.T) {
	requireStopped(t)
	r := start(t, filepath.Join(root, "scripts", "run.sh"))
	r.waitUp()
	pgid := r.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r.waitExit(3 * time.Minute)
	r.checkStopped()
}

// Ctrl-C while the servers start: what was started so far is stopped.
func TestRunScriptCtrlCDuringStartup(t *testing.T) {
	requireStopped(t)
	r := startWatching(t, "kafka] starting Kafka", filepath.Join(root, "scripts", "run.sh"))
	select {
	case <-r.seen:
	case <-r.done:
		t.Fatalf("exited before starting Kafka: %v", r.err)
	case <-time.After(5 * time.Minute):
		t.Fatal("Kafka did not start within 5 minutes")
	}
	time.Sleep(2 * time.Second) // Kafka's JVM is up, not yet ready
	if !running("postgres") || !running("kafka") {
		t.Fatal("PostgreSQL and Kafka of the test's set should be running (or starting) by now")
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r.waitExit(3 * time.Minute)
	r.checkStopped()
}

// SIGTERM to make alone (kill -TERM <make pid>): make passes it on to
// run.sh and waits for it.
func TestMakeRunSIGTERM(t *testing.T) {
	requireStopped(t)
	r := start(t, "make", "run")
	r.waitUp()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.waitExit(3 * time.Minute)
	r.checkStopped()
}

// A server that ran before `make run` is left running; `timeout -s TERM`
// around make signals make's whole process group.
func TestMakeRunLeavesRunningServer(t *testing.T) {
	requireStopped(t)
	if out, err := script("postgres", "start"); err != nil {
		t.Fatalf("postgres.sh start: %v\n%s", err, out)
	}
	r := start(t, "make", "run")
	r.waitUp()
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r.waitExit(3 * time.Minute)
	r.checkStopped("postgres")
}
