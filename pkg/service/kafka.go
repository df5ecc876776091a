package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// startPolicy spaces the attempts of a start-up wait. Its delay is taken at
// the jitter's midpoint, so it is exact: 200 ms, doubling, at most 5 s.
var startPolicy = retry.Policy{MaxAttempts: 10, Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.25}

// Backoff is the wait after failed attempt number attempt (from 0) of
// something a service waits for at start (Kafka, its topics, a backend):
// 200 ms, doubling, at most 5 s, and never given up.
func Backoff(attempt int) time.Duration {
	return startPolicy.Delay(min(max(attempt, 0), startPolicy.MaxAttempts), 0.5)
}

// WaitKafka connects a client to brokers with cfg, retrying until a broker
// answers or ctx ends; the error is ctx's, as there is no other. Each failed
// attempt is one warning, "kafka not reachable yet", with bus.NewClient's
// error: a refused login or an untrusted broker certificate is the one
// classified line kafkasec.Explain makes of it (never a credential), any
// other failure a connection error. A refusal is waited out like a broker
// that is still starting, so the service stays up and not ready (the caller
// marks its readiness once this returns) instead of crash-looping.
func WaitKafka(ctx context.Context, log *slog.Logger, brokers []string, cfg *sarama.Config) (sarama.Client, error) {
	for attempt := 0; ; attempt++ {
		client, err := bus.NewClient(brokers, cfg)
		if err == nil {
			return client, nil
		}
		log.Warn("kafka not reachable yet", "attempt", attempt+1, "error", infraerr.SanitizeError(err))
		if !retry.Sleep(ctx, Backoff(attempt)) {
			return nil, ctx.Err()
		}
	}
}

// WaitTopics waits until every one of topics exists, refreshing client's
// metadata before each look; false when ctx ended first. Auto-creation is
// off (provisioning owns the topics), so a service started alongside its
// provisioning job waits for it; each look that finds one missing is one
// warning, "waiting for topics", naming those missing.
func WaitTopics(ctx context.Context, log *slog.Logger, client sarama.Client, topics ...string) bool {
	for attempt := 0; ; attempt++ {
		missing, err := missingTopics(client, topics)
		if err == nil && len(missing) == 0 {
			return true
		}
		if err != nil {
			log.Warn("waiting for topics", "attempt", attempt+1, "missing", topics, "error", infraerr.SanitizeError(err))
		} else {
			log.Warn("waiting for topics", "attempt", attempt+1, "missing", missing)
		}
		if !retry.Sleep(ctx, Backoff(attempt)) {
			return false
		}
	}
}

// missingTopics returns the topics of want the cluster does not have, in
// want's order. A failed refresh is not an error by itself: the cached
// metadata may still show every topic, and Topics reports what it cannot
// read.
func missingTopics(client sarama.Client, want []string) ([]string, error) {
	_ = client.RefreshMetadata()
	have, err := client.Topics()
	if err != nil {
		return nil, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "metadata"},
			"list topics", err)
	}
	exists := make(map[string]bool, len(have))
	for _, t := range have {
		exists[t] = true
	}
	var missing []string
	for _, t := range want {
		if !exists[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
