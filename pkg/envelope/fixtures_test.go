package envelope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/IBM/sarama"
)

// fixturesDir finds the shared golden fixtures: a "shared/fixtures"
// directory next to the repository (../shared relative to the repo root),
// searched by walking up from the test's working directory. It fails the
// test when not found: CI always provides them.
func fixturesDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "fixtures")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("shared/fixtures not found in any parent directory (expected ../shared/fixtures next to the repository)")
		}
		dir = parent
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelopeFixtures are the fixtures whose value is a ModelEventEnvelope.
var envelopeFixtures = []string{
	"introspection-effect.json",
	"heartbeat.json",
	"ack.json",
	"topic-catalog-query.json",
}

// recordFixture is a NAME.record.json file with its headers in file order.
type recordFixture struct {
	Topic   string
	Key     *string
	Headers []*sarama.RecordHeader
}

func readRecordFixture(t testing.TB, name string) recordFixture {
	t.Helper()
	return parseRecordFixture(t, name, readFixture(t, name))
}

// parseRecordFixture reads a NAME.record.json (the older fixtures' and the
// current goldens' format).
func parseRecordFixture(t testing.TB, name string, raw []byte) recordFixture {
	t.Helper()
	var top struct {
		Topic   string          `json:"topic"`
		Key     *string         `json:"key"`
		Headers json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	rf := recordFixture{Topic: top.Topic, Key: top.Key}
	dec := json.NewDecoder(bytes.NewReader(top.Headers))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		rf.Headers = append(rf.Headers, &sarama.RecordHeader{Key: []byte(k.(string)), Value: []byte(v)})
	}
	return rf
}

func recordFixtureNames(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(fixturesDir(t), "*.record.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no record fixtures: %v", err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}
