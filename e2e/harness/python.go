package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PythonVenv returns the interpreter of the project's Python venv (the
// pinned omnibase-infra from interop/python/requirements.lock), creating it
// on first use with scripts/python/venv.sh. The script caches the venv
// outside the repository, so later calls take milliseconds.
func PythonVenv(ctx context.Context, repoRoot string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", "python", "venv.sh"))
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/python/venv.sh: %w\n%s", err, tail(stderr.Bytes(), 2000))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	py := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(py); err != nil {
		return "", fmt.Errorf("scripts/python/venv.sh printed %q, which is not a file: %w", py, err)
	}
	return py, nil
}

// PythonNode is one node a PythonNodes process reported as started.
type PythonNode struct {
	NodeID      string    `json:"node_id"`
	NodeType    string    `json:"node_type"`
	NodeName    string    `json:"node_name"`
	NodeVersion string    `json:"node_version"`
	MCPTool     *string   `json:"mcp_tool"`
	StartedAt   time.Time `json:"-"`
}

// PythonNodesOptions are the node program's options (interop/python/onex_nodes.py).
type PythonNodesOptions struct {
	Nodes             int
	Types             []string
	MCPTool           string
	Version           string
	HeartbeatInterval time.Duration
	NamePrefix        string
	// NodeIDs are the ids of the first nodes (a restarted process is the
	// same nodes); the rest get fresh ones.
	NodeIDs []string
	// Env adds to the program's environment (KAFKA_TOPIC_NAMESPACE, ...).
	Env []string
}

// PythonNodes is one process of real Python ONEX nodes: the package's own
// MixinNodeIntrospection and EventBusKafka, started in the documented order.
type PythonNodes struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
	ready  chan struct{}

	mu      sync.Mutex
	nodes   []PythonNode
	stopped map[string]bool
	waitErr error
}

// StartPythonNodes starts the node program with py against brokers and
// waits until it reports every node started (or ctx ends).
func StartPythonNodes(ctx context.Context, py, repoRoot string, brokers []string, o PythonNodesOptions) (*PythonNodes, error) {
	args := []string{filepath.Join(repoRoot, "interop", "python", "onex_nodes.py"),
		"--bootstrap", strings.Join(brokers, ","),
		"--nodes", strconv.Itoa(o.Nodes),
	}
	if len(o.Types) > 0 {
		args = append(args, "--types", strings.Join(o.Types, ","))
	}
	if o.MCPTool != "" {
		args = append(args, "--mcp-tool", o.MCPTool)
	}
	if o.Version != "" {
		args = append(args, "--version", o.Version)
	}
	if o.HeartbeatInterval > 0 {
		args = append(args, "--heartbeat-interval", strconv.FormatFloat(o.HeartbeatInterval.Seconds(), 'f', -1, 64))
	}
	if o.NamePrefix != "" {
		args = append(args, "--name-prefix", o.NamePrefix)
	}
	if len(o.NodeIDs) > 0 {
		args = append(args, "--node-ids", strings.Join(o.NodeIDs, ","))
	}
	// Not CommandContext: the caller signals the process itself (SIGTERM
	// for a clean shutdown, SIGKILL for a crash), and Close kills it.
	cmd := exec.Command(py, args...)
	cmd.Dir = repoRoot
	// The process's namespace first, so o.Env can override it.
	cmd.Env = append(append(os.Environ(), NamespaceEnv()), o.Env...)
	p := &PythonNodes{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{}), ready: make(chan struct{}), stopped: map[string]bool{}}
	cmd.Stderr = &lockedWriter{w: p.stderr, mu: &p.mu}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	go p.read(stdout)
	select {
	case <-p.ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("python nodes exited before ready: %v\n%s", p.Err(), p.Stderr(4000))
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("python nodes not ready: %w\n%s", ctx.Err(), p.Stderr(4000))
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *PythonNodes) read(stdout io.Reader) {
	defer func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var line struct {
			Event string `json:"event"`
			PythonNode
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue // not one of the program's JSON lines
		}
		p.mu.Lock()
		switch line.Event {
		case "started":
			n := line.PythonNode
			n.StartedAt = time.Now()
			p.nodes = append(p.nodes, n)
		case "ready":
			select {
			case <-p.ready:
			default:
				close(p.ready)
			}
		case "stopped":
			p.stopped[line.NodeID] = true
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, stdout)
}

// Nodes returns the nodes the process reported started.
func (p *PythonNodes) Nodes() []PythonNode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PythonNode(nil), p.nodes...)
}

// Stopped reports whether the process said nodeID stopped cleanly.
func (p *PythonNodes) Stopped(nodeID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped[nodeID]
}

// Pid is the process id.
func (p *PythonNodes) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *PythonNodes) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit, at most timeout.
func (p *PythonNodes) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.Err()
	case <-time.After(timeout):
		return fmt.Errorf("python nodes (pid %d) still running after %s", p.Pid(), timeout)
	}
}

// Err is the process's exit error once it has exited.
func (p *PythonNodes) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Stderr returns the last n bytes the process wrote to stderr.
func (p *PythonNodes) Stderr(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return tail(p.stderr.Bytes(), n)
}

// Close kills the process if it still runs.
func (p *PythonNodes) Close() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// ValidationFailure is one record the package's consumer path refused.
type ValidationFailure struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Error     string `json:"error"`
}

func (f ValidationFailure) String() string {
	return fmt.Sprintf("%s[%d]@%d: %s", f.Topic, f.Partition, f.Offset, f.Error)
}

// ValidationSummary is the checker's closing line.
type ValidationSummary struct {
	Validated int            `json:"validated"`
	Failed    int            `json:"failed"`
	ByTopic   map[string]int `json:"by_topic"`
}

// ValidateWithPython feeds recs to interop/python/validate_records.py, which
// checks each with the pinned package's own consumer path for its topic
// (envelope deserialization and payload model, the ACK listener for the
// bare accepted event, the registry listener for introspection requests,
// the DLQ parser for dead letters).
func ValidateWithPython(ctx context.Context, py, repoRoot string, recs []Record, env ...string) (ValidationSummary, []ValidationFailure, error) {
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, r := range recs {
		var key *string
		if r.Key != "" {
			k := r.Key
			key = &k
		}
		if err := enc.Encode(map[string]any{
			"topic": r.Topic, "partition": r.Partition, "offset": r.Offset, "key": key,
			"value_b64": base64.StdEncoding.EncodeToString(r.Value), "headers": map[string]string{},
		}); err != nil {
			return ValidationSummary{}, nil, err
		}
	}
	cmd := exec.CommandContext(ctx, py, filepath.Join(repoRoot, "interop", "python", "validate_records.py"))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return ValidationSummary{}, nil, fmt.Errorf("validate_records.py: %w\n%s", err, tail(stderr.Bytes(), 4000))
	}
	var sum ValidationSummary
	var fails []ValidationFailure
	var sawSummary bool
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var probe map[string]json.RawMessage
		if json.Unmarshal(line, &probe) != nil {
			continue
		}
		if _, ok := probe["validated"]; ok {
			if err := json.Unmarshal(line, &sum); err != nil {
				return sum, fails, err
			}
			sawSummary = true
			continue
		}
		var f ValidationFailure
		if err := json.Unmarshal(line, &f); err == nil {
			fails = append(fails, f)
		}
	}
	if !sawSummary {
		return sum, fails, fmt.Errorf("validate_records.py printed no summary line\n%s", tail(stderr.Bytes(), 4000))
	}
	return sum, fails, nil
}
