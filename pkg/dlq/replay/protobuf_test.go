package replay

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// deadProto is the Entry of the DLQ record pkg/dlq writes for a record of
// the given content type consumed from the reducer input topic.
func deadProto(t testing.TB, contentType string, value []byte, offset int64) *Entry {
	t.Helper()
	orig := &sarama.ConsumerMessage{Topic: topics.ReducerInput, Partition: 2, Offset: 41, Key: []byte("node-7"), Value: value,
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(contentType)}}}
	pm, err := dlq.Build(orig, dlq.Failure{Err: connErr, CorrelationID: corr}, "test", t0)
	if err != nil {
		t.Fatal(err)
	}
	return entryOf(t, pm, offset)
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReplayProtobuf replays dead-lettered protobuf records: the replay
// carries the original bytes and content_type, whatever form the DLQ record
// holds them in.
func TestReplayProtobuf(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 12, 7, 10, 59, 58, 123456000, time.UTC))
	heartbeat := marshal(t, &fleetv1.ReducerInput{Topic: "node-heartbeat", ReceivedAt: at,
		Body: &fleetv1.ReducerInput_Heartbeat{Heartbeat: &fleetv1.Heartbeat{NodeId: "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b", Timestamp: at}}})
	recordValue := marshal(t, &fleetv1.ReducerInput{Topic: "node-introspection", ReceivedAt: at,
		Body: &fleetv1.ReducerInput_RecordValue{RecordValue: []byte(`{"envelope_id": "e", "payload": {}}`)}})
	unknown := pipeline.ProtobufContentType("onex.fleet.v9.Nope")
	tests := []struct {
		name, contentType string
		value             []byte
		encoding          string
	}{
		{"heartbeat body", pipeline.ReducerInputContentType, heartbeat, dlq.EncodingProtoJSON},
		{"record_value body", pipeline.ReducerInputContentType, recordValue, dlq.EncodingProtoJSON},
		{"unknown message type", unknown, heartbeat, dlq.EncodingBase64},
		{"corrupt bytes", pipeline.ReducerInputContentType, []byte{0xff, 0xfe, 0x00, 0x80}, dlq.EncodingBase64},
	}
	run := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := deadProto(t, tc.contentType, tc.value, 1042)
			if enc, _ := e.Header(dlq.HeaderValueEncoding); enc != tc.encoding {
				t.Fatalf("encoding %q, want %q", enc, tc.encoding)
			}
			if d := Decide(e, Filter{}, DefaultMaxReplayCount); d.Action != ActionReplay {
				t.Fatalf("decision %+v", d)
			}
			pm, err := ReplayMessage(e, run, t0)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := pm.Value.Encode()
			if !bytes.Equal(v, tc.value) {
				t.Errorf("replayed value\n %x\nwant\n %x", v, tc.value)
			}
			hs := headerList(pm)
			if last := hs[len(hs)-1]; last != [2]string{dlq.HeaderContentType, tc.contentType} || hs[len(hs)-2][0] != dlq.HeaderCorrelationID {
				t.Errorf("headers %v: want the spec's, then content_type %q", hs, tc.contentType)
			}
		})
	}
}

// A record that cannot be restored is never replayed as other bytes: the
// decision leaves it in the DLQ with the reason, and ReplayMessage refuses.
func TestReplayProtobufRefused(t *testing.T) {
	hb := marshal(t, &fleetv1.ReducerInput{Topic: "node-heartbeat", Body: &fleetv1.ReducerInput_Heartbeat{Heartbeat: &fleetv1.Heartbeat{NodeId: "n"}}})
	setHeader := func(e *Entry, k, v string) {
		for i := range e.Headers {
			if e.Headers[i].Key == k {
				e.Headers[i].Value = v
			}
		}
	}
	tests := []struct {
		name   string
		mangle func(e *Entry)
		action Action
		reason string
	}{
		// As a build that does not know the message sees it.
		{"unknown message type", func(e *Entry) {
			setHeader(e, dlq.HeaderOriginalContentType, pipeline.ProtobufContentType("onex.fleet.v9.Nope"))
		}, ActionSkip, "onex.fleet.v9.Nope"},
		{"unknown encoding", func(e *Entry) { setHeader(e, dlq.HeaderValueEncoding, "zstd") }, ActionSkip, `"zstd"`},
		{"protojson that does not parse", func(e *Entry) { e.Record.OriginalMessage.Value = `{"topic": 5}` }, ActionSkip, "in protojson"},
		{"cut to fit", func(e *Entry) {
			e.Headers = append(e.Headers, Header{dlq.HeaderValueTruncated, "2000000"})
			e.Record.OriginalMessage.Value = e.Record.OriginalMessage.Value[:10]
		}, ActionQuarantine, "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := deadProto(t, pipeline.ReducerInputContentType, hb, 7)
			tc.mangle(e)
			d := Decide(e, Filter{}, DefaultMaxReplayCount)
			if d.Action != tc.action || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("decision %+v, want %s with %q", d, tc.action, tc.reason)
			}
			if pm, err := ReplayMessage(e, uuid.Nil, t0); err == nil && tc.action == ActionSkip {
				t.Errorf("replayed as %v", pm.Value)
			}
		})
	}
}

// A quarantine record keeps the headers that say how original_payload holds
// a protobuf original, so its owner can restore it.
func TestQuarantineProtobuf(t *testing.T) {
	e := deadProto(t, pipeline.ReducerInputContentType, []byte{0xff}, 3)
	pm, err := QuarantineMessage(e, "reason", uuid.Nil, topics.DLQQuarantine, t0)
	if err != nil {
		t.Fatal(err)
	}
	hs := headerList(pm)
	want := [][2]string{{dlq.HeaderOriginalContentType, pipeline.ReducerInputContentType}, {dlq.HeaderValueEncoding, dlq.EncodingBase64}}
	if len(hs) != 5 || !equalHeaders(hs[3:], want) {
		t.Fatalf("headers %v, want the spec's then %v", hs, want)
	}
	v, _ := pm.Value.Encode()
	q, err := DecodeQuarantined(v)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dlq.Decode(q.OriginalPayload)
	if err != nil {
		t.Fatal(err)
	}
	b, ct, err := dlq.RestoreValue(rec.OriginalMessage.Value, func(k string) (string, bool) {
		for _, h := range hs {
			if h[0] == k {
				return h[1], true
			}
		}
		return "", false
	})
	if err != nil || !bytes.Equal(b, []byte{0xff}) || ct != pipeline.ReducerInputContentType {
		t.Fatalf("restored %x %q %v", b, ct, err)
	}
}
