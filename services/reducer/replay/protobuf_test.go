package replay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// Records printed from the topic as the orchestrator writes it now
// (protobuf, a heartbeat as its decoded fields, pipeline.FormatReducerInput)
// replay exactly as the JSON lines of the same inputs.
func TestReplayPrintedProtobufInputs(t *testing.T) {
	for _, set := range testkit.WireSets(t) {
		t.Run(set.Name, func(t *testing.T) {
			jsonLines := []string{
				line(topics.NodeIntrospection, "2026-03-02T14:05:07.5Z", read(t, set, "introspection-effect.json")),
				line(topics.NodeRegistrationAcked, "2026-03-02T14:05:08Z", read(t, set, "ack.json")),
				line(topics.NodeHeartbeat, "2026-03-02T14:05:37.5Z", read(t, set, "heartbeat.json")),
			}
			var printed []string
			headers := []*sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.ReducerInputContentType)}}
			for _, l := range jsonLines {
				ri, err := pipeline.ParseReducerInputLine([]byte(l))
				if err != nil {
					t.Fatal(err)
				}
				if ri.Topic == topics.NodeHeartbeat {
					env, _, err := envelope.DecodeTolerant(ri.Value)
					if err != nil {
						t.Fatal(err)
					}
					hb, _, err := registration.DecodeHeartbeatEventTolerant(env.Payload)
					if err != nil {
						t.Fatal(err)
					}
					ri.Value, ri.Heartbeat = nil, pipeline.NewHeartbeatInput(hb)
				}
				v, err := pipeline.MarshalReducerInput(ri)
				if err != nil {
					t.Fatal(err)
				}
				printed = append(printed, pipeline.FormatReducerInput(headers, v))
			}
			if !strings.Contains(printed[2], `"heartbeat"`) {
				t.Fatalf("the heartbeat printed as %s", printed[2])
			}
			replay := func(lines []string) string {
				var stdout, stderr bytes.Buffer
				skipped, err := Run(strings.NewReader(strings.Join(lines, "\n")), &stdout, &stderr, decide.DefaultParams())
				if err != nil || skipped != 0 {
					t.Fatalf("replay: %d skipped, %v: %s", skipped, err, stderr.String())
				}
				return stdout.String()
			}
			if a, b := replay(jsonLines), replay(printed); a != b {
				t.Errorf("the printed protobuf inputs replay as\n%s\nthe JSON lines as\n%s", b, a)
			}
		})
	}
}
