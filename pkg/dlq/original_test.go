package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// headerOf returns the value of the header k of pm.
func headerOf(pm *sarama.ProducerMessage, k string) (string, bool) {
	for _, h := range pm.Headers {
		if string(h.Key) == k {
			return string(h.Value), true
		}
	}
	return "", false
}

// TestBuildProtobufRoundTrip builds the DLQ record of a consumed record and
// restores the original from it as the replay does: a protobuf original
// comes back byte for byte with its content_type, in the readable protojson
// form when that is lossless and as base64 otherwise; a JSON original is
// stored as before.
func TestBuildProtobufRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	received := timestamppb.New(time.Date(2026, 12, 7, 10, 59, 58, 123456000, time.UTC))
	heartbeat := mustMarshal(t, &fleetv1.ReducerInput{Topic: "node-heartbeat", ReceivedAt: received,
		Body: &fleetv1.ReducerInput_Heartbeat{Heartbeat: &fleetv1.Heartbeat{
			NodeId: "6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b", Timestamp: received, TimestampUtcOffsetSeconds: -18000,
			CorrelationId: "5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"}}})
	recordValue := mustMarshal(t, &fleetv1.ReducerInput{Topic: "node-introspection", ReceivedAt: received,
		Body: &fleetv1.ReducerInput_RecordValue{RecordValue: []byte(`{"envelope_id": "e", "payload": {"name": "caf` + "\u00e9\xff" + `"}}`)}})
	// A field this build does not know: protojson would drop it.
	unknownField := protowire.AppendVarint(protowire.AppendTag(append([]byte(nil), heartbeat...), 99, protowire.VarintType), 7)
	// Field 1 twice: proto keeps the last one, so re-encoding would differ.
	repeated := append(mustMarshal(t, &fleetv1.ReducerInput{Topic: "a"}), heartbeat...)
	corrupt := []byte{0x0a, 0xff, 0x01, 0xfe, 0x00}
	ri := pipeline.ReducerInputContentType

	tests := []struct {
		name        string
		contentType string // "" for no content_type header
		value       []byte
		encoding    string // "" for plain text
		stored      string // when set, original_message.value must be this
	}{
		{"heartbeat body", ri, heartbeat, EncodingProtoJSON,
			`{"topic":"node-heartbeat","received_at":"2026-12-07T10:59:58.123456Z","heartbeat":{"node_id":"6a1f3c2e-8b4d-4e5f-9a0b-1c2d3e4f5a6b",` +
				`"timestamp":"2026-12-07T10:59:58.123456Z","timestamp_utc_offset_seconds":-18000,"correlation_id":"5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"}}`},
		{"record_value body", ri, recordValue, EncodingProtoJSON, ""},
		{"IANA media type, parameters in another case", "application/protobuf; MessageType=onex.fleet.v1.ReducerInput", heartbeat, EncodingProtoJSON, ""},
		{"empty message", ri, []byte{}, EncodingProtoJSON, "{}"},
		{"unknown message type", pipeline.ProtobufContentType("onex.fleet.v9.Nope"), heartbeat, EncodingBase64, base64.StdEncoding.EncodeToString(heartbeat)},
		{"no message type", pipeline.ContentTypeProtobuf, heartbeat, EncodingBase64, ""},
		{"corrupt bytes", ri, corrupt, EncodingBase64, base64.StdEncoding.EncodeToString(corrupt)},
		{"another message's bytes", pipeline.ProtobufContentType("onex.fleet.v1.LivenessCheckpoint"), recordValue, EncodingBase64, ""},
		{"unknown field", ri, unknownField, EncodingBase64, ""},
		{"not in canonical form", ri, repeated, EncodingBase64, ""},
		{"JSON", pipeline.ContentTypeJSON, []byte(`{"x": "\u00e9"}`), "", `{"x": "\u00e9"}`},
		{"no content type", "", []byte(`{"x": 1}`), "", `{"x": 1}`},
		{"unparsable content type", "application/x-protobuf; ;", []byte("abc"), "", "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := &sarama.ConsumerMessage{Topic: topics.ReducerInput, Key: []byte("k"), Value: tc.value, Offset: 3}
			if tc.contentType != "" {
				msg.Headers = []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(tc.contentType)}}
			}
			pm, err := Build(msg, Failure{Err: errors.New("bad input")}, "test", now)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := pm.Value.Encode()
			if ct, _ := headerOf(pm, HeaderContentType); ct != "application/json" || !json.Valid(body) {
				t.Fatalf("DLQ record %s is not JSON text (content_type %q)", body, ct)
			}
			rec := bodyOf(t, pm)
			if tc.stored != "" && rec.OriginalMessage.Value != tc.stored {
				t.Errorf("stored value\n got %s\nwant %s", rec.OriginalMessage.Value, tc.stored)
			}
			enc, hasEnc := headerOf(pm, HeaderValueEncoding)
			ct, hasCT := headerOf(pm, HeaderOriginalContentType)
			if enc != tc.encoding || hasEnc != (tc.encoding != "") || hasCT != hasEnc || (hasCT && ct != tc.contentType) {
				t.Fatalf("encoding %q (%v), original content type %q (%v); want %q, %q", enc, hasEnc, ct, hasCT, tc.encoding, tc.contentType)
			}
			if enc == EncodingProtoJSON && !json.Valid([]byte(rec.OriginalMessage.Value)) {
				t.Errorf("protojson %q is not JSON", rec.OriginalMessage.Value)
			}
			got, gotCT, err := RestoreValue(rec.OriginalMessage.Value, func(k string) (string, bool) { return headerOf(pm, k) })
			if err != nil {
				t.Fatal(err)
			}
			if tc.encoding == "" {
				// The text path keeps what it always kept: the value as
				// UTF-8 text, no content type to restore.
				if string(got) != utf8Replace(tc.value) || gotCT != "" {
					t.Errorf("restored %q (%q)", got, gotCT)
				}
				return
			}
			if !bytes.Equal(got, tc.value) || gotCT != tc.contentType {
				t.Errorf("restored\n %x (%q)\nwant\n %x (%q)", got, gotCT, tc.value, tc.contentType)
			}
		})
	}
}

