package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// query is a query record: payload in an envelope with correlation id corr
// (none when Nil).
func query(t *testing.T, corr uuid.UUID, payload string) []byte {
	t.Helper()
	var opts []envelope.Option
	if corr != uuid.Nil {
		opts = append(opts, envelope.WithCorrelationID(corr))
	}
	env, err := envelope.New(json.RawMessage(payload), opts...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// response decodes a response record, checking its topic and key.
func response(t *testing.T, pm *sarama.ProducerMessage) *registration.TopicCatalogResponse {
	t.Helper()
	v, err := pm.Value.Encode()
	if err != nil {
		t.Fatal(err)
	}
	e, err := envelope.Decode(v)
	if err != nil {
		t.Fatal(err)
	}
	r, err := envelope.DecodePayload(e, registration.DecodeTopicCatalogResponse)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := pm.Key.Encode(); pm.Topic != "responses" || string(k) != r.CorrelationID.String() {
		t.Errorf("response on %s keyed %q, want responses keyed by %s", pm.Topic, k, r.CorrelationID)
	}
	return r
}

// TestHandle: each query gets one response record, in order; an invalid
// one an empty response with invalid_query_payload and a content
// rejection (none when it has no correlation id to answer); a broken
// broker an empty response with internal_error, the query done.
func TestHandle(t *testing.T) {
	valid := func(corr uuid.UUID) []byte {
		return query(t, corr, `{"correlation_id": "`+uuid.NewString()+`", "client_id": "test", "include_inactive": true}`)
	}
	invalid := func(corr uuid.UUID) []byte {
		return query(t, corr, `{"correlation_id": "`+corr.String()+`", "include_inactive": true}`) // no client_id
	}
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	type answer struct {
		corr     uuid.UUID
		warnings []string
		topics   int // entries (the full catalog: 3)
	}
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka"}, "broker down", nil)
	tests := []struct {
		name     string
		values   [][]byte
		describe error
		answers  []answer
		rejected []int
	}{
		{"a query: the catalog", [][]byte{valid(a)}, nil, []answer{{a, []string{}, 3}}, nil},
		{"a batch: one response each, in order; the invalid one rejected",
			[][]byte{valid(a), invalid(b), valid(c)}, nil,
			[]answer{{a, []string{}, 3}, {b, []string{WarnInvalidQuery}, 0}, {c, []string{}, 3}}, []int{1}},
		{"not an envelope: nobody to answer, rejected", [][]byte{[]byte(`not json`), valid(a)}, nil,
			[]answer{{a, []string{}, 3}}, []int{0}},
		{"broker down: answered empty, done", [][]byte{valid(a)}, down, []answer{{a, []string{WarnInternalError}, 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Specs: specs, ResponseTopic: "responses", ChangedTopic: "changed", Refresh: 1 << 62, Source: "test",
				Describe: func(context.Context) ([]topics.TopicState, error) { return states, tt.describe }})
			var msgs []*bus.Message
			for i, v := range tt.values {
				msgs = append(msgs, &bus.Message{Topic: "queries", Offset: int64(i), Value: v})
			}
			out, err := s.Handle(context.Background(), msgs)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			var rejected []int
			for i, o := range out.Outcomes {
				if o.Verdict == bus.DeadLetter && infraerr.IsContent(o.Err) {
					rejected = append(rejected, i)
				} else if o.Verdict != bus.Done {
					t.Errorf("message %d: %s (%v)", i, o.Verdict, o.Err)
				}
			}
			if (out.Outcomes == nil) != (tt.rejected == nil) || !slices.Equal(rejected, tt.rejected) {
				t.Errorf("rejected %v (outcomes %v), want %v", rejected, out.Outcomes, tt.rejected)
			}
			if len(out.Records) != len(tt.answers) {
				t.Fatalf("%d responses, want %d", len(out.Records), len(tt.answers))
			}
			for i, w := range tt.answers {
				r := response(t, out.Records[i])
				if r.CorrelationID != w.corr || !slices.Equal(r.Warnings, w.warnings) || len(r.Topics) != w.topics {
					t.Errorf("response %d: correlation %s, warnings %v, %d topics; want %s, %v, %d", i, r.CorrelationID, r.Warnings,
						len(r.Topics), w.corr, w.warnings, w.topics)
				}
				if (w.topics > 0) != (r.CatalogVersion != 0) {
					t.Errorf("response %d: catalog_version %d", i, r.CatalogVersion)
				}
			}
		})
	}
}

// The change notices are the catalog's own: announce sends them through
// Config.Send.
func TestAnnounceSends(t *testing.T) {
	snd := &recorder{}
	s := New(Config{Specs: specs, ResponseTopic: "responses", ChangedTopic: "changed", Source: "test", Send: snd,
		Describe: func(context.Context) ([]topics.TopicState, error) { return states, nil }})
	c, err := s.Compute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.announce(context.Background(), c, c.Present, []string{}, "resync"); err != nil {
		t.Fatal(err)
	}
	if len(snd.sent) != 1 || snd.sent[0].Topic != "changed" {
		t.Fatalf("sent %v", snd.sent)
	}
	snd.fail = errors.New("broker down")
	if err := s.announce(context.Background(), c, c.Present, []string{}, "resync"); err == nil {
		t.Fatal("a failed send announced")
	}
}

type recorder struct {
	sent []*sarama.ProducerMessage
	fail error
}

func (r *recorder) Send(_ context.Context, msgs ...*sarama.ProducerMessage) error {
	if r.fail != nil {
		return r.fail
	}
	r.sent = append(r.sent, msgs...)
	return nil
}
