// Command consul-effect is one of the four ONEX registration fleet services; see
// docs/architecture.md. All logic lives in internal/app so tests reach it.
package main

import (
	"os"

	"github.com/omninode/onex-fleet/services/consul-effect/internal/app"
)

func main() { os.Exit(app.Main()) }
