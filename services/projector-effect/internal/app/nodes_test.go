package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/registration"
)

// The node count is read at most once per ttl, exported for every state,
// and a failed count exports no series and is counted.
func TestNodeCounts(t *testing.T) {
	calls := 0
	var fail error
	n := newNodeCounts(func(context.Context) (map[string]int64, error) {
		calls++
		if fail != nil {
			return nil, fail
		}
		return map[string]int64{"active": 3, "awaiting_ack": 1}, nil
	}, time.Hour, time.Second)
	if got := testutil.CollectAndCount(n, "onex_projector_nodes"); got != len(registration.States) {
		t.Fatalf("%d series, want one per state", got)
	}
	want := `
# HELP onex_projector_nodes Registry rows per registration state in PostgreSQL (every state, 0 when none), counted when scraped and cached briefly.
# TYPE onex_projector_nodes gauge
onex_projector_nodes{state="accepted"} 0
onex_projector_nodes{state="ack_received"} 0
onex_projector_nodes{state="ack_timed_out"} 0
onex_projector_nodes{state="active"} 3
onex_projector_nodes{state="awaiting_ack"} 1
onex_projector_nodes{state="liveness_expired"} 0
onex_projector_nodes{state="pending_registration"} 0
onex_projector_nodes{state="rejected"} 0
`
	if err := testutil.CollectAndCompare(n, strings.NewReader(want), "onex_projector_nodes"); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("%d counts for scrapes within the ttl, want 1", calls)
	}
	n.ttl = 0
	fail = errors.New("database down")
	if got := testutil.CollectAndCount(n, "onex_projector_nodes"); got != 0 {
		t.Fatalf("%d series after a failed count, want none", got)
	}
	if f := testutil.ToFloat64(n.failures); f != 1 {
		t.Fatalf("failures = %v, want 1", f)
	}
}
