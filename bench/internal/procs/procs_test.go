package procs

import (
	"math"
	"net"
	"os"
	"testing"
	"time"
)

func TestListenerPidFindsThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if got := ListenerPid(port); got != os.Getpid() {
		t.Fatalf("ListenerPid(%d) = %d, want this process %d", port, got, os.Getpid())
	}
	ln.Close()
	if got := ListenerPid(port); got != 0 {
		t.Fatalf("ListenerPid of a closed port = %d, want 0", got)
	}
}

func TestCPUUseOfABusyLoop(t *testing.T) {
	self := []Group{{Name: "self", Pids: func() []int { return []int{os.Getpid()} }}}
	a := SampleCPU(self)
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
	}
	u := Use(a, SampleCPU(self))
	// One goroutine spinning: close to one core, never more than two.
	if got := u.Groups["self"]; got < 0.3 || got > 2 {
		t.Fatalf("busy loop used %.2f cores, want about 1", got)
	}
	if u.Busy < u.Groups["self"]*0.5 || u.Cores < 1 {
		t.Fatalf("machine busy %.2f of %d cores while this process used %.2f", u.Busy, u.Cores, u.Groups["self"])
	}
}

func TestRSS(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("RSS = %d, %v; want at least a MiB", rss, err)
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Fatal("RSS of a pid that does not exist: no error")
	}
}

func TestMetricsSumAndHistogram(t *testing.T) {
	const text = `# TYPE onex_x_total counter
onex_x_total{kind="a",outcome="ok"} 3
onex_x_total{kind="a",outcome="no"} 4
onex_x_total{kind="b",outcome="ok"} 5
# TYPE onex_h_seconds histogram
onex_h_seconds_bucket{le="1"} 2
onex_h_seconds_bucket{le="+Inf"} 3
onex_h_seconds_sum 1.5
onex_h_seconds_count 3
`
	m, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{{nil, 12}, {map[string]string{"kind": "a"}, 7}, {map[string]string{"kind": "a", "outcome": "ok"}, 3}, {map[string]string{"kind": "c"}, 0}} {
		if got := m.Sum("onex_x_total", tc.labels); got != tc.want {
			t.Errorf("Sum(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if s, c := m.Histogram("onex_h_seconds", nil); s != 1.5 || c != 3 {
		t.Errorf("Histogram = %v, %v; want 1.5, 3", s, c)
	}
	if got := m.HistogramsBy("onex_h_seconds"); got[""] != [2]float64{1.5, 3} {
		t.Errorf("HistogramsBy = %v", got)
	}
}

// Above counts only what exceeds the floor: lag 1 (a transaction's commit
// marker) is no backlog.
func TestMetricsAbove(t *testing.T) {
	m, err := parseMetrics(`# TYPE onex_consumer_lag gauge
onex_consumer_lag{partition="0"} 1
onex_consumer_lag{partition="1"} 0
onex_consumer_lag{partition="2"} 4
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Above("onex_consumer_lag", 1); got != 3 {
		t.Errorf("Above(1) = %v, want 3", got)
	}
	if got := m.Above("onex_consumer_lag", 0); got != 5 {
		t.Errorf("Above(0) = %v, want 5", got)
	}
	if got := m.Above("onex_missing", 1); got != 0 {
		t.Errorf("Above of a missing family = %v", got)
	}
}

func TestPerItem(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	a := CPUSample{At: t0, PerProc: map[string]uint64{"reducer": 1000, "projector": 500, "kafka": 7000}}
	b := CPUSample{At: t0.Add(10 * time.Second), PerProc: map[string]uint64{"reducer": 1150, "projector": 550, "kafka": 9000}}
	restarted := CPUSample{At: b.At, PerProc: map[string]uint64{"reducer": 20, "projector": 550, "kafka": 9000}}
	for _, tc := range []struct {
		name  string
		b     CPUSample
		items float64
		names []string
		want  float64 // NaN: no figure
	}{
		// 150 + 50 ticks = 2 s of CPU over 1,000 items.
		{"two groups", b, 1000, []string{"reducer", "projector"}, 0.002},
		{"one group", b, 100, []string{"projector"}, 0.005},
		{"other groups are left out", b, 1000, []string{"reducer"}, 0.0015},
		{"no items", b, 0, []string{"reducer"}, math.NaN()},
		{"no groups", b, 1000, nil, math.NaN()},
		{"a group not sampled", b, 1000, []string{"reducer", "consul-effect"}, math.NaN()},
		{"a process restarted", restarted, 1000, []string{"reducer", "projector"}, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PerItem(a, tc.b, tc.items, tc.names...)
			if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-12) {
				t.Fatalf("PerItem = %v, want %v", got, tc.want)
			}
		})
	}
}
