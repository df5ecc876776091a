package run

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// cleanup stops the nodes and the services, then removes what the run
// created on the shared servers: its snapshot topic, the projection rows of
// its nodes, and the Consul services of its environment. It runs once.
func (b *bench) cleanup() {
	b.cleanOnce.Do(func() {
		if b.stopNodes != nil {
			b.stopNodes()
		}
		if b.fleet != nil {
			b.fleet.stop()
		}
		if b.s.Keep {
			b.log.Info("bench: leaving the run's nodes in place (-keep)", "environment", b.env)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		t0 := time.Now()
		b.idsMu.Lock()
		ids := append(b.ids[:0:0], b.ids...)
		b.idsMu.Unlock()
		if b.ns != topicns.None {
			if err := deleteTopics(b.s.Brokers, b.ns); err != nil {
				b.log.Warn("bench: clean-up: the run's topics", "namespace", b.ns, "error", err)
			}
		}
		if b.pool != nil {
			if _, err := ceiling.DeleteRows(ctx, b.pool, ids); err != nil {
				b.log.Warn("bench: clean-up: projection rows", "error", err)
			}
		}
		n, err := b.deregisterRun(ctx)
		if err != nil {
			b.log.Warn("bench: clean-up: consul", "error", err)
		}
		b.log.Info("bench: cleaned up", "nodes", len(ids), "consul_services", n, "took", time.Since(t0).Round(time.Second))
	})
}

// deregisterRun removes the run's services from the catalog: the external
// nodes that hold them, with their checks.
func (b *bench) deregisterRun(ctx context.Context) (int, error) {
	if b.consul == nil {
		return 0, nil
	}
	nodes, err := b.catalogNodes(ctx, b.env)
	if err != nil {
		return 0, err
	}
	return len(nodes), ceiling.DeleteCatalogNodes(ctx, b.consul, nodes)
}

// logWriter is a file in the run's log directory for the benchmark's own
// components (the node fleet logs its warnings there).
func (b *bench) logWriter(name string) io.Writer {
	f, err := os.OpenFile(filepath.Join(b.s.LogDir, b.env, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	return f
}

// The reducer's Go benchmarks that give the micro-figures (one process, no
// servers): a tick of a partition with 100,000 ACTIVE nodes and none due,
// and restoring 100,000 snapshot records (CPU per node on one core, and the
// restored partition's live heap per node).
var microBenchmarks = []struct{ pkg, pattern, benchtime string }{
	{"./services/reducer/internal/processor/", "BenchmarkTickNoneDue100k", "1s"},
	// One restore of 100,000 nodes takes seconds: once is enough.
	{"./services/reducer/internal/app/", "BenchmarkRestore100k", "1x"},
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// micro runs the micro-benchmarks and records every figure they report.
func (b *bench) micro(ctx context.Context) error {
	for _, m := range microBenchmarks {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+m.pattern+"$", "-benchtime", m.benchtime, "-benchmem", "-count", "1", m.pkg)
		cmd.Dir = b.s.Repo
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", m.pkg, m.pattern, err, out.String())
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			g := benchLine.FindStringSubmatch(sc.Text())
			if g == nil {
				continue
			}
			f := strings.Fields(g[3])
			for i := 0; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					continue
				}
				unit := strings.NewReplacer("/", "_per_").Replace(f[i+1])
				b.res.Detail("micro_"+g[1]+"_"+unit, v)
			}
		}
	}
	return nil
}
