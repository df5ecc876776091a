package run

import "testing"

// A run's environment name is its topic namespace, so it must be a valid
// KAFKA_TOPIC_NAMESPACE token every time.
func TestRunEnvironmentIsANamespace(t *testing.T) {
	for range 100 {
		env := "bench" + randomHex(4)
		ns, err := runNamespace(env)
		if err != nil || ns.String() != env {
			t.Fatalf("runNamespace(%q) = %q, %v", env, ns, err)
		}
	}
	if _, err := runNamespace("Bench.1"); err == nil {
		t.Error("an invalid environment name was accepted as a namespace")
	}
}
