package load

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/node/sim"
)

func TestTemplateMatchesEncoder(t *testing.T) {
	plan := sim.Plan(sim.Options{Nodes: 12, Seed: "template-test"}, "")
	r := rand.New(rand.NewPCG(1, 2))
	for i, p := range plan {
		tpl, err := newTemplate(p.Identity, "benchenv", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, now := range []time.Time{
			time.Date(2026, 3, 2, 14, 5, 7, 413015000, time.UTC),
			time.Date(2026, 3, 2, 14, 5, 7, 0, time.UTC), // no fraction
			time.Now().UTC().Truncate(time.Microsecond),
		} {
			ids := randomIDs(r)
			next := 0
			enc := &node.Encoder{Source: "benchenv", Now: func() time.Time { return now },
				NewID: func() uuid.UUID { u := ids[next]; next++; return u }}
			want, err := enc.Heartbeat(&plan[i].Identity, refUptime, node.Load{})
			if err != nil {
				t.Fatal(err)
			}
			got := tpl.record(p.Identity.NodeID, now, ids)
			gv, _ := got.Value.Encode()
			gk, _ := got.Key.Encode()
			if got.Topic != want.Topic || !bytes.Equal(gk, want.Key) || !bytes.Equal(gv, want.Value) {
				t.Fatalf("node %d at %s:\n got %s %s\nwant %s %s", i, now, gk, gv, want.Key, want.Value)
			}
			if !sameHeaders(got.Headers, want.Headers) {
				t.Fatalf("node %d at %s: headers\n got %q\nwant %q", i, now, got.Headers, want.Headers)
			}
		}
	}
}

func sameHeaders(a, b []sarama.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func TestRandomIDsAreVersion4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[uuid.UUID]bool{}
	for i := 0; i < 1000; i++ {
		for _, u := range randomIDs(r) {
			if u.Version() != 4 || u.Variant() != uuid.RFC4122 || seen[u] {
				t.Fatalf("%s: version %d variant %v repeated %v", u, u.Version(), u.Variant(), seen[u])
			}
			seen[u] = true
		}
	}
}

func BenchmarkTemplateHeartbeat(b *testing.B) {
	plan := sim.Plan(sim.Options{Nodes: 1, Seed: "bench"}, "")
	tpl, err := newTemplate(plan[0].Identity, "benchenv", "")
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < b.N; i++ {
		tpl.record(plan[0].Identity.NodeID, time.Now(), randomIDs(r))
	}
}
