package profiles

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

// spin burns a fixed amount of CPU (about half a second), however busy
// the machine is.
//
//go:noinline
func spin() int {
	n := 0
	b := []byte("burn")
	for i := 0; i < 2_000_000; i++ {
		s := sha256.Sum256(b)
		b[0] = s[0]
		n += int(s[1])
	}
	return n
}

func TestSummarizeFindsTheBusyFunction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	spin()
	pprof.StopCPUProfile()
	f.Close()
	s, err := Summarize(path, 5)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cores <= 0 || len(s.Flat) == 0 {
		t.Fatalf("summary %+v: no CPU found", s)
	}
	found := false
	for _, fn := range s.Cum {
		if strings.HasSuffix(fn.Name, ".spin") && fn.Cum > 50 {
			found = true
		}
	}
	if !found {
		t.Fatalf("spin is not the top cumulative function: %+v", s.Cum)
	}
	var total float64
	for _, v := range s.Groups {
		total += v
	}
	if total < 99.9 || total > 100.1 {
		t.Fatalf("groups add up to %.1f%%, want 100", total)
	}
}

// blockOn holds mu while another goroutine waits for it.
//
//go:noinline
func blockOn(mu *sync.Mutex, d time.Duration) {
	mu.Lock()
	go func() { time.Sleep(d); mu.Unlock() }()
	mu.Lock()
	mu.Unlock()
}

func TestSummarizeWaitsFindsTheWaitingFunction(t *testing.T) {
	runtime.SetBlockProfileRate(1)
	defer runtime.SetBlockProfileRate(0)
	var mu sync.Mutex
	for i := 0; i < 5; i++ {
		blockOn(&mu, 20*time.Millisecond)
	}
	path := filepath.Join(t.TempDir(), "block.pprof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.Lookup("block").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := SummarizeWaits(path, 5)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, fn := range s.Cum {
		if strings.HasSuffix(fn.Name, "profiles.blockOn") && fn.Cum > 90 {
			found = true
		}
	}
	if !found {
		t.Fatalf("the waiting function is not in the waits: %+v", s.Cum)
	}
	for _, fn := range s.Cum {
		if !strings.Contains(fn.Name, "/onex-fleet/") {
			t.Fatalf("%s is not the fleet's", fn.Name)
		}
	}
}
