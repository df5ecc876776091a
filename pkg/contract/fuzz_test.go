package contract

import "testing"

// FuzzParse feeds arbitrary documents to the decoder and the checks: they
// must never panic, and a document that decodes must check without panic.
func FuzzParse(f *testing.F) {
	for _, d := range []string{routerDoc, machineDoc, dbDoc, kvDoc, "", "a: b", "- x", "name: [", "event_bus: {subscribe_topics: [{topic: 1}]}",
		"parameters: {x: .nan}", "state_machine: {transitions: [{from: a}]}", "intent_routing: {[a]: b}", "x: &a [*a]"} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yaml", b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		Check(c, routerExpect)
		Check(c, machineExpect)
	})
}
