package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{-1, 200 * time.Millisecond},
		{0, 200 * time.Millisecond},
		{1, 400 * time.Millisecond},
		{4, 3200 * time.Millisecond},
		{5, 5 * time.Second},
		{1000, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := Backoff(tt.attempt); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

// A broker that does not answer is waited for, one warning per attempt,
// until ctx ends; the error is then ctx's.
func TestWaitKafkaEndsWithContext(t *testing.T) {
	brokers := []string{"127.0.0.1:1"}
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "wait-test"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metadata.Retry.Max, cfg.Net.DialTimeout = 0, 100*time.Millisecond
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	client, err := WaitKafka(ctx, slog.New(slog.NewJSONHandler(&out, nil)), brokers, cfg)
	if client != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitKafka = %v, %v; want no client and ctx's error", client, err)
	}
	if n := strings.Count(out.String(), `"msg":"kafka not reachable yet"`); n < 2 {
		t.Errorf("%d warnings, want one per attempt:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `"attempt":2`) {
		t.Errorf("attempts not counted:\n%s", out.String())
	}
}

// topicsClient is a sarama.Client whose metadata lists topics; the calls
// WaitTopics makes are all it implements.
type topicsClient struct {
	sarama.Client
	lists [][]string // one per look; the last one repeats
	err   error
	looks int
}

func (c *topicsClient) RefreshMetadata(...string) error { return nil }

func (c *topicsClient) Topics() ([]string, error) {
	i := min(c.looks, len(c.lists)-1)
	c.looks++
	return c.lists[i], c.err
}

func TestWaitTopics(t *testing.T) {
	tests := []struct {
		name     string
		client   *topicsClient
		timeout  time.Duration
		want     bool
		warnings int
		missing  string
	}{
		{name: "all there", client: &topicsClient{lists: [][]string{{"a", "b", "c"}}}, timeout: time.Second, want: true},
		{name: "b provisioned later", client: &topicsClient{lists: [][]string{{"a"}, {"a", "c"}, {"a", "b", "c"}}},
			timeout: 5 * time.Second, want: true, warnings: 2, missing: `"missing":["b"]`},
		{name: "never there: ctx ends the wait", client: &topicsClient{lists: [][]string{{"a"}}},
			timeout: 300 * time.Millisecond, want: false, missing: `"missing":["b","c"]`},
		{name: "metadata unreadable", client: &topicsClient{lists: [][]string{nil}, err: errors.New("no broker")},
			timeout: 300 * time.Millisecond, want: false, missing: `"missing":["a","b","c"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			got := WaitTopics(ctx, slog.New(slog.NewJSONHandler(&out, nil)), tt.client, "a", "b", "c")
			if got != tt.want {
				t.Fatalf("WaitTopics = %v, want %v", got, tt.want)
			}
			// One warning per look that found one missing; a wait ctx
			// ends was at least one look (how many depends on the clock).
			n := strings.Count(out.String(), `"msg":"waiting for topics"`)
			if tt.want && n != tt.warnings || !tt.want && n < 1 {
				t.Errorf("%d warnings, want %d:\n%s", n, tt.warnings, out.String())
			}
			if tt.missing != "" && !strings.Contains(out.String(), tt.missing) {
				t.Errorf("no %s in:\n%s", tt.missing, out.String())
			}
		})
	}
}
