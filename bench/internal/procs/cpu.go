package procs

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// Group is a named set of processes whose CPU time is accounted together.
type Group struct {
	Name string
	// Pids lists the processes now (re-evaluated at every sample, so a
	// server's short-lived workers are found).
	Pids func() []int
	// Reaped adds the CPU time of waited-for children of these pids (the
	// PostgreSQL postmaster's exited backends).
	Reaped bool
}

// CPUSample is the CPU time of every group and of the machine at one instant.
type CPUSample struct {
	At      time.Time
	Busy    uint64 // machine-wide non-idle ticks, all CPUs
	Total   uint64 // machine-wide ticks, all CPUs
	PerProc map[string]uint64
}

// SampleCPU reads the CPU time of groups and of the machine.
func SampleCPU(groups []Group) CPUSample {
	s := CPUSample{At: time.Now(), PerProc: map[string]uint64{}}
	s.Busy, s.Total = machineTicks()
	for _, g := range groups {
		var t uint64
		for _, pid := range g.Pids() {
			u, c := procTicks(pid)
			t += u
			if g.Reaped {
				t += c
			}
		}
		s.PerProc[g.Name] = t
	}
	return s
}

// CPUUse is what each group used between two samples, in cores (1.0 = one
// CPU fully busy), plus the machine's busy cores and what no group explains.
type CPUUse struct {
	Seconds float64            `json:"seconds"`
	Cores   int                `json:"cores"`
	Busy    float64            `json:"busy_cores"`
	Groups  map[string]float64 `json:"groups"`
	Other   float64            `json:"other_cores"`
}

// Use computes the CPU use between a and b.
func Use(a, b CPUSample) CPUUse {
	secs := b.At.Sub(a.At).Seconds()
	u := CPUUse{Seconds: secs, Groups: map[string]float64{}, Cores: numCPU()}
	if secs <= 0 {
		return u
	}
	if b.Total > a.Total {
		u.Busy = float64(b.Busy-a.Busy) / float64(b.Total-a.Total) * float64(u.Cores)
	}
	var sum float64
	for name, t := range b.PerProc {
		var d float64
		if t >= a.PerProc[name] {
			d = float64(t-a.PerProc[name]) / clockTicks / secs
		}
		u.Groups[name] = d
		sum += d
	}
	u.Other = max(u.Busy-sum, 0)
	return u
}

// PerItem is the CPU time, in seconds, the named groups used together
// between a and b for each of items units of work done in between (user
// and system time, from /proc/<pid>/stat). It is NaN when there was no
// item, or a group is missing from a sample or its time went back (a
// process restarted in between: its time before the restart is lost), so
// that a broken measurement gives no figure rather than a wrong one.
func PerItem(a, b CPUSample, items float64, names ...string) float64 {
	if items <= 0 || len(names) == 0 {
		return math.NaN()
	}
	var ticks uint64
	for _, n := range names {
		t0, ok0 := a.PerProc[n]
		t1, ok1 := b.PerProc[n]
		if !ok0 || !ok1 || t1 < t0 {
			return math.NaN()
		}
		ticks += t1 - t0
	}
	return float64(ticks) / clockTicks / items
}

// Names returns the group names ordered by use, largest first.
func (u CPUUse) Names() []string {
	out := make([]string, 0, len(u.Groups))
	for k := range u.Groups {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return u.Groups[out[i]] > u.Groups[out[j]] })
	return out
}

func numCPU() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 1
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return max(n, 1)
}

func machineTicks() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text()) // cpu user nice system idle iowait irq softirq steal ...
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// procTicks returns utime+stime and cutime+cstime of pid (0 if it is gone).
func procTicks(pid int) (self, children uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0
	}
	num := func(k int) uint64 { n, _ := strconv.ParseUint(f[k], 10, 64); return n }
	return num(11) + num(12), num(13) + num(14)
}

// Children lists the direct children of pid.
func Children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				out = append(out, p)
			}
		}
	}
	return out
}

// ListenerPid returns the process listening on TCP port (0 if none is
// found): how the benchmark finds the Kafka, PostgreSQL and Consul
// processes it accounts for, whoever started them.
func ListenerPid(port int) int {
	inodes := map[string]bool{}
	for _, tbl := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(tbl)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 10 || f[3] != "0A" { // LISTEN
				continue
			}
			c := strings.LastIndexByte(f[1], ':')
			p, err := strconv.ParseUint(f[1][c+1:], 16, 32)
			if err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				return pid
			}
		}
	}
	return 0
}

// RSS returns the resident set size of pid in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
