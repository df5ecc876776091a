package topics_test

import (
	"fmt"

	"github.com/omninode/onex-fleet/pkg/topics"
)

func ExampleValidate() {
	fmt.Println(topics.Validate("onex.evt.platform.node-heartbeat.v1"))
	fmt.Println(topics.Validate("dev.onex.evt.platform.node-heartbeat.v1"))
	fmt.Println(topics.Validate("onex.evt.platform"))
	// Output:
	// <nil>
	// topic "dev.onex.evt.platform.node-heartbeat.v1": starts with environment prefix "dev"; topic names are realm-agnostic (ADR-008)
	// topic "onex.evt.platform": expected 5 dot-separated segments (onex.<kind>.<producer>.<event-name>.v<N>), got 3
}

func ExampleResolve() {
	snap, _ := topics.Lookup(topics.RegistrationSnapshots)
	dev := topics.Resolve([]topics.Spec{snap}, topics.Options{ReplicationFactor: 1})[0]
	fmt.Println(dev.Partitions, dev.ReplicationFactor, dev.Configs[topics.ConfigCleanupPolicy], dev.Configs[topics.ConfigMinInsyncReplicas])
	// Output: 6 1 compact 1
}
