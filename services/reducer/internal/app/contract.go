package app

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/omninode/onex-fleet/services/reducer/decide"
)

type contractFile struct {
	Name         string `yaml:"name"`
	StateMachine struct {
		Initial     string              `yaml:"initial"`
		States      []decide.State      `yaml:"states"`
		Transitions []decide.Transition `yaml:"transitions"`
	} `yaml:"state_machine"`
}

// CheckContract loads the reducer's contract and compares its state machine
// with the decision code's. It returns an error naming every difference.
func CheckContract(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read contract: %w", err)
	}
	var c contractFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("contract %s: %w", path, err)
	}
	if c.Name != "reducer" {
		return fmt.Errorf("contract %s: name is %q, want reducer", path, c.Name)
	}
	if c.StateMachine.Initial != string(decide.None) {
		return fmt.Errorf("contract %s: state_machine.initial is %q, want %q", path, c.StateMachine.Initial, decide.None)
	}
	if err := decide.CheckFSM(c.StateMachine.States, c.StateMachine.Transitions); err != nil {
		return fmt.Errorf("contract %s: %w", path, err)
	}
	return nil
}
