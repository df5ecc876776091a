package pipeline

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/envelope"
)

func TestContentTypeRoundTrip(t *testing.T) {
	ct := ProtobufContentType("onex.fleet.v1.ReducerInput")
	if ct != "application/x-protobuf; messageType=onex.fleet.v1.ReducerInput" {
		t.Fatalf("ProtobufContentType = %q", ct)
	}
	// The envelope headers every record gets start with content_type
	// application/json; setting it keeps their order and count.
	base := envelope.NewHeaders("t", "dev").Records()
	hs := SetContentType(base, ct)
	if len(hs) != len(base) || string(hs[0].Key) != HeaderContentType || string(hs[0].Value) != ct {
		t.Fatalf("SetContentType = %v", hs)
	}
	if string(base[0].Value) != ContentTypeJSON {
		t.Errorf("SetContentType changed its argument: %q", base[0].Value)
	}
	consumed := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		consumed[i] = &hs[i]
	}
	if got := ContentType(consumed); got != ct {
		t.Errorf("ContentType = %q", got)
	}
	if name, ok := ProtobufMessageType(ContentType(consumed)); !ok || name != "onex.fleet.v1.ReducerInput" {
		t.Errorf("ProtobufMessageType = %q, %v", name, ok)
	}
	if hs := SetContentType(nil, ContentTypeJSON); len(hs) != 1 || string(hs[0].Value) != ContentTypeJSON {
		t.Errorf("SetContentType(nil) = %v", hs)
	}
	dup := []sarama.RecordHeader{{Key: []byte(HeaderContentType), Value: []byte("a")}, {Key: []byte("x")}, {Key: []byte(HeaderContentType), Value: []byte("b")}}
	if hs := SetContentType(dup, ct); len(hs) != 2 || string(hs[0].Value) != ct || string(hs[1].Key) != "x" {
		t.Errorf("SetContentType with a repeated header = %v", hs)
	}
}

func TestContentTypeClassification(t *testing.T) {
	h := func(k, v string) *sarama.RecordHeader { return &sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	if got := ContentType([]*sarama.RecordHeader{nil, h("source", "x")}); got != "" {
		t.Errorf("no header: %q", got)
	}
	if got := ContentType([]*sarama.RecordHeader{h(HeaderContentType, "a"), h(HeaderContentType, "b")}); got != "b" {
		t.Errorf("repeated header: %q, want the last", got)
	}
	for _, tt := range []struct {
		ct      string
		json    bool
		message string
	}{
		{"", true, ""},
		{"application/json", true, ""},
		{"application/json; charset=utf-8", true, ""},
		{"text/plain", false, ""},
		{"application/x-protobuf; messageType=onex.fleet.v1.ReducerInput", false, "onex.fleet.v1.ReducerInput"},
		{"Application/X-Protobuf;messagetype=\"onex.fleet.v1.ReducerInput\"", false, "onex.fleet.v1.ReducerInput"},
		{"application/protobuf; messageType=a.B", false, "a.B"},
		{"application/x-protobuf", false, ""},
		{"application/x-protobuf; messageType=", false, ""},
		{"application/x-protobuf; messageType", false, ""},
	} {
		if got := IsJSON(tt.ct); got != tt.json {
			t.Errorf("IsJSON(%q) = %v", tt.ct, got)
		}
		name, ok := ProtobufMessageType(tt.ct)
		if name != tt.message || ok != (tt.message != "") {
			t.Errorf("ProtobufMessageType(%q) = %q, %v", tt.ct, name, ok)
		}
	}
}

func TestParseWire(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Wire
		wantErr bool
	}{
		{"", WireProtobuf, false},
		{"protobuf", WireProtobuf, false},
		{" JSON ", WireJSON, false},
		{"json", WireJSON, false},
		{"avro", WireProtobuf, true},
	} {
		got, err := ParseWire(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseWire(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	SetWrites(WireJSON)
	if !WritesJSON() {
		t.Error("SetWrites(WireJSON): WritesJSON() = false")
	}
	SetWrites(WireProtobuf)
	if WritesJSON() {
		t.Error("SetWrites(WireProtobuf): WritesJSON() = true")
	}
}
