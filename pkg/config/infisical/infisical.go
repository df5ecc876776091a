// Package infisical is the config prefetch of spec 11.2: once at boot,
// before anything reads its configuration, a service fetches its transport
// settings and secrets from Infisical and writes the resolved values into the
// process environment, where config.Load and the service's own settings read
// them. Call Prefetch first thing in Main.
//
// What is fetched: for each transport the service needs (Needs), the spec's
// fixed key list (TransportKeys) plus the service's plain env dependencies,
// from /shared/<transport>/<KEY>, overlaid by
// /services/<service-slug>/<transport>/<KEY>, which wins for that service.
//
// When: only if the policy (RUNTIME_PROFILE, or ONEX_SECRET_POLICY) is not
// disabled and INFISICAL_ADDR, INFISICAL_CLIENT_ID, INFISICAL_CLIENT_SECRET
// and INFISICAL_PROJECT_ID are all set. Otherwise nothing is fetched, no
// request is made, and the service runs on plain environment variables (the
// local development fallback) — except that the required policy without
// those variables is a boot failure, since it exists to stop a deployment
// that cannot reach its secrets.
//
// Precedence per key. Uncontrolled lane (INFISICAL_REQUIRED unset or
// false): the process environment the service was started with, then
// Infisical, then the env file (OMNIBASE_ENV_FILE, default ~/.omnibase/.env);
// a key found nowhere is a warning. Controlled lane (INFISICAL_REQUIRED
// true): Infisical wins over both; a key Infisical lacks keeps its ambient
// value (process environment or env file) with a provenance log line; a key
// found nowhere is an error, which stops the boot under the required policy.
//
// Failures to reach Infisical stop the boot under the required policy and
// are logged (the service then starts on plain environment) under
// best_effort. No value ever reaches a log line or an error: logs carry key
// names, paths and sources only, and SDK errors are rebuilt from status codes
// and allowlisted phrases (see sanitize).
package infisical

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
)

// Source says where a key's resolved value came from.
type Source string

// Sources of a resolved key.
const (
	SourceInfisicalService Source = "infisical_service" // /services/<slug>/<transport>/KEY
	SourceInfisicalShared  Source = "infisical_shared"  // /shared/<transport>/KEY
	SourceProcessEnv       Source = "process_env"       // set when the process started
	SourceEnvFile          Source = "env_file"          // OMNIBASE_ENV_FILE
	SourceMissing          Source = "missing"
)

// Result reports what a prefetch did, without any value.
type Result struct {
	// Policy is the effective policy and Controlled the lane.
	Policy     Policy
	Controlled bool
	// Fetched is true when Infisical answered and its values were applied.
	Fetched bool
	// Sources maps every key of the service's needs to where its value now
	// comes from (empty when nothing was fetched).
	Sources map[string]Source
	// Missing lists the keys found nowhere, in Needs order.
	Missing []string
}

// Prefetch runs the prefetch for needs and logs what it did as JSON on
// stderr (service=needs.Service, level ONEX_LOG_LEVEL). A non-nil error means
// the service must not start; it has already been logged, and its message
// holds names, never values.
func Prefetch(ctx context.Context, needs Needs) error {
	_, err := Run(ctx, needs, nil)
	return err
}

// Run is Prefetch with a chosen logger (nil: Prefetch's) that also returns
// the Result. It loads the env file first (never overwriting a variable that
// is already set), then reads the bootstrap variables, which may come from
// that file.
func Run(ctx context.Context, needs Needs, log *slog.Logger) (Result, error) {
	fromFile, fileWarnings := config.LoadEnvFileKeys(config.EnvFilePath())
	if log == nil {
		log = observability.NewLogger(os.Stderr, needs.Service, os.Getenv("ONEX_LOG_LEVEL"))
	}
	log = log.With("component", "secret_prefetch")
	for _, w := range fileWarnings {
		log.Warn("env file", "warning", w)
	}
	res, err := run(ctx, needs, fromFile, log)
	if err != nil {
		// Every error of this package is built from names, paths and status
		// codes only. infraerr.SanitizeError would blank it entirely, as the
		// variable names themselves (INFISICAL_CLIENT_SECRET) match its
		// patterns.
		log.Error("secret prefetch failed; not starting", "policy", string(res.Policy), "error", err.Error())
	}
	return res, err
}

