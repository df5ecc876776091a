package nodescmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/projector-effect/admin"
)

// runQuiet runs `nodes` as onexctl's root does: no usage text or error
// printed by cobra on a failure (the command prints its own).
func runQuiet(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := NodesCommand()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// Bad flags and arguments of deregister and evict are refused with one
// line naming the flag, before anything connects: the brokers given do not
// exist, so an attempt to publish would fail differently.
func TestOperatorFlagsRefused(t *testing.T) {
	node := uuid.NewString()
	nowhere := []string{"--brokers", "127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"deregister without id", []string{"deregister"}, "accepts 1 arg"},
		{"deregister two ids", []string{"deregister", node, node}, "accepts 1 arg"},
		{"deregister not a uuid", []string{"deregister", "node-7"}, `NODE_ID "node-7" is not a node UUID`},
		{"deregister nil uuid", []string{"deregister", uuid.Nil.String()}, "is not a node UUID"},
		{"reason too long", []string{"deregister", node, "--reason", strings.Repeat("r", operator.MaxReason+1)}, "--reason: at most 1024 characters"},
		{"blank --as", []string{"deregister", node, "--as", "  "}, "--as: not blank"},
		{"long --as", []string{"deregister", node, "--as", strings.Repeat("a", operator.MaxRequestedBy+1)}, "--as: not blank, at most 256"},
		{"bad topic", []string{"deregister", node, "--topic", "admin"}, "--topic"},
		{"bad output", []string{"deregister", node, "-o", "yaml"}, "-o must be text or json"},
		{"evict without state", []string{"evict", "--older-than", "1h"}, "--state is required: one of accepted, awaiting_ack, ack_received, active"},
		{"evict unknown state", []string{"evict", "--state", "sleeping", "--older-than", "1h"}, `--state "sleeping" is not a registration state`},
		{"evict terminal state", []string{"evict", "--state", "liveness_expired", "--older-than", "1h"}, "--state liveness_expired cannot be evicted"},
		{"evict rejected", []string{"evict", "--state", "REJECTED", "--older-than", "1h"}, "--state rejected cannot be evicted"},
		{"evict pending", []string{"evict", "--state", "pending_registration", "--older-than", "1h"}, "cannot be evicted"},
		{"evict without age", []string{"evict", "--state", "active"}, "--older-than is required"},
		{"evict bad age", []string{"evict", "--state", "active", "--older-than", "a week"}, `--older-than "a week" is not a duration`},
		{"evict negative age", []string{"evict", "--state", "active", "--older-than", "-5m"}, "must be at least 0"},
		{"evict fractional age", []string{"evict", "--state", "active", "--older-than", "1.5s"}, "whole seconds only"},
		{"evict with an argument", []string{"evict", node, "--state", "active", "--older-than", "1h"}, "unknown command"},
		{"no brokers", []string{"deregister", node, "--brokers", ""}, "no Kafka brokers"},
	}
	for _, tt := range tests {
		args := tt.args
		if !strings.Contains(strings.Join(args, " "), "--brokers") {
			args = append(args, nowhere...)
		}
		out, _, err := runQuiet(t, args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tt.name, err, tt.want)
		}
		if out != "" {
			t.Errorf("%s: printed %q", tt.name, out)
		}
	}
}

// Valid flags make the command pkg/operator validates: the state in the
// projection's spelling whatever the case or prefix, the age in seconds,
// who asks defaulting to $USER@hostname.
func TestOperatorFlagsBuild(t *testing.T) {
	t.Setenv("USER", "ops user")
	host, _ := os.Hostname()
	wantBy := "ops_user@" + sanitizeIdentity(host, "unknown-host")
	for _, tt := range []struct {
		state, age string
		as         string
		wantState  string
		wantSecs   int64
		wantBy     string
	}{
		{"active", "24h", "", "active", 86400, wantBy},
		{"ACTIVE", "90m", "alice", "active", 5400, "alice"},
		{"REGISTRATION_STATE_AWAITING_ACK", "0s", "", "awaiting_ack", 0, wantBy},
		{" accepted ", "1h30m15s", " bob@ops ", "accepted", 5415, "bob@ops"},
		{"Ack_Received", "45s", "", "ack_received", 45, wantBy},
	} {
		p := &publishing{topic: "onex.cmd.platform.registration-admin.v1", output: "text", as: tt.as, reason: " drain rack 4 "}
		c, err := buildEvict(tt.state, tt.age, p)
		if err != nil {
			t.Errorf("%s %s: %v", tt.state, tt.age, err)
			continue
		}
		if c.Command != operator.Evict || *c.State != tt.wantState || *c.OlderThanSeconds != tt.wantSecs || c.RequestedBy != tt.wantBy ||
			c.Reason != "drain rack 4" || c.NodeID != nil || c.CommandID == uuid.Nil {
			t.Errorf("%s %s: %+v", tt.state, tt.age, c)
		}
	}
	node := uuid.New()
	c, err := buildDeregister(" "+node.String()+" ", &publishing{topic: "onex.cmd.platform.registration-admin.v1", output: "json"})
	if err != nil || *c.NodeID != node || c.State != nil || c.RequestedBy != wantBy {
		t.Errorf("deregister: %+v %v", c, err)
	}
}

