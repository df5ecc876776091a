package infisical

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
)

// Transport values: the <transport> segment of an Infisical path (spec 11.2,
// the transport enum values of the Python runtime).
const (
	DB     = "db"
	Kafka  = "kafka"
	Valkey = "valkey"
	HTTP   = "http"
	// Env holds a service's plain environment dependencies; its keys are the
	// ones the service lists in Needs.Env, not a fixed list.
	Env = "env"
)

// TransportKeys is the spec's fixed key list per transport (spec 11.1 and
// 11.2). Only the transports the spec spells out are here; a Needs naming
// any other transport is rejected rather than fetching nothing silently.
var TransportKeys = map[string][]string{
	DB:     {"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_POOL_MIN_SIZE", "POSTGRES_POOL_MAX_SIZE", "POSTGRES_TIMEOUT_MS", "QUERY_TIMEOUT_SECONDS"},
	Kafka:  {"KAFKA_GROUP_ID", "KAFKA_ACKS", "KAFKA_REQUEST_TIMEOUT_MS"},
	Valkey: {"VALKEY_HOST", "VALKEY_PORT", "VALKEY_PASSWORD", "VALKEY_DB"},
	HTTP:   {"HTTP_BASE_URL", "HTTP_TIMEOUT_MS", "HTTP_MAX_RETRIES"},
}

// TransportExtras are keys the fleet fetches with a transport beyond the
// spec's list, always optional: the kafka transport brings the Kafka
// security settings (config.KafkaSecurityVars), so a SASL password or an
// OAUTHBEARER client secret comes from /shared/kafka/ or
// /services/<slug>/kafka/ like the rest of the transport's settings, and a
// cluster without security needs none of them.
var TransportExtras = map[string][]string{
	Kafka: config.KafkaSecurityVars,
}

// optionalExtra reports whether key was fetched as one of the
// TransportExtras of transport.
func optionalExtra(transport, key string) bool {
	return slices.Contains(TransportExtras[transport], key)
}

// bootstrapVars are never fetched from Infisical (spec 11.2): they are how
// the service reaches Infisical in the first place.
var bootstrapVars = []string{"INFISICAL_ADDR", "INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET", "INFISICAL_PROJECT_ID"}

