module github.com/omninode/onex-fleet/services/projector-effect

go 1.26.8

require github.com/omninode/onex-fleet/pkg v0.0.0

replace github.com/omninode/onex-fleet/pkg => ../../pkg