func TestSanitizeIdentity(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice.Smith-2_x", "Alice.Smith-2_x"},
		{"ops user", "ops_user"},
		{"bob;rm -rf /", "bob_rm_-rf__"},
		{"jürgen", "j_rgen"},
		{"", "def"},
		{"  ", "def"},
		{"$$$", "def"},
		{"\x1b[31mred", "__31mred"},
		{strings.Repeat("a", 100), strings.Repeat("a", 64)},
	} {
		if got := sanitizeIdentity(tt.in, "def"); got != tt.want {
			t.Errorf("sanitizeIdentity(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// `onexctl nodes deregister` and `nodes evict` publish on the real broker
// records that operator.Decode accepts, keyed by node id and "evict", and
// print the command and correlation ids the records carry.
func TestOperatorCommandsPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Kafka broker; skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.cmd.onexctl" + testkit.Unique() + ".registration-admin.v1"
	testkit.CreateTopic(t, brokers, topic, 6, nil)
	common := []string{"--brokers", strings.Join(brokers, ","), "--topic", topic}
	node := uuid.New()
	ctx := context.Background()

	out, stderr, err := run(t, ctx, append([]string{"deregister", node.String(), "--reason", "host retired", "--as", "carol"}, common...)...)
	if err != nil {
		t.Fatalf("deregister: %v %s", err, stderr)
	}
	if !strings.HasPrefix(out, "deregister published: command_id=") || !strings.Contains(out, "topic="+topic) {
		t.Errorf("deregister output %q", out)
	}
	printed := map[string]string{} // command id -> correlation id
	f := strings.Fields(out)
	printed[strings.TrimPrefix(f[2], "command_id=")] = strings.TrimPrefix(f[3], "correlation_id=")

	out, stderr, err = run(t, ctx, append([]string{"evict", "--state", "ACTIVE", "--older-than", "2h", "-o", "json"}, common...)...)
	if err != nil {
		t.Fatalf("evict: %v %s", err, stderr)
	}
	var js published
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Command != operator.Evict || js.Topic != topic {
		t.Fatalf("evict output %q: %v", out, err)
	}
	printed[js.CommandID] = js.CorrelationID

	recs := testkit.ReadAll(t, brokers, topic, 2, 30*time.Second, false)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, m := range recs {
		env, c, err := operator.Decode(m.Value)
		if err != nil {
			t.Fatalf("record %s: %v", m.Value, err)
		}
		if corr, ok := printed[c.CommandID.String()]; !ok || env.CorrelationID == nil || env.CorrelationID.String() != corr || env.EnvelopeID != c.CommandID {
			t.Errorf("%s: record ids (command %s, correlation %v) not the printed ones %v", c.Command, c.CommandID, env.CorrelationID, printed)
		}
		var corrHeader string
		for _, h := range m.Headers {
			if string(h.Key) == envelope.HeaderKeyCorrelationID {
				corrHeader = string(h.Value)
			}
		}
		if env.CorrelationID == nil || corrHeader != env.CorrelationID.String() {
			t.Errorf("%s: correlation header %q", c.Command, corrHeader)
		}
		switch c.Command {
		case operator.Deregister:
			if string(m.Key) != node.String() || *c.NodeID != node || c.Reason != "host retired" || c.RequestedBy != "carol" {
				t.Errorf("deregister key %q: %+v", m.Key, c)
			}
		case operator.Evict:
			if string(m.Key) != admin.EvictKey || *c.State != "active" || c.OlderThan() != 2*time.Hour || !strings.Contains(c.RequestedBy, "@") {
				t.Errorf("evict key %q: %+v", m.Key, c)
			}
		}
	}
}

// A broker that does not answer: exit code 1, one line saying nothing was
// published.
func TestOperatorCommandUnreachableBroker(t *testing.T) {
	out, stderr, err := runQuiet(t, "deregister", uuid.NewString(), "--brokers", "127.0.0.1:1", "--timeout", "2s")
	if err == nil || out != "" || !strings.Contains(stderr, "nothing was published") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("%v, stdout %q, stderr %q", err, out, stderr)
	}
}