// Needs is what one service prefetches. The Go fleet has no contract
// scanner for transports (two of the four services have no contract.yaml),
// so each service states its needs next to its Main; docs/configuration.md
// lists them.
type Needs struct {
	// Service is the <service-slug> of /services/<service-slug>/...: the
	// service name every other part of the fleet uses (e.g. "reducer").
	Service string
	// Transports name the fixed key lists of TransportKeys to fetch.
	Transports []string
	// Env are plain environment dependencies, fetched under the env transport
	// (/shared/env/KEY, /services/<slug>/env/KEY).
	Env []string
	// Optional keys may be missing everywhere without an error, even on the
	// controlled lane (a Consul without ACLs has no token).
	Optional []string
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// keyRef is one key to resolve and the transport it is fetched under.
type keyRef struct {
	transport, key string
}

// keys lists the keys of n in a stable order, each once (the first
// transport that names it wins), or the first problem with n.
func (n Needs) keys() ([]keyRef, error) {
	if !slugPattern.MatchString(n.Service) {
		return nil, fmt.Errorf("infisical: service slug %q must match %s", n.Service, slugPattern)
	}
	var refs []keyRef
	seen := map[string]bool{}
	add := func(t, k string) error {
		if !keyPattern.MatchString(k) {
			return fmt.Errorf("infisical: %q is not an environment variable name", k)
		}
		if slices.Contains(bootstrapVars, k) {
			return fmt.Errorf("infisical: %s is a bootstrap variable and never comes from Infisical", k)
		}
		if !seen[k] {
			seen[k] = true
			refs = append(refs, keyRef{t, k})
		}
		return nil
	}
	for _, t := range n.Transports {
		list, ok := TransportKeys[t]
		if !ok {
			return nil, fmt.Errorf("infisical: unknown transport %q (known: db, kafka, valkey, http; use Env for single keys)", t)
		}
		for _, k := range append(slices.Clip(list), TransportExtras[t]...) {
			if err := add(t, k); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range n.Env {
		if err := add(Env, k); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// Policy is the prefetch policy a runtime profile selects (spec 11.1).
type Policy string

// The three policies: nothing is fetched; fetched, failures logged and the
// service starts on plain environment; fetched, failures stop the boot.
const (
	PolicyDisabled   Policy = "disabled"
	PolicyBestEffort Policy = "best_effort"
	PolicyRequired   Policy = "required"
)

// profilePolicies maps RUNTIME_PROFILE to its prefetch policy (spec 11.1).
var profilePolicies = map[string]Policy{
	"local-dev": PolicyDisabled, "default": PolicyDisabled, "main": PolicyDisabled,
	"effects": PolicyDisabled, "workers": PolicyDisabled, "projection-api": PolicyDisabled,
	"canary":  PolicyDisabled,
	"staging": PolicyBestEffort, "production": PolicyRequired,
}

// ProfilePolicy returns the policy of a runtime profile. An unknown profile
// is treated as "default" (policy disabled) and reported with ok false.
func ProfilePolicy(profile string) (p Policy, ok bool) {
	p, ok = profilePolicies[profile]
	if !ok {
		return profilePolicies["default"], false
	}
	return p, true
}

// DefaultTimeout bounds the whole prefetch (login, every list, retries)
// when INFISICAL_TIMEOUT_SECONDS is unset.
const DefaultTimeout = 30 * time.Second

// Settings are the bootstrap variables of spec 11.1, read from the process
// environment after the env file was loaded.
type Settings struct {
	Addr         string        // INFISICAL_ADDR
	ClientID     string        // INFISICAL_CLIENT_ID
	ClientSecret config.Secret // INFISICAL_CLIENT_SECRET
	ProjectID    string        // INFISICAL_PROJECT_ID
	Environment  string        // INFISICAL_ENVIRONMENT, default "prod"
	// Required is INFISICAL_REQUIRED (true/1/yes): the controlled lane.
	Required bool
	Profile  string // RUNTIME_PROFILE, default "default"
	Policy   Policy // from Profile, or ONEX_SECRET_POLICY when set
	// PolicyFrom names the variable Policy came from.
	PolicyFrom string
	Timeout    time.Duration // INFISICAL_TIMEOUT_SECONDS, default DefaultTimeout
	// Warnings are non-fatal findings (an unknown profile) for the log.
	Warnings []string
}

// SettingsFromEnv reads Settings. It fails on an ONEX_SECRET_POLICY that is
// not one of the three policies (a misspelt override must not quietly turn
// a required prefetch into none) and on a malformed timeout.
func SettingsFromEnv() (Settings, error) {
	s := Settings{
		Addr:         strings.TrimSpace(os.Getenv("INFISICAL_ADDR")),
		ClientID:     strings.TrimSpace(os.Getenv("INFISICAL_CLIENT_ID")),
		ClientSecret: config.Secret(strings.TrimSpace(os.Getenv("INFISICAL_CLIENT_SECRET"))),
		ProjectID:    strings.TrimSpace(os.Getenv("INFISICAL_PROJECT_ID")),
		Environment:  config.String("INFISICAL_ENVIRONMENT", "prod"),
		Profile:      config.String("RUNTIME_PROFILE", "default"),
		PolicyFrom:   "RUNTIME_PROFILE",
	}
	switch strings.ToLower(strings.TrimSpace(os.Getenv("INFISICAL_REQUIRED"))) {
	case "true", "1", "yes":
		s.Required = true
	}
	p, known := ProfilePolicy(s.Profile)
	if !known {
		s.Warnings = append(s.Warnings, fmt.Sprintf("RUNTIME_PROFILE %q is unknown; using the default profile (policy disabled)", s.Profile))
	}
	s.Policy = p
	if o := strings.ToLower(strings.TrimSpace(os.Getenv("ONEX_SECRET_POLICY"))); o != "" {
		switch Policy(o) {
		case PolicyDisabled, PolicyBestEffort, PolicyRequired:
			s.Policy, s.PolicyFrom = Policy(o), "ONEX_SECRET_POLICY"
		default:
			return s, errors.New("infisical: ONEX_SECRET_POLICY must be disabled, best_effort or required")
		}
	}
	t, err := config.Duration("INFISICAL_TIMEOUT_SECONDS", time.Second, DefaultTimeout)
	if err != nil {
		return s, err
	}
	if t <= 0 {
		return s, errors.New("infisical: INFISICAL_TIMEOUT_SECONDS must be > 0")
	}
	s.Timeout = t
	return s, nil
}

// Unset names the bootstrap variables that are empty; prefetch runs only
// when there are none (spec 11.1: all of them are needed).
func (s Settings) Unset() []string {
	var out []string
	for i, v := range []string{s.Addr, s.ClientID, s.ClientSecret.Reveal(), s.ProjectID} {
		if v == "" {
			out = append(out, bootstrapVars[i])
		}
	}
	return out
}
