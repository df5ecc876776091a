// Command onexctl is the operator CLI of the ONEX registration fleet.
// Run `onexctl help` for the commands.
package main

import (
	"os"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/cli"
)

func main() { os.Exit(cli.Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
