package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// internalTopics are the topics whose records ONEX_INTERNAL_WIRE chooses
// the encoding of, with the protobuf content type each is written with
// (the orchestrator's aggregation state too, which only it reads: its
// restart in each form is part of the rollout below).
var internalTopics = map[string]string{
	topics.ReducerInput:        pipeline.ReducerInputContentType,
	topics.RegistrationIntents: pipeline.IntentContentType,
	topics.PostgresIntents:     pipeline.IntentContentType,
	topics.ConsulIntents:       pipeline.IntentContentType,
	topics.EffectResults:       pipeline.EffectResultContentType,
}

// contentTypes counts the content types of the records of topic about key
// (JSON for a record without the header).
func contentTypes(r *harness.Recorder, topic, key string) map[string]int {
	out := map[string]int{}
	for _, rec := range r.Records(topic, key) {
		ct := pipeline.ContentTypeJSON
		for _, h := range rec.Headers {
			if v, ok := strings.CutPrefix(h, pipeline.HeaderContentType+"="); ok {
				ct = v
			}
		}
		out[ct]++
	}
	return out
}

// Suite 13 — the rollout of the internal wire: the fleet starts as an
// older fleet's upgrade would (ONEX_INTERNAL_WIRE=json: every internal
// record in the JSON form a JSON-only version reads), then each service in
// turn is restarted writing protobuf. After every step a new node
// registers and becomes ACTIVE while the services write different forms,
// and a node registered before keeps its heartbeats flowing; at the start
// every internal record is JSON, at the end every one is protobuf.
func TestSuite13_InternalWireRollout(t *testing.T) {
	wireRec, err := harness.NewRecorder(servers.KafkaBrokers, sarama.OffsetNewest, keys(internalTopics)...)
	if err != nil {
		t.Fatal(err)
	}
	defer wireRec.Close()
	restart := func(svc string, kv ...string) {
		t.Helper()
		if err := fleet.Stop(svc); err != nil {
			t.Fatal(err)
		}
		fleet.SetEnv(svc, kv...)
		if err := fleet.Start(svc); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := fleet.WaitReady(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range harness.Services {
			fleet.SetEnv(s)
		}
	})
	for _, s := range harness.Services {
		restart(s, pipeline.EnvWire+"=json")
	}

	ns := startNodes(t, heartbeat)
	register := func(name string) string {
		t.Helper()
		id := identity(registration.NodeKindEffect, name)
		ns.add(id, node.Options{})
		key := id.NodeID.String()
		waitRegistered(t, 60*time.Second, key)
		return key
	}
	first := register("e2e_wire_json")
	for topic := range internalTopics {
		if got := contentTypes(wireRec, topic, first); got[pipeline.ContentTypeJSON] == 0 || len(got) != 1 {
			t.Errorf("ONEX_INTERNAL_WIRE=json: %s records of %s by content type %v, want JSON only", shortTopic(topic), first, got)
		}
	}

	// Readers first is not needed: every service reads both forms. The
	// order is the one a deployment's rollout would likely take.
	var last string
	for _, s := range []string{"projector-effect", "consul-effect", "registration-orchestrator", "reducer"} {
		restart(s)
		last = register("e2e_wire_" + strings.ReplaceAll(s, "-", "_"))
	}
	for topic, ct := range internalTopics {
		if got := contentTypes(wireRec, topic, last); got[ct] == 0 || len(got) != 1 {
			t.Errorf("ONEX_INTERNAL_WIRE=protobuf: %s records of %s by content type %v, want %s only", shortTopic(topic), last, got, ct)
		}
	}
	// The first node's heartbeats went on through every step.
	err = harness.Eventually(context.Background(), 30*time.Second, func(ctx context.Context) error {
		got := contentTypes(wireRec, topics.ReducerInput, first)
		if got[pipeline.ReducerInputContentType] == 0 {
			return fmt.Errorf("no protobuf reducer input of the first node since the orchestrator's switch: %v", got)
		}
		rows, err := db.Rows(ctx, first)
		if err != nil {
			return err
		}
		if r := rows[first]; r.State != "active" {
			return fmt.Errorf("first node %s", r.State)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
