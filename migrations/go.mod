module github.com/omninode/onex-fleet/migrations

go 1.26.8