func TestRestoreValueRefuses(t *testing.T) {
	ri := pipeline.ReducerInputContentType
	tests := []struct {
		name    string
		stored  string
		headers map[string]string
		want    string
		unknown bool
	}{
		{"unknown encoding", "abc", map[string]string{HeaderValueEncoding: "base32", HeaderOriginalContentType: ri}, `unknown original value encoding "base32"`, false},
		{"bad base64", "not base64!", map[string]string{HeaderValueEncoding: EncodingBase64, HeaderOriginalContentType: ri}, "not base64", false},
		{"protojson of an unknown message", `{"topic":"x"}`, map[string]string{HeaderValueEncoding: EncodingProtoJSON,
			HeaderOriginalContentType: pipeline.ProtobufContentType("onex.fleet.v9.Nope")}, "onex.fleet.v9.Nope", true},
		{"protojson without a content type", `{"topic":"x"}`, map[string]string{HeaderValueEncoding: EncodingProtoJSON}, "without a protobuf message type", false},
		{"protojson with a JSON content type", `{"topic":"x"}`, map[string]string{HeaderValueEncoding: EncodingProtoJSON, HeaderOriginalContentType: "application/json"},
			"without a protobuf message type", false},
		{"protojson that is not the message", `{"topic":"x","nope":1}`, map[string]string{HeaderValueEncoding: EncodingProtoJSON, HeaderOriginalContentType: ri},
			"not a onex.fleet.v1.ReducerInput in protojson", false},
		{"cut protojson", `{"topic":"x","recei`, map[string]string{HeaderValueEncoding: EncodingProtoJSON, HeaderOriginalContentType: ri},
			"not a onex.fleet.v1.ReducerInput in protojson", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, ct, err := RestoreValue(tc.stored, func(k string) (string, bool) { v, ok := tc.headers[k]; return v, ok })
			if err == nil || !strings.Contains(err.Error(), tc.want) || b != nil || ct != "" {
				t.Fatalf("got %q %q %v, want an error with %q", b, ct, err, tc.want)
			}
			if errors.Is(err, ErrUnknownMessageType) != tc.unknown {
				t.Errorf("errors.Is(%v, ErrUnknownMessageType) = %v", err, !tc.unknown)
			}
		})
	}
}

