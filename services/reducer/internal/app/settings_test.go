package app

import (
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
)

func TestLoadSettingsMassExpiryShare(t *testing.T) {
	cases := []struct {
		val     string
		want    float64
		wantErr string
	}{
		{"", 0.30, ""},
		{"0.5", 0.5, ""},
		{"0.05", 0.05, ""},
		{"1", 0, "within (0,1)"},
		{"0", 0, "within (0,1)"},
		{"lots", 0, "not a number"},
	}
	for _, c := range cases {
		t.Run(c.val, func(t *testing.T) {
			t.Setenv("ONEX_MASS_EXPIRY_SHARE", c.val)
			s, err := LoadSettings(&config.Config{Environment: "local"}, loadContract(t, testkit.ContractsDir(t)))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Params.MassExpiryShare != c.want {
				t.Errorf("share %v, want %v", s.Params.MassExpiryShare, c.want)
			}
		})
	}
}

func TestSnapshotsTopicSetting(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", topics.RegistrationSnapshots},
		{"onex.snapshot.bench01.registration-snapshots.v1", "onex.snapshot.bench01.registration-snapshots.v1"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Setenv("ONEX_REGISTRATION_SNAPSHOTS_TOPIC", tc.env)
			s, err := LoadSettings(&config.Config{Environment: "local"}, loadContract(t, testkit.ContractsDir(t)))
			if err != nil {
				t.Fatal(err)
			}
			if s.SnapshotsTopic != tc.want {
				t.Fatalf("SnapshotsTopic = %q, want %q", s.SnapshotsTopic, tc.want)
			}
		})
	}
}
