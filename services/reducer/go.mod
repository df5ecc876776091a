module github.com/omninode/onex-fleet/services/reducer

go 1.26.8

require github.com/omninode/onex-fleet/pkg v0.0.0

require github.com/google/uuid v1.6.0 // indirect

replace github.com/omninode/onex-fleet/pkg => ../../pkg
