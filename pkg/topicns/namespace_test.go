package topicns

import (
	"strings"
	"testing"
)

const hb = "onex.evt.platform.node-heartbeat.v1"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Namespace
		err  bool
	}{
		{raw: "", want: None},
		{raw: "   ", want: None},
		{raw: "bench", want: "bench"},
		{raw: " bench-20260307 ", want: "bench-20260307"},
		{raw: "e2e1.", want: "e2e1"}, // one trailing dot is normalised away, as in Python
		{raw: "a", want: "a"},
		{raw: "a" + strings.Repeat("b", 31), want: Namespace("a" + strings.Repeat("b", 31))},
		{raw: "a" + strings.Repeat("b", 32), err: true},
		{raw: "Bench", err: true},
		{raw: "1bench", err: true},
		{raw: "-bench", err: true},
		{raw: "be.nch", err: true},
		{raw: "bench..", err: true},
		{raw: ".", err: true},
		{raw: "be_nch", err: true},
		{raw: "bench/1", err: true},
	} {
		got, err := Parse(tc.raw)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q, error %v", tc.raw, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), EnvVar) {
			t.Errorf("Parse(%q) error %q does not name %s", tc.raw, err, EnvVar)
		}
	}
}

func TestMapping(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ns        Namespace
		in        string
		physical  string
		canonical string
	}{
		{name: "none is the identity", ns: None, in: hb, physical: hb, canonical: hb},
		{name: "prefixed", ns: "bench", in: hb, physical: "bench." + hb, canonical: hb},
		{name: "apply is idempotent", ns: "bench", in: "bench." + hb, physical: "bench." + hb, canonical: hb},
		{name: "dlq topics too", ns: "e2e", in: "onex.dlq.omnibase-infra.events.v1", physical: "e2e.onex.dlq.omnibase-infra.events.v1", canonical: "onex.dlq.omnibase-infra.events.v1"},
		{name: "prefix ends at the dot", ns: "pr1", in: "pr10." + hb, physical: "pr1.pr10." + hb, canonical: "pr10." + hb},
		{name: "empty name stays empty", ns: "bench", in: "", physical: "", canonical: ""},
		{name: "strip is tolerant", ns: "bench", in: "other." + hb, physical: "bench.other." + hb, canonical: "other." + hb},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ns.Physical(tc.in); got != tc.physical {
				t.Errorf("Physical(%q) = %q, want %q", tc.in, got, tc.physical)
			}
			if got := tc.ns.Canonical(tc.in); got != tc.canonical {
				t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.canonical)
			}
			if got := tc.ns.Canonical(tc.ns.Physical(tc.in)); tc.in != "" && !strings.HasPrefix(tc.in, tc.ns.Prefix()) && got != tc.in {
				t.Errorf("Canonical(Physical(%q)) = %q, want the name back", tc.in, got)
			}
		})
	}
}

func TestPhysicalAll(t *testing.T) {
	in := []string{hb, "onex.cmd.platform.reducer-input.v1"}
	got := Namespace("ns").PhysicalAll(in)
	if got[0] != "ns."+hb || got[1] != "ns.onex.cmd.platform.reducer-input.v1" || in[0] != hb {
		t.Fatalf("PhysicalAll = %v (input %v)", got, in)
	}
}

func TestStrip(t *testing.T) {
	for in, want := range map[string]string{
		hb:                     hb,
		"bench." + hb:          hb,
		"onex." + hb:           hb, // the token "onex" is a valid namespace
		"Bench." + hb:          "Bench." + hb,
		"a.b.onex.evt.x.y.v1":  "a.b.onex.evt.x.y.v1",
		"ns.onex.evt.short":    "ns.onex.evt.short",
		"some-topic":           "some-topic",
		"":                     "",
		"ns.onex.dlq.a.b.v1":   "onex.dlq.a.b.v1",
		"ns-1.onex.cmd.a.b.v1": "onex.cmd.a.b.v1",
	} {
		if got := Strip(in); got != want {
			t.Errorf("Strip(%q) = %q, want %q", in, got, want)
		}
	}
}

// validToken is tokenRE without the regexp.
func TestValidTokenMatchesTheRegexp(t *testing.T) {
	for _, s := range []string{"", "a", "a-1", "1a", "-a", "A", "ab.c", "a_b", strings.Repeat("a", 32), strings.Repeat("a", 33), "é"} {
		if got, want := validToken(s), tokenRE.MatchString(s); got != want {
			t.Errorf("validToken(%q) = %v, the regexp says %v", s, got, want)
		}
	}
}
