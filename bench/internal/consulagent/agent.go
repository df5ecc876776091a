// Package consulagent runs Consul agents of the benchmark's own: the
// project's Consul (scripts/infra/consul.sh builds it) in -dev mode, its
// state in memory, on loopback ports nobody else uses, so what a run
// registers never reaches the shared agent and every run starts from the
// same empty catalog. A -dev agent serves /debug/pprof, so it can be
// profiled.
package consulagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Version is the Consul release the project uses.
const Version = "1.13.9"

// Bin returns the Consul binary scripts/infra/consul.sh builds
// ($ONEX_CACHE_DIR/bin/consul-<Version>).
func Bin() (string, error) {
	cache := os.Getenv("ONEX_CACHE_DIR")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "onex-fleet")
	}
	bin := filepath.Join(cache, "bin", "consul-"+Version)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("consul %s: %w (scripts/infra/consul.sh build)", Version, err)
	}
	return bin, nil
}

// Agent is one running -dev agent.
type Agent struct {
	// Addr is host:port of its HTTP API.
	Addr string
	// Node is its node name.
	Node string

	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start starts an agent named name, with its log in dir, and waits until
// it is its own leader.
func Start(ctx context.Context, bin, dir, name string) (*Agent, error) {
	a := &Agent{Node: "bench-" + name, log: filepath.Join(dir, name+".log")}
	var err error
	// A port can be taken between the check and the agent's bind: try
	// other ports then.
	for range 3 {
		if err = a.launch(ctx, bin); err == nil {
			return a, nil
		}
		a.Stop()
	}
	return nil, err
}

func (a *Agent) launch(ctx context.Context, bin string) error {
	p, err := ports(6)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	a.Addr = fmt.Sprintf("127.0.0.1:%d", p[0])
	a.cmd = exec.Command(bin, "agent", "-dev", "-node="+a.Node, "-datacenter=dc1",
		"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=127.0.0.1",
		fmt.Sprintf("-http-port=%d", p[0]), fmt.Sprintf("-dns-port=%d", p[1]), fmt.Sprintf("-server-port=%d", p[2]),
		fmt.Sprintf("-serf-lan-port=%d", p[3]), fmt.Sprintf("-serf-wan-port=%d", p[4]), fmt.Sprintf("-grpc-port=%d", p[5]),
		"-log-level=warn")
	a.cmd.Stdout, a.cmd.Stderr = f, f
	// Own process group: a Ctrl-C of make bench reaches the benchmark,
	// which stops the agent itself.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		f.Close()
		return err
	}
	a.done = make(chan struct{})
	go func() { _ = a.cmd.Wait(); f.Close(); close(a.done) }()
	return a.Leader(ctx, 30*time.Second)
}

func (a *Agent) leader(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr+"/v1/status/leader", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var l string
	return json.NewDecoder(resp.Body).Decode(&l) == nil && l != ""
}

// Pid is the agent's process id (0 when not running).
func (a *Agent) Pid() int {
	if a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Pause stops the agent's process (SIGSTOP): it keeps what it holds and
// costs no CPU while other measurements run. Resume lets it go on.
func (a *Agent) Pause() error { return a.signal(syscall.SIGSTOP) }

// Resume continues a paused agent (SIGCONT).
func (a *Agent) Resume() error { return a.signal(syscall.SIGCONT) }

func (a *Agent) signal(sig syscall.Signal) error {
	if a.cmd == nil || a.cmd.Process == nil {
		return fmt.Errorf("consul agent %s is not running", a.Node)
	}
	return a.cmd.Process.Signal(sig)
}

// Leader waits up to timeout for the agent to answer that it is its own
// leader: a started agent once it has elected itself, a resumed one at
// once. An agent that exits meanwhile is an error at once.
func (a *Agent) Leader(ctx context.Context, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		if a.leader(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.done:
			return fmt.Errorf("consul agent %s exited (log: %s)", a.Node, a.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("consul agent %s has no leader after %s (log: %s)", a.Node, timeout, a.log)
}

// Stop kills the agent (paused or not) and waits for it; its state is
// gone with it.
func (a *Agent) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Kill()
	<-a.done
	a.cmd = nil
}

// ports returns n loopback ports free for TCP and UDP (the DNS and serf
// ports use both), below the kernel's ephemeral range, where the run's
// many client connections take theirs, and clear of the fixed ports of the
// local servers (18xxx, 28xxx, 38xxx and their Kafka ports) and of the
// test agents (21000-27999).
func ports(n int) ([]int, error) {
	var out []int
	for tries := 0; len(out) < n && tries < 500; tries++ {
		p := 30000 + rand.IntN(2500)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, errors.New("no free ports for a consul agent in 30000-32499")
	}
	return out, nil
}
