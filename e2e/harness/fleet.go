package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// Services are the fleet's four deployables, in start order.
var Services = []string{"registration-orchestrator", "reducer", "projector-effect", "consul-effect"}

// Build compiles the four services into dir. With coverDir set the
// binaries are built with -cover and write their coverage there when they
// exit cleanly (make test merges it into the total).
func Build(ctx context.Context, repoRoot, dir string, cover bool) error {
	for _, s := range Services {
		args := []string{"build", "-o", filepath.Join(dir, s)}
		if cover {
			args = append(args, "-cover", "-coverpkg=github.com/omninode/onex-fleet/pkg/...,github.com/omninode/onex-fleet/services/...")
		}
		args = append(args, "./services/"+s+"/cmd/"+s)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", s, err, out)
		}
	}
	return nil
}

// Fleet runs the four services as separate processes against Servers.
// Every service keeps its ports across restarts, so a restarted instance
// is the same ONEX node (self-registration derives the id from them).
type Fleet struct {
	binDir, logDir string
	env            []string
	HTTPPort       map[string]int
	GRPCAddr       string

	mu    sync.Mutex
	procs map[string]*proc
	// own is each service's environment on top of env (SetEnv): a rolling
	// change of one service's settings.
	own map[string][]string
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// NewFleet prepares (does not start) the fleet. env adds to or overrides
// the services' environment (e.g. shorter liveness windows for a test).
func NewFleet(s Servers, repoRoot, binDir, logDir string, env map[string]string) (*Fleet, error) {
	f := &Fleet{binDir: binDir, logDir: logDir, HTTPPort: map[string]int{}, procs: map[string]*proc{}}
	for _, svc := range Services {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		f.HTTPPort[svc] = p
	}
	gp, err := FreePort()
	if err != nil {
		return nil, err
	}
	f.GRPCAddr = fmt.Sprintf("127.0.0.1:%d", gp)
	base := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": strings.Join(s.KafkaBrokers, ","),
		"OMNIBASE_INFRA_DB_URL":   s.PostgresURL,
		"CONSUL_HTTP_ADDR":        s.ConsulAddr,
		"ONEX_CONTRACTS_DIR":      filepath.Join(repoRoot, "contracts"),
		"ONEX_GRPC_ADDR":          f.GRPCAddr,
		"ONEX_LOG_LEVEL":          "INFO",
		"ONEX_DRAIN_TIMEOUT":      "10",
		// The suites check Consul as the catalog mode keeps it
		// (ConsulEntries), whatever the effect's default.
		"ONEX_CONSUL_REGISTRATION_MODE": "catalog",
		// The process's topics (namespace.go); env may override it.
		topicns.EnvVar: Namespace.String(),
	}
	for k, v := range env {
		base[k] = v
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, overridden := base[k]; !overridden && !strings.HasPrefix(k, "ONEX_") {
			f.env = append(f.env, kv)
		}
	}
	for k, v := range base {
		f.env = append(f.env, k+"="+v)
	}
	return f, os.MkdirAll(logDir, 0o755)
}

// SetEnv sets KEY=value pairs for svc's next start, on top of the fleet's
// environment: a test rolls a setting through the fleet one service at a
// time, as a deployment would. Nil clears them.
func (f *Fleet) SetEnv(svc string, kv ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.own == nil {
		f.own = map[string][]string{}
	}
	f.own[svc] = kv
}

// LogPath is where service svc writes its log (appended across restarts).
func (f *Fleet) LogPath(svc string) string { return filepath.Join(f.logDir, svc+".log") }

// Start starts svc (if it is not running).
func (f *Fleet) Start(svc string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.procs[svc]; ok {
		select {
		case <-p.done:
		default:
			return nil
		}
	}
	logf, err := os.OpenFile(f.LogPath(svc), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(f.binDir, svc))
	cmd.Env = append(append(append([]string{}, f.env...), f.own[svc]...), "ONEX_HTTP_PORT="+strconv.Itoa(f.HTTPPort[svc]))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", svc, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	f.procs[svc] = p
	return nil
}

// WaitReady waits until svc's /readyz answers 200.
func (f *Fleet) WaitReady(ctx context.Context, svc string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", f.HTTPPort[svc])
	client := &http.Client{Timeout: time.Second}
	for {
		f.mu.Lock()
		p := f.procs[svc]
		f.mu.Unlock()
		if p != nil {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited while starting (%v); log %s:\n%s", svc, p.err, f.LogPath(svc), f.logTail(svc))
			default:
			}
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w; log %s:\n%s", svc, ctx.Err(), f.LogPath(svc), f.logTail(svc))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (f *Fleet) logTail(svc string) string {
	b, _ := os.ReadFile(f.LogPath(svc))
	return tail(b, 3000)
}

// StartAll starts every service and waits until all are ready.
func (f *Fleet) StartAll(ctx context.Context) error {
	for _, s := range Services {
		if err := f.Start(s); err != nil {
			return err
		}
	}
	for _, s := range Services {
		if err := f.WaitReady(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// Kill sends SIGKILL to svc and waits for it to die.
func (f *Fleet) Kill(svc string) error { return f.signal(svc, syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM to svc and waits for the drain to finish.
func (f *Fleet) Stop(svc string) error { return f.signal(svc, syscall.SIGTERM, 60*time.Second) }

func (f *Fleet) signal(svc string, sig syscall.Signal, wait time.Duration) error {
	f.mu.Lock()
	p := f.procs[svc]
	f.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s after %s", svc, wait, sig)
	}
}

// Running reports whether svc's process is alive.
func (f *Fleet) Running(svc string) bool {
	f.mu.Lock()
	p := f.procs[svc]
	f.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// StopAll stops every service gracefully (so -cover binaries write their
// coverage) and reports the first failure.
func (f *Fleet) StopAll() error {
	var first error
	for i := len(Services) - 1; i >= 0; i-- {
		if err := f.Stop(Services[i]); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ProvisionTopics creates the platform topics on Namespace.
func ProvisionTopics(ctx context.Context, brokers []string) error {
	admin, err := sarama.NewClusterAdmin(brokers, topics.NewAdminConfig("e2e-provision"))
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	if _, err := topics.Provision(ctx, admin, topics.Platform(), topics.Options{Namespace: Namespace}); err != nil {
		return fmt.Errorf("provision topics: %w", err)
	}
	return nil
}
