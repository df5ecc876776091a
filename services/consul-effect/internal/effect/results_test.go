package effect

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// refusingAgent is an agent whose registrations fail.
type refusingAgent struct{ *slowAgent }

func (refusingAgent) Register(context.Context, *api.AgentServiceRegistration) error {
	return errors.New("connection refused")
}

// A consul intent routed untracked (pipeline.HeaderResults: the refresh
// register at a node's ack) gets no success result, only a failed one; a
// record without the header (the tracked register at introspection, or any
// record of an older orchestrator) is answered as before. Both in one batch
// and each record in a batch of its own.
func TestUntrackedIntentsGetFailedResultsOnly(t *testing.T) {
	tests := []struct {
		name     string
		headers  []bool // per record: routed untracked
		refuse   bool
		want     []bool // per result record: success
		notSent  float64
		register int // registrations that reached the agent
	}{
		{"refresh applied", []bool{true}, false, nil, 1, 1},
		{"register without the header applied", []bool{false}, false, []bool{true}, 0, 1},
		{"mixed batch", []bool{true, false, true}, false, []bool{true}, 2, 3},
		{"refresh refused", []bool{true}, true, []bool{false}, 0, 0},
		{"register without the header refused", []bool{false}, true, []bool{false}, 0, 0},
	}
	for _, path := range []string{"batch", "alone"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				slow := &slowAgent{services: map[string]*api.AgentService{}, order: map[string][]string{}}
				var agent AgentAPI = slow
				if tt.refuse {
					agent = refusingAgent{slow}
				}
				reg := prometheus.NewRegistry()
				h := NewHandler(NewRegistrar(NewAgentStore(agent), "test", nil), testResults, reg, 4)
				var msgs []*bus.Message
				for i, untracked := range tt.headers {
					m := registerMsg(t, uuid.New(), int64(i+1), "onex-effect")
					if untracked {
						hd := pipeline.FailuresOnlyHeader()
						m.Headers = append(m.Headers, &hd)
					}
					msgs = append(msgs, m)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				batches := [][]*bus.Message{msgs}
				if path == "alone" {
					batches = nil
					for _, m := range msgs {
						batches = append(batches, []*bus.Message{m})
					}
				}
				var got []bool
				for _, b := range batches {
					out, err := h.Handle(ctx, b)
					if err != nil {
						t.Fatal(err)
					}
					if out.Outcomes != nil {
						t.Fatalf("outcomes %+v, want every record done", out.Outcomes)
					}
					for _, r := range sent(t, out.Records) {
						got = append(got, r.Success)
					}
				}
				if len(got) != len(tt.want) {
					t.Fatalf("results (success) %v, want %v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("results (success) %v, want %v", got, tt.want)
					}
				}
				if n := testutil.ToFloat64(h.notSent); n != tt.notSent {
					t.Errorf("results not sent %v, want %v", n, tt.notSent)
				}
				if registered := slow.registrations(); registered != tt.register {
					t.Errorf("%d registrations reached the agent, want %d", registered, tt.register)
				}
				if n := testutil.CollectAndCount(reg, "onex_consul_results_not_sent_total"); n != 1 {
					t.Errorf("onex_consul_results_not_sent_total: %d series registered, want 1", n)
				}
			})
		}
	}
}

// A result is written in protobuf with its content type, keyed by node id,
// with the envelope id derived from the intent and its delivery attempt as
// message_id; a result protobuf refuses (an agent error text that is no
// valid UTF-8) falls back to the JSON envelope, which the orchestrator
// reads too.
func TestResultRecord(t *testing.T) {
	code := "CONSUL_CONNECTION_ERROR"
	for _, tc := range []struct {
		name, text, wantCT string
		wire               pipeline.Wire
	}{
		{"protobuf", "consul operation failed: connection refused", pipeline.EffectResultContentType, pipeline.WireProtobuf},
		{"not UTF-8", "consul operation failed: \xff", pipeline.ContentTypeJSON, pipeline.WireProtobuf},
		{"ONEX_INTERNAL_WIRE=json", "consul operation failed: connection refused", pipeline.ContentTypeJSON, pipeline.WireJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pipeline.SetWrites(tc.wire)
			t.Cleanup(func() { pipeline.SetWrites(pipeline.WireProtobuf) })
			text := tc.text
			res := &pipeline.EffectResult{IntentID: uuid.New(), IntentType: pipeline.ConsulRegister, Backend: "consul", NodeID: uuid.New(),
				CorrelationID: uuid.New(), RegistrationAttemptID: uuid.New(), Sequence: 2, Attempt: 1, Retriable: true, Error: &text,
				ErrorCode: &code, DurationMS: 0.75, BackendID: "agent", Completed: pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))}
			m, err := testResults.Record(res)
			if err != nil {
				t.Fatal(err)
			}
			hs := recordHeaders(m)
			if ct := pipeline.ContentType(hs); ct != tc.wantCT {
				t.Fatalf("content type %q, want %q", ct, tc.wantCT)
			}
			if key, _ := m.Key.Encode(); m.Topic != testResults.Topic || string(key) != res.NodeID.String() {
				t.Fatalf("topic %s key %s", m.Topic, key)
			}
			v, _ := m.Value.Encode()
			rec, err := pipeline.DecodeEffectResultRecord(hs, v)
			if err != nil {
				t.Fatal(err)
			}
			h := envelope.HeadersFromRecords(hs)
			id := uuid.NewSHA1(res.IntentID, fmt.Appendf(nil, "effect-result:%s:%d", backend.Name, res.Attempt))
			if rec.EnvelopeID != id || h.MessageID != id || h.CorrelationID != res.CorrelationID || !rec.CreatedAt.Equal(h.Timestamp) {
				t.Fatalf("envelope id %s (want %s), message_id %s, correlation %s", rec.EnvelopeID, id, h.MessageID, h.CorrelationID)
			}
			got := rec.Result
			if got.IntentID != res.IntentID || got.NodeID != res.NodeID || got.Attempt != 1 || got.Sequence != 2 || !got.Retriable ||
				got.ErrorCode == nil || *got.ErrorCode != code || got.Error == nil || got.BackendID != "agent" {
				t.Fatalf("decoded %+v, want %+v", got, res)
			}
		})
	}
}