func run(ctx context.Context, needs Needs, fromFile []string, log *slog.Logger) (Result, error) {
	refs, err := needs.keys()
	if err != nil {
		return Result{}, infraerr.New(infraerr.KindConfiguration, errCtx("prefetch"), err.Error(), nil)
	}
	s, err := SettingsFromEnv()
	res := Result{Policy: s.Policy, Controlled: s.Required}
	if err != nil {
		return res, infraerr.New(infraerr.KindConfiguration, errCtx("prefetch"), err.Error(), nil)
	}
	for _, w := range s.Warnings {
		log.Warn("secret prefetch", "warning", w)
	}
	attrs := []any{"policy", string(s.Policy), "policy_from", s.PolicyFrom, "runtime_profile", s.Profile, "controlled_lane", s.Required}
	if s.Policy == PolicyDisabled {
		log.Info("secret prefetch skipped: policy disabled; reading plain environment", attrs...)
		return res, nil
	}
	if unset := s.Unset(); len(unset) > 0 {
		if s.Policy == PolicyRequired {
			return res, infraerr.New(infraerr.KindConfiguration, errCtx("prefetch"),
				fmt.Sprintf("infisical: policy required (%s) but %s not set", s.PolicyFrom, strings.Join(unset, ", ")), nil)
		}
		log.Info("secret prefetch skipped: Infisical not configured; reading plain environment", append(attrs, "unset", unset)...)
		return res, nil
	}

	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	values, err := fetch(ctx, s, needs.Service, refs, log)
	if err != nil {
		if s.Policy == PolicyRequired {
			return res, err
		}
		log.Warn("secret prefetch failed (best_effort); reading plain environment", append(attrs, "error", err.Error())...)
		return res, nil
	}
	res.Fetched = true
	res.Sources, res.Missing = apply(refs, values, fromFile, needs.Optional, s.Required, log)
	log.Info("secret prefetch done", append(attrs, "keys", len(refs), "from_infisical", len(values), "missing", append([]string{}, res.Missing...))...)
	if len(res.Missing) > 0 && s.Required {
		err := infraerr.New(infraerr.KindSecretResolution, errCtx("prefetch"),
			"infisical: not in Infisical nor in the environment: "+strings.Join(res.Missing, ", "), nil)
		if s.Policy == PolicyRequired {
			return res, err
		}
		log.Error("secret prefetch incomplete (best_effort); starting anyway", append(attrs, "error", err.Error())...)
	}
	return res, nil
}

// apply resolves every key by the lane's precedence and sets the process
// environment accordingly. It returns each key's source and the keys found
// nowhere (optional keys excepted).
func apply(refs []keyRef, values map[string]fetched, fromFile, optional []string, controlled bool, log *slog.Logger) (map[string]Source, []string) {
	sources := make(map[string]Source, len(refs))
	var missing []string
	for _, r := range refs {
		ambient := SourceProcessEnv
		if slices.Contains(fromFile, r.key) {
			ambient = SourceEnvFile
		}
		_, present := os.LookupEnv(r.key)
		f, inInfisical := values[r.key]
		attrs := []any{"key", r.key, "transport", r.transport}
		switch {
		case inInfisical && present && ambient == SourceProcessEnv && !controlled:
			// Uncontrolled lane: what the process was started with wins.
			sources[r.key] = SourceProcessEnv
			log.Debug("secret prefetch: process environment wins over Infisical", append(attrs, "path", f.path)...)
		case inInfisical:
			if present && controlled {
				log.Info("secret prefetch: Infisical replaces the ambient value", append(attrs, "path", f.path, "replaced", string(ambient))...)
			}
			_ = os.Setenv(r.key, f.value)
			sources[r.key] = f.scope
			log.Debug("secret prefetch: from Infisical", append(attrs, "path", f.path)...)
		case present:
			sources[r.key] = ambient
			if controlled {
				log.Info("secret prefetch: not in Infisical, using the ambient value", append(attrs, "source", string(ambient))...)
			}
		default:
			sources[r.key] = SourceMissing
			if slices.Contains(optional, r.key) || optionalExtra(r.transport, r.key) {
				continue
			}
			missing = append(missing, r.key)
			if !controlled {
				log.Warn("secret prefetch: key found nowhere", attrs...)
			}
		}
	}
	return sources, missing
}
