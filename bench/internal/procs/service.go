// Package procs runs the fleet's services as separate processes for the
// benchmark (as `make run` does), and reads what the benchmark needs from
// them and from the machine: readiness, Prometheus metrics, CPU profiles,
// and per-process CPU time.
package procs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Service is one service process.
type Service struct {
	Name string
	Bin  string
	// Env is added to the benchmark's own environment.
	Env      []string
	HTTPAddr string
	LogPath  string

	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
	err  error
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start starts the process, its output appended to LogPath.
func (s *Service) Start() error {
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.Bin)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Env = append(cmd.Env, "ONEX_HTTP_ADDR="+s.HTTPAddr)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: a Ctrl-C of `make bench` reaches the benchmark,
	// which then stops the services in order instead of the terminal
	// killing them mid-write.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	s.cmd, s.logf, s.done = cmd, f, make(chan struct{})
	go func() {
		s.err = cmd.Wait()
		f.Close()
		close(s.done)
	}()
	return nil
}

// Pid is the process id (0 when not started).
func (s *Service) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the process has not exited.
func (s *Service) Running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// WaitReady polls /readyz until it answers 200, the process exits, or ctx
// ends.
func (s *Service) WaitReady(ctx context.Context) error {
	url := "http://" + s.HTTPAddr + "/readyz"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (log: %s)", s.Name, ctx.Err(), s.LogPath)
		case <-s.done:
			return fmt.Errorf("%s exited before it was ready: %v (log: %s)", s.Name, s.err, s.LogPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits up to grace for a clean drain, then kills.
func (s *Service) Stop(grace time.Duration) error {
	if !s.Running() {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s did not stop within %s; killed", s.Name, grace)
	}
	var ee *exec.ExitError
	if s.err != nil && !errors.As(s.err, &ee) {
		return s.err
	}
	return nil
}

// Metrics scrapes /metrics.
func (s *Service) Metrics(ctx context.Context) (Metrics, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTPAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s metrics: %w", s.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s metrics: %w", s.Name, err)
	}
	m, err := parseMetrics(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s metrics: %w", s.Name, err)
	}
	return m, nil
}

func parseMetrics(text string) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(text))
	return Metrics(mf), err
}

// CPUProfile takes a CPU profile of seconds and writes it to path.
func (s *Service) CPUProfile(ctx context.Context, seconds int, path string) error {
	return s.Profile(ctx, "profile", seconds, path)
}

// Profile takes a profile of kind ("profile" for CPU, or "block",
// "mutex": the delta over seconds) and writes it to path.
func (s *Service) Profile(ctx context.Context, kind string, seconds int, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", s.HTTPAddr, kind, seconds)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s profile: %w", s.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s profile: %s: %s", s.Name, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Metrics are the metric families of one scrape.
type Metrics map[string]*dto.MetricFamily

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k {
				found = lp.GetValue() == v
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Sum adds the values of every series of a counter, gauge or untyped family
// whose labels include labels.
func (ms Metrics) Sum(name string, labels map[string]string) float64 {
	mf := ms[name]
	if mf == nil {
		return 0
	}
	var s float64
	for _, m := range mf.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			s += m.Counter.GetValue()
		case m.Gauge != nil:
			s += m.Gauge.GetValue()
		case m.Untyped != nil:
			s += m.Untyped.GetValue()
		}
	}
	return s
}

// Above adds, over every gauge series of name, how far it exceeds floor.
func (ms Metrics) Above(name string, floor float64) float64 {
	mf := ms[name]
	if mf == nil {
		return 0
	}
	var s float64
	for _, m := range mf.GetMetric() {
		if m.Gauge != nil {
			s += max(m.Gauge.GetValue()-floor, 0)
		}
	}
	return s
}

// Histogram returns the summed sample sum and count of a histogram family.
func (ms Metrics) Histogram(name string, labels map[string]string) (sum float64, count uint64) {
	mf := ms[name]
	if mf == nil {
		return 0, 0
	}
	for _, m := range mf.GetMetric() {
		if m.Histogram == nil || !matches(m, labels) {
			continue
		}
		sum += m.Histogram.GetSampleSum()
		count += m.Histogram.GetSampleCount()
	}
	return sum, count
}

// HistogramsBy returns the sample sum and count of a histogram family per
// combination of the by labels (values joined with "/").
func (ms Metrics) HistogramsBy(name string, by ...string) map[string][2]float64 {
	out := map[string][2]float64{}
	mf := ms[name]
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		if m.Histogram == nil {
			continue
		}
		var key []string
		for _, l := range by {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == l {
					key = append(key, lp.GetValue())
				}
			}
		}
		k := strings.Join(key, "/")
		v := out[k]
		v[0] += m.Histogram.GetSampleSum()
		v[1] += float64(m.Histogram.GetSampleCount())
		out[k] = v
	}
	return out
}
