// Package service is the process lifecycle every deployable shares: config,
// logger, metrics registry, health server, signal handling, and running the
// service's components until SIGTERM, then draining them.
package service

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/config/infisical"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// Service holds what every component of a deployable needs.
type Service struct {
	Name   string
	Config *config.Config
	Log    *slog.Logger
	// Registry is what /metrics serves. Register the service's own series
	// through Registerer, not on Registry directly, so they carry the
	// service label.
	Registry *prometheus.Registry
	Health   *observability.Health

	regOnce sync.Once
	reg     prometheus.Registerer
}

// Registerer returns the Registerer for the service's series: it adds
// service=Name to every series registered through it. The first call also
// registers the health series (onex_ready, onex_draining,
// onex_messages_in_flight, onex_readiness_condition). A Service built as a
// literal (tests) gets the same behaviour.
func (s *Service) Registerer() prometheus.Registerer {
	s.regOnce.Do(func() {
		s.reg = observability.WithService(s.Registry, s.Name)
		if s.Health != nil {
			s.reg.MustRegister(s.Health.Collector())
		}
	})
	return s.reg
}

// New loads config for name and builds the logger, registry and health with
// the given readiness conditions (all start not ready).
func New(name string, conditions ...string) (*Service, error) {
	cfg, err := config.Load(name)
	if err != nil {
		return nil, err
	}
	// The internal wire is read here, not in config, which pkg/pipeline
	// itself depends on.
	wire, err := pipeline.ParseWire(os.Getenv(pipeline.EnvWire))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	log := observability.NewLogger(os.Stderr, name, cfg.LogLevel)
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w)
	}
	pipeline.SetWrites(wire)
	if wire == pipeline.WireJSON {
		log.Warn("internal records are written as JSON (ONEX_INTERNAL_WIRE=json): for a rolling upgrade from, or back to, a version that reads only JSON; set protobuf once every service reads both")
	}
	return &Service{
		Name:     name,
		Config:   cfg,
		Log:      log,
		Registry: observability.NewRegistry(),
		Health:   observability.NewHealth(conditions...),
	}, nil
}

// Boot starts a deployable's process, in the order every service needs:
// sarama's own log on stderr when SARAMA_DEBUG=1, the Infisical prefetch of
// secrets (spec 11.2: it writes the environment that New then reads), then
// New(name, conditions...). A non-nil error has been reported already
// (Prefetch logs its own; a configuration error goes to stderr, as there is
// no logger yet) and the process should exit 2.
func Boot(name string, secrets infisical.Needs, conditions ...string) (*Service, error) {
	if os.Getenv("SARAMA_DEBUG") == "1" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags)
	}
	if err := infisical.Prefetch(context.Background(), secrets); err != nil {
		return nil, err
	}
	svc, err := New(name, conditions...)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", infraerr.SanitizeError(err))
		return nil, err
	}
	return svc, nil
}

// Component is one long-running part of a service. It runs until ctx is done
// and then returns after draining its own work; a non-nil error stops the
// whole service.
type Component func(ctx context.Context) error

// Run serves health and metrics and runs every component until SIGINT or
// SIGTERM (or until one component fails), then cancels them all and waits for
// each to drain. It marks the service draining first so /readyz turns false.
func (s *Service) Run(components ...Component) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return s.RunContext(ctx, components...)
}

// RunContext is Run with a caller-owned context instead of signals.
func (s *Service) RunContext(ctx context.Context, components ...Component) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The components stop only after the service reports draining, so a
	// probe during the drain never sees it ready: cancelling their context
	// together with ctx let a component start draining first.
	compCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	defer stopComponents()

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	s.Registerer() // the health series exist even if no component registered a series
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		mux := observability.Handler(s.Health, s.Registry)
		if s.Config.Pprof {
			observability.HandlePprof(mux)
		}
		if err := observability.ServeHandler(httpCtx, s.Config.HTTPAddr, mux, s.Log); err != nil {
			fail(fmt.Errorf("health server: %w", err))
		}
	}()
	for _, c := range components {
		wg.Add(1)
		go func(c Component) {
			defer wg.Done()
			if err := c(compCtx); err != nil && !errors.Is(err, context.Canceled) {
				fail(err)
			}
		}(c)
	}
	<-ctx.Done()
	s.Health.SetDraining(true)
	stopComponents()
	s.Log.Info("shutting down")
	wg.Wait()
	// The health server outlives the components so probes see is_draining
	// while the drain runs.
	stopHTTP()
	<-httpDone
	if firstErr != nil {
		s.Log.Error("stopped with error", "error", infraerr.SanitizeError(firstErr))
		return firstErr
	}
	s.Log.Info("stopped cleanly")
	return nil
}
