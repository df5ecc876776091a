package app

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/liveness"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

// A batch in which a node misses its accepted event: a tick and a heartbeat
// after their resend times publish it again (bare, the attempt's correlation
// id and deadline), the ack makes the node ACTIVE, and a later tick sends
// nothing more. The batch counts the copies by trigger for
// onex_reducer_accepted_resent_total. Once with the current package's
// records (golden), once with the older fixtures.
func TestDecideBatchResendsAccepted(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) { decideBatchResendsAccepted(t, set) })
	}
}

func decideBatchResendsAccepted(t *testing.T, set testkit.WireSet) {
	svc := &service.Service{
		Name:     "reducer",
		Config:   &config.Config{Service: "reducer", KafkaBootstrap: "127.0.0.1:1", Environment: "test"},
		Log:      observability.NewLogger(io.Discard, "reducer", "info"),
		Registry: prometheus.NewRegistry(),
		Health:   observability.NewHealth(condTopics, condFSM, condAssigned),
	}
	r, err := New(svc, Settings{Params: decide.DefaultParams(), BatchSize: 500, Group: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 14, 5, 7, 500000000, time.UTC)
	in := func(topic string, at time.Time, value []byte) *sarama.ConsumerMessage {
		b, _ := json.Marshal(pipeline.ReducerInput{Topic: topic, ReceivedAt: pipeline.T(at), Value: json.RawMessage(value)})
		return &sarama.ConsumerMessage{Topic: topics.ReducerInput, Key: []byte(fixtureNode), Value: b}
	}
	tick := func(at time.Time) *sarama.ConsumerMessage {
		now := at.Format(time.RFC3339Nano)
		return in(topics.RuntimeTick, at, []byte(fmt.Sprintf(`{"now":%q,"tick_id":"5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b","sequence_number":1,`+
			`"scheduled_at":%q,"correlation_id":"9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f","scheduler_id":"runtime-scheduler-default","tick_interval_ms":1000}`, now, now)))
	}
	batch := []*sarama.ConsumerMessage{
		in(topics.NodeIntrospection, t0, set.Read(t, "introspection-effect.json")),
		tick(t0.Add(time.Second)),     // before the first resend time (t0+2 s)
		tick(t0.Add(3 * time.Second)), // after it: resent
		in(topics.NodeHeartbeat, t0.Add(4*time.Second), set.Read(t, "heartbeat.json")),                      // before the next (t0+6 s)
		in(topics.NodeHeartbeat, t0.Add(7*time.Second), []byte(heartbeatAt(t, set, t0.Add(7*time.Second)))), // after it: resent
		in(topics.NodeRegistrationAcked, t0.Add(8*time.Second), set.Read(t, "ack.json")),
		tick(t0.Add(20 * time.Second)), // acked: nothing
	}
	h := &handler{r: r, partitions: 6}
	ps := &partitionState{part: state.NewPartition(0), live: liveness.NewTracker(0, 0)}
	proc := processor.New(r.settings.Params, ps.part)
	out, err := h.decideBatch(proc, ps, busMessages(batch))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.resent) != 2 || out.resent[decide.TriggerTick] != 1 || out.resent[decide.TriggerHeartbeat] != 1 {
		t.Errorf("resends counted %v, want one by a tick, one by a heartbeat", out.resent)
	}
	var accepted []*registration.RegistrationAccepted
	for _, m := range out.msgs {
		if m.Topic != topics.NodeRegistrationAccepted {
			continue
		}
		v, _ := m.Value.Encode()
		a, err := registration.DecodeRegistrationAccepted(v)
		if err != nil {
			t.Fatalf("accepted record is not the bare model: %v: %s", err, v)
		}
		if k, _ := m.Key.Encode(); string(k) != fixtureNode {
			t.Errorf("accepted keyed %q", k)
		}
		accepted = append(accepted, a)
	}
	if len(accepted) != 3 {
		t.Fatalf("%d accepted events, want the original and two copies", len(accepted))
	}
	for i, a := range accepted {
		if a.CorrelationID != accepted[0].CorrelationID || !a.AckDeadline.Equal(accepted[0].AckDeadline.Time) {
			t.Errorf("copy %d: correlation %s deadline %s, want the attempt's %s %s", i, a.CorrelationID, a.AckDeadline, accepted[0].CorrelationID, accepted[0].AckDeadline)
		}
	}
	if !accepted[1].EmittedAt.Equal(t0.Add(3*time.Second)) || !accepted[2].EmittedAt.Equal(t0.Add(7*time.Second)) {
		t.Errorf("copies emitted at %s and %s", accepted[1].EmittedAt, accepted[2].EmittedAt)
	}
	if st := proc.Partition.Get(accepted[0].NodeID); st == nil || st.State != decide.Active || st.NextResendAt != nil {
		t.Fatalf("node after the batch: %+v", st)
	}
}

// heartbeatAt is set's recorded heartbeat with its payload timestamp an
// hour after at, so it is newer than the recorded one.
func heartbeatAt(t *testing.T, set testkit.WireSet, at time.Time) string {
	var v map[string]any
	if err := json.Unmarshal(set.Read(t, "heartbeat.json"), &v); err != nil {
		t.Fatal(err)
	}
	v["payload"].(map[string]any)["timestamp"] = at.Add(time.Hour).Format("2006-01-02T15:04:05.000000Z")
	b, _ := json.Marshal(v)
	return string(b)
}

// The resend parameters come from the contract (2 s, 8 s), the environment
// overrides them, 0 disables the resends, and a maximum below the initial
// interval is refused.
func TestLoadSettingsAcceptedResends(t *testing.T) {
	for _, c := range []struct {
		initial, max  string
		want, wantMax time.Duration
		wantErr       string
	}{
		{"", "", 2 * time.Second, 8 * time.Second, ""},
		{"0.5", "4", 500 * time.Millisecond, 4 * time.Second, ""},
		{"0", "", 0, 8 * time.Second, ""},
		{"0", "0", 0, 0, ""},
		{"10", "", 0, 0, "must be at least its initial interval"},
		{"-1", "", 0, 0, "non-negative"},
	} {
		t.Run(c.initial+"/"+c.max, func(t *testing.T) {
			t.Setenv("ONEX_ACCEPTED_RESEND_INITIAL_SECONDS", c.initial)
			t.Setenv("ONEX_ACCEPTED_RESEND_MAX_SECONDS", c.max)
			s, err := LoadSettings(&config.Config{Environment: "local"}, loadContract(t, testkit.ContractsDir(t)))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Params.AcceptedResendInitial != c.want || s.Params.AcceptedResendMax != c.wantMax {
				t.Errorf("resends %v/%v, want %v/%v", s.Params.AcceptedResendInitial, s.Params.AcceptedResendMax, c.want, c.wantMax)
			}
		})
	}
}
