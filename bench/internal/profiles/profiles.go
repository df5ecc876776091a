// Package profiles summarises CPU profiles into the few lines a reader of
// the results needs: how much CPU a process used while profiled, and which
// functions (flat) and which call paths (cumulative) took it.
package profiles

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// Func is one function's share of a profile.
type Func struct {
	Name string  `json:"name"`
	Flat float64 `json:"flat_pct"` // of all samples, in the function itself
	Cum  float64 `json:"cum_pct"`  // of all samples, in it or below
}

// Summary is a profile in brief.
type Summary struct {
	// Cores is CPU time over wall time (1.0 = one core busy).
	Cores float64 `json:"cores"`
	// Flat and Cum are the top functions by flat and by cumulative share;
	// Cum leaves out the runtime's and the process's entry points, which
	// are 100 % and say nothing.
	Flat []Func `json:"top_flat"`
	Cum  []Func `json:"top_cum"`
	// Groups is the share of broad kinds of work (see classify).
	Groups map[string]float64 `json:"groups"`
}

// Summarize reads a CPU profile (pprof protobuf, as /debug/pprof/profile
// serves it) and returns its top n functions both ways.
func Summarize(path string, n int) (Summary, error) { return summarize(path, n, false) }

// SummarizeWaits reads a block or mutex profile (the delay its goroutines
// spent waiting, /debug/pprof/block?seconds=N) and returns the fleet's own
// functions that waited longest, cumulatively: a block profile is dominated
// by goroutines idly waiting for work (consumer loops, timers), and what
// matters is which handler code waited, and on what (the flat list keeps
// every frame). Cores is then the average number of goroutines waiting.
func SummarizeWaits(path string, n int) (Summary, error) { return summarize(path, n, true) }

func summarize(path string, n int, waits bool) (Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return Summary{}, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return Summary{}, fmt.Errorf("%s: %w", path, err)
	}
	vi := len(p.SampleType) - 1 // cpu nanoseconds
	var total int64
	flat := map[string]int64{}
	cum := map[string]int64{}
	groups := map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[vi]
		total += v
		seen := map[string]bool{}
		var leaf string
		for i, loc := range s.Location {
			for j := len(loc.Line) - 1; j >= 0; j-- { // inlined frames last
				name := loc.Line[j].Function.Name
				if i == 0 && leaf == "" {
					leaf = loc.Line[0].Function.Name
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
			}
		}
		if leaf != "" {
			flat[leaf] += v
		}
		groups[classify(s)] += v
	}
	out := Summary{Groups: map[string]float64{}}
	if p.DurationNanos > 0 {
		out.Cores = float64(total) / float64(p.DurationNanos)
	}
	if total == 0 {
		return out, nil
	}
	pct := func(v int64) float64 { return float64(v) * 100 / float64(total) }
	fill := func(names []string) []Func {
		fs := make([]Func, len(names))
		for i, name := range names {
			fs[i] = Func{Name: name, Flat: pct(flat[name]), Cum: pct(cum[name])}
		}
		return fs
	}
	out.Flat = fill(top(flat, nil, n))
	skip := boring
	if waits {
		skip = func(name string) bool { return !strings.Contains(name, "/onex-fleet/") }
	}
	out.Cum = fill(top(cum, skip, n))
	for k, v := range groups {
		out.Groups[k] = pct(v)
	}
	return out, nil
}

// top returns the n names with the largest values.
func top(m map[string]int64, skip func(string) bool, n int) []string {
	type kv struct {
		k string
		v int64
	}
	var all []kv
	for k, v := range m {
		if skip != nil && skip(k) {
			continue
		}
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var out []string
	for _, e := range all[:min(n, len(all))] {
		out = append(out, e.k)
	}
	return out
}

// boring are frames every sample or every goroutine passes through.
func boring(name string) bool {
	switch name {
	case "runtime.goexit", "runtime.main", "main.main", "runtime.mcall", "runtime.systemstack", "runtime.park_m", "runtime.schedule":
		return true
	}
	return false
}

// classify puts a sample in a broad kind of work by the frames on its
// stack, most specific first: garbage collection, JSON encoding and
// decoding, Kafka client, PostgreSQL driver, Consul client and HTTP,
// compression, syscalls, everything else.
func classify(s *profile.Sample) string {
	var names []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			names = append(names, l.Function.Name)
		}
	}
	has := func(prefixes ...string) bool {
		for _, n := range names {
			for _, p := range prefixes {
				if strings.HasPrefix(n, p) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case has("runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge", "runtime.markroot"):
		return "gc"
	case has("github.com/pierrec/lz4", "github.com/klauspost/compress"):
		return "compression"
	case has("encoding/json", "github.com/omninode/onex-fleet/pkg/envelope/pyjson"):
		return "json"
	case has("github.com/jackc/pgx"):
		return "postgres-driver"
	case has("github.com/hashicorp/consul/api", "net/http"):
		return "http"
	case has("github.com/IBM/sarama"):
		return "kafka-client"
	case has("syscall.", "internal/poll", "runtime.netpoll"):
		return "syscall"
	case has("runtime.mallocgc", "runtime.newobject", "runtime.growslice", "runtime.makeslice", "runtime.makemap"):
		return "alloc"
	}
	return "other"
}
