package ceiling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// ConsulService returns the agent registration the consul effect writes for
// a node of nodeType with the given health URL (docs/consul-effect.md, "What
// a registration looks like"): same id scheme, name, tags, five meta keys
// and the HTTP check with the reducer's durations. The raw ceiling registers
// exactly this shape, so the effect's rate and the ceiling compare like with
// like.
func ConsulService(nodeID uuid.UUID, nodeType, env, healthURL string, seq int64) *api.AgentServiceRegistration {
	id := decide.ServiceID(nodeType, nodeID)
	reg := &api.AgentServiceRegistration{
		ID: id, Name: "onex-" + nodeType, Tags: []string{"onex", "node-type:" + nodeType},
		Address: "127.0.0.1",
		Meta: map[string]string{
			"onex-node-id":   nodeID.String(),
			"onex-node-type": nodeType,
			"onex-sequence":  fmt.Sprint(seq),
			"onex-env":       env,
			"onex-check":     "0123456789abcdef",
		},
	}
	if healthURL != "" {
		reg.Check = &api.AgentServiceCheck{
			CheckID: "service:" + id, Name: "ONEX node health", HTTP: healthURL, Method: "GET",
			Interval: "10s", Timeout: "5s", DeregisterCriticalServiceAfter: "10m0s",
		}
	}
	return reg
}

// NewConsulClient returns an agent client whose connection pool fits
// concurrency parallel calls (the default pool would close and reopen
// connections and measure TCP setup instead of Consul).
func NewConsulClient(addr string, concurrency int) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency * 2
	tr.MaxIdleConns = concurrency * 2
	cfg.Transport = tr
	return api.NewClient(cfg)
}

// Consul measures raw service registrations per second through the agent
// API: concurrency workers register fresh services of the agent mode's
// shape for duration, one PUT each (the effect adds a read of the service
// before its write). It returns the rate of the registrations that
// completed after warmup and the ids it registered, which the caller
// removes with ConsulDeregister.
func Consul(ctx context.Context, client *api.Client, concurrency int, warmup, duration time.Duration, env string, healthURL func(uuid.UUID) string) (Rate, []string, error) {
	return registerFor(ctx, concurrency, warmup, duration, func(ctx context.Context) (string, error) {
		id := uuid.New()
		reg := ConsulService(id, "effect", env, healthURL(id), 1)
		return reg.ID, client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
	})
}

// registerFor runs concurrency workers calling register until duration
// passed and counts the calls that completed after warmup. It returns what
// every call registered (a call cut by the deadline may still have landed)
// and the first error when nothing succeeded.
func registerFor(ctx context.Context, concurrency int, warmup, duration time.Duration, register func(context.Context) (string, error)) (Rate, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var (
		mu    sync.Mutex
		ids   []string
		n     atomic.Int64
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Go(func() {
			for ctx.Err() == nil {
				id, err := register(ctx)
				mu.Lock()
				ids = append(ids, id)
				if err != nil && ctx.Err() == nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err == nil && time.Since(start) >= warmup {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start) - warmup
	r := Rate{Count: n.Load(), Seconds: took.Seconds()}
	if first != nil && r.Count == 0 {
		return r, ids, fmt.Errorf("consul ceiling: %w", first)
	}
	return r, ids, nil
}

// ConsulDeregister removes services by id with concurrency workers and
// returns the rate; a service that is already gone counts as removed.
func ConsulDeregister(ctx context.Context, client *api.Client, concurrency int, ids []string) (Rate, error) {
	start := time.Now()
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		n     atomic.Int64
	)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				err := client.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
				var se api.StatusError
				if err != nil && !(errors.As(err, &se) && se.Code == http.StatusNotFound) {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				n.Add(1)
			}
		}()
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	r := Rate{Count: n.Load(), Seconds: time.Since(start).Seconds()}
	if first != nil {
		return r, fmt.Errorf("consul deregister: %w", first)
	}
	return r, ctx.Err()
}
