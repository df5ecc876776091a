package ingress

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/registration"
)

// Unknown fields: what accepted node records carry that the fleet does not
// know (a node running a newer Python package). They are no reason to
// reject a record; they are counted in onex_unknown_fields_total{topic,
// field} and logged at WARN, so that the fleet's models can be brought up to
// date (the schema drift test in pkg/registration names the differences).
const (
	// MaxUnknownFieldsPerTopic bounds the field label of
	// onex_unknown_fields_total: the first 200 distinct fields met on a
	// topic get a series each, every later one counts as field="other".
	MaxUnknownFieldsPerTopic = 200
	// UnknownFieldOther is the field label beyond the bound.
	UnknownFieldOther = "other"
	// UnknownFieldLogInterval is how often the same unknown field is logged:
	// one WARN per (topic, node type, field) per interval.
	UnknownFieldLogInterval = time.Hour
	// maxFieldLabel bounds the length of a field label, in bytes.
	maxFieldLabel = 128
)

var arrayIndex = regexp.MustCompile(`\[[0-9]+\]`)

// FieldLabel is the field label of an unknown member's path: array indices
// dropped ("payload.event_bus.publish_topics[3].qos" is
// "payload.event_bus.publish_topics[].qos", one series for every
// element), at most 128 bytes (longer paths are cut and end in "…").
func FieldLabel(path string) string {
	if strings.IndexByte(path, '[') >= 0 {
		path = arrayIndex.ReplaceAllString(path, "[]")
	}
	return cut(path, maxFieldLabel)
}

// cut returns s as valid UTF-8 of at most n bytes, ending in "…" if cut.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// unknownFields counts and logs the unknown fields of accepted records.
type unknownFields struct {
	counter *prometheus.CounterVec
	now     func() time.Time

	mu     sync.Mutex
	labels map[string]map[string]bool // topic → the field labels given a series
	logged map[logKey]time.Time       // last WARN per (topic, node type, label)
}

type logKey struct{ topic, nodeType, label string }

func newUnknownFields(counter *prometheus.CounterVec, now func() time.Time) *unknownFields {
	return &unknownFields{counter: counter, now: now, labels: map[string]map[string]bool{}, logged: map[logKey]time.Time{}}
}

// observe counts every unknown member of one accepted record of topic (its
// registry name) and logs the ones not logged within the interval. ctx
// carries the record's logger (correlation_id).
func (u *unknownFields) observe(ctx context.Context, topic string, acc Accepted) {
	if len(acc.Unknown) == 0 {
		return
	}
	now := u.now()
	type warn struct{ path string }
	var warns []warn
	u.mu.Lock()
	seen := u.labels[topic]
	if seen == nil {
		seen = map[string]bool{}
		u.labels[topic] = seen
	}
	for _, m := range acc.Unknown {
		label := FieldLabel(m.Path)
		if !seen[label] {
			if len(seen) < MaxUnknownFieldsPerTopic {
				seen[label] = true
			} else {
				label = UnknownFieldOther
			}
		}
		u.counter.WithLabelValues(topic, label).Inc()
		k := logKey{topic, string(acc.NodeType), label}
		if last, ok := u.logged[k]; !ok || now.Sub(last) >= UnknownFieldLogInterval {
			u.logged[k] = now
			warns = append(warns, warn{m.Path})
		}
	}
	u.mu.Unlock()
	log := observability.Logger(ctx)
	for _, w := range warns {
		log.LogAttrs(ctx, slog.LevelWarn, "node message has a field the fleet does not know; accepted",
			slog.String("topic", topic), slog.String("node_id", acc.NodeID.String()),
			slog.String("node_type", nodeTypeLabel(acc.NodeType)), slog.String("field", FieldLabel(w.path)),
			slog.String("path", cut(w.path, 512)),
			slog.String("hint", "the node runs a newer model than the fleet: see the schema drift test (pkg/registration)"))
	}
}

func nodeTypeLabel(k registration.NodeKind) string {
	if k == "" {
		return "unknown"
	}
	return string(k)
}
