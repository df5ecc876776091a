module github.com/omninode/onex-fleet/cmd/onexctl

go 1.26.8

require (
	github.com/omninode/onex-fleet/pkg v0.0.0
	github.com/omninode/onex-fleet/services/reducer v0.0.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

replace github.com/omninode/onex-fleet/pkg => ../../pkg

replace github.com/omninode/onex-fleet/services/reducer => ../../services/reducer
