package registration_test

import (
	"fmt"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/registration"
)

func ExampleDecodeHeartbeatEvent() {
	value := []byte(`{"payload": {"node_id": "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18", "node_type": "effect",
		"node_version": "1.2.0", "uptime_seconds": 30.02, "timestamp": "2026-03-02T14:05:37.410551Z"},
		"correlation_id": "8e2f4a61-93b7-4c05-a1d8-6f3e2b9c7a40"}`)

	env, err := envelope.Decode(value)
	if err != nil {
		fmt.Println(err)
		return
	}
	hb, err := envelope.DecodePayload(env, registration.DecodeHeartbeatEvent)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hb.NodeType, hb.NodeVersion, hb.Timestamp)

	env.Payload = []byte(`{"node_id": "3f6b2a9e-7c41-4d8a-9b1e-5a2c7d0e4f18", "node_type": "widget",
		"uptime_seconds": 1, "timestamp": "2026-03-02T14:05:37Z"}`)
	_, err = envelope.DecodePayload(env, registration.DecodeHeartbeatEvent)
	fmt.Println(err)
	// Output:
	// effect 1.2.0 2026-03-02T14:05:37.410551Z
	// ModelNodeHeartbeatEvent: field "payload.node_type": "widget" is not a valid registration.NodeKind
}
