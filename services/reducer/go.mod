module github.com/omninode/onex-fleet/services/reducer

go 1.26.8

require (
	github.com/omninode/onex-fleet/pkg v0.0.0
	github.com/omninode/onex-fleet/proto v0.0.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/google/uuid v1.6.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)

replace github.com/omninode/onex-fleet/pkg => ../../pkg

replace github.com/omninode/onex-fleet/proto => ../../proto
