package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repoContract(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../../../contracts/reducer/contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestShippedContractMatchesCode(t *testing.T) {
	if err := CheckContract(repoContract(t)); err != nil {
		t.Fatalf("contracts/reducer/contract.yaml disagrees with the decision code: %v", err)
	}
}

func TestContractThatDisagreesIsRefused(t *testing.T) {
	orig, err := os.ReadFile(repoContract(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"missing transition", "    - {from: active,           trigger: tick,          to: liveness_expired}\n", "",
			"transition active --tick--> liveness_expired is made by the code but not declared"},
		{"extra transition", "    - {from: active,           trigger: tick,          to: liveness_expired}\n",
			"    - {from: active,           trigger: tick,          to: liveness_expired}\n    - {from: active, trigger: ack, to: rejected}\n",
			"transition active --ack--> rejected is declared but the code never makes it"},
		{"unknown state", "    - liveness_expired\n", "    - liveness_expired\n    - zombie\n", `state "zombie" is declared but unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := strings.Replace(string(orig), tt.from, tt.to, 1)
			if changed == string(orig) {
				t.Fatal("test did not change the contract")
			}
			p := filepath.Join(t.TempDir(), "contract.yaml")
			os.WriteFile(p, []byte(changed), 0o644)
			err := CheckContract(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}
