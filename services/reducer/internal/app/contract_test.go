package app

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/expect"
)

func loadContract(t *testing.T, dir string) *contract.Contract {
	t.Helper()
	c, err := contract.Load(contract.Path(dir, expect.Service), expect.Contract())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestShippedContract: the repository's contract agrees with the code, and
// its parameters and retry policy are the spec's defaults.
func TestShippedContract(t *testing.T) {
	c := loadContract(t, testkit.ContractsDir(t))
	s, err := LoadSettings(&config.Config{Environment: "dev"}, c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Params != decide.DefaultParams() {
		t.Errorf("params from the contract %+v, want the spec defaults %+v", s.Params, decide.DefaultParams())
	}
	want := retry.Policy{MaxAttempts: 10, Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
	if s.Retry != want {
		t.Errorf("retry %+v, want %+v", s.Retry, want)
	}
}

// TestSettingsFromContract: parameters come from the contract, and the
// environment overrides them.
func TestSettingsFromContract(t *testing.T) {
	dir := testkit.EditedContracts(t, expect.Service, "ack_timeout_seconds: 30", "ack_timeout_seconds: 45")
	c := loadContract(t, dir)
	s, err := LoadSettings(&config.Config{Environment: "dev"}, c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Params.AckTimeout != 45*time.Second {
		t.Errorf("ack timeout %v, want the contract's 45s", s.Params.AckTimeout)
	}
	t.Setenv("ONEX_ACK_TIMEOUT_SECONDS", "12")
	t.Setenv("ONEX_MASS_EXPIRY_MIN_ACTIVE", "3")
	if s, err = LoadSettings(&config.Config{Environment: "dev"}, c); err != nil {
		t.Fatal(err)
	}
	if s.Params.AckTimeout != 12*time.Second || s.Params.MassExpiryMinActive != 3 || s.Params.LivenessWindow != 90*time.Second {
		t.Errorf("params %+v: want the environment over the contract", s.Params)
	}
}

// TestRefusesBrokenContract runs the reducer binary on contracts whose state
// machine lacks a transition the code makes: it must exit 2 at once, saying
// so in one log line.
func TestRefusesBrokenContract(t *testing.T) {
	dir := testkit.EditedContracts(t, expect.Service, "    - {from: active,           trigger: tick,          to: liveness_expired}\n", "")
	bin := testkit.BuildCommand(t, "github.com/omninode/onex-fleet/services/reducer/cmd/reducer")
	code, out := testkit.RunToExit(t, bin, []string{"ONEX_CONTRACTS_DIR=" + dir, "ONEX_REDUCER_CONTRACT=", "OMNIBASE_ENV_FILE=/nonexistent",
		"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1"}, time.Minute)
	if code != 2 {
		t.Fatalf("exit code %d, want 2; output:\n%s", code, out)
	}
	assertOneErrorLine(t, out, contract.Path(dir, expect.Service), "transition active --tick--> liveness_expired is made by the code but not declared")
}

// assertOneErrorLine checks that out has exactly one ERROR log line and that
// it contains every want.
func assertOneErrorLine(t *testing.T, out string, wants ...string) {
	t.Helper()
	var errs []string
	for _, l := range strings.Split(out, "\n") {
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Level == "ERROR" {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("%d ERROR lines, want 1; output:\n%s", len(errs), out)
	}
	for _, w := range wants {
		if !strings.Contains(errs[0], w) {
			t.Errorf("error line %s does not say %q", errs[0], w)
		}
	}
}