// A protobuf original too large for the DLQ is cut like any other, and
// says so: neither form restores from a prefix.
func TestBuildTruncatesProtobuf(t *testing.T) {
	big := mustMarshal(t, &fleetv1.ReducerInput{Topic: "node-introspection",
		Body: &fleetv1.ReducerInput_RecordValue{RecordValue: bytes.Repeat([]byte("v"), 900_000)}})
	msg := &sarama.ConsumerMessage{Topic: topics.ReducerInput, Value: big,
		Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.ReducerInputContentType)}}}
	pm, err := Build(msg, Failure{Err: errors.New("bad input")}, "test", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := pm.Value.Encode(); len(body) > MaxValueBytes {
		t.Fatalf("record value is %d bytes, over %d", len(body), MaxValueBytes)
	}
	if enc, _ := headerOf(pm, HeaderValueEncoding); enc != EncodingProtoJSON {
		t.Errorf("encoding %q", enc)
	}
	if n, ok := headerOf(pm, HeaderValueTruncated); !ok || n != strconv.Itoa(len(big)) {
		t.Errorf("truncated header %q %v", n, ok)
	}
	rec := bodyOf(t, pm)
	if _, _, err := RestoreValue(rec.OriginalMessage.Value, func(k string) (string, bool) { return headerOf(pm, k) }); err == nil {
		t.Error("a cut protojson value was restored")
	}
}

// FuzzProtobufOriginal dead-letters arbitrary bytes labelled as a reducer
// input (or as an unknown message) and checks that the DLQ record is JSON
// text and that the replay's restore gives back exactly those bytes and
// that content type, whichever form the record took.
func FuzzProtobufOriginal(f *testing.F) {
	f.Add(mustMarshal(f, &fleetv1.ReducerInput{Topic: "node-heartbeat",
		Body: &fleetv1.ReducerInput_Heartbeat{Heartbeat: &fleetv1.Heartbeat{NodeId: "n", TimestampUtcOffsetSeconds: 3600}}}), true)
	f.Add(mustMarshal(f, &fleetv1.ReducerInput{Topic: "t", Body: &fleetv1.ReducerInput_RecordValue{RecordValue: []byte("\x00\xff")}}), true)
	f.Add([]byte{0x0a, 0x02, 0xc3, 0x28}, true)
	f.Add([]byte("\xff"), false)
	f.Fuzz(func(t *testing.T, value []byte, known bool) {
		ct := pipeline.ReducerInputContentType
		if !known {
			ct = pipeline.ProtobufContentType("onex.fleet.v9.Nope")
		}
		msg := &sarama.ConsumerMessage{Topic: topics.ReducerInput, Value: value,
			Headers: []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(ct)}}}
		pm, err := Build(msg, Failure{Err: errors.New("x")}, "", time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := pm.Value.Encode()
		rec, err := Decode(body)
		if err != nil {
			t.Fatalf("DLQ record %s: %v", body, err)
		}
		if _, cut := headerOf(pm, HeaderValueTruncated); cut {
			return
		}
		got, gotCT, err := RestoreValue(rec.OriginalMessage.Value, func(k string) (string, bool) { return headerOf(pm, k) })
		if err != nil {
			t.Fatalf("restore %q: %v", rec.OriginalMessage.Value, err)
		}
		if !bytes.Equal(got, value) || gotCT != ct {
			enc, _ := headerOf(pm, HeaderValueEncoding)
			t.Fatalf("%s %q restored as %x %q, want %x", enc, rec.OriginalMessage.Value, got, gotCT, value)
		}
	})
}
