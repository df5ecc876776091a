# syntax=docker/dockerfile:1
#
# Image of the ONEX fleet service `reducer`. Build from the repository root
# (the context is the whole workspace; .dockerignore trims it):
#
#   docker build -f deploy/docker/reducer.Dockerfile -t onex-fleet/reducer .
#
# NOT BUILT HERE: the development and CI machines of this repo have no Docker
# engine, so this file is only checked statically by deploy/chartcheck
# (TestDockerfiles: the cmd path exists, go.work and every workspace module
# reach the build context, static build, distroless nonroot final stage).
# The four service Dockerfiles are identical except for the service name; the
# same test fails when they drift apart.

ARG GO_VERSION=1.26.8

# ---- build: a static binary from the go.work workspace ----------------------
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOOS=linux GOFLAGS=-buildvcs=false
# The whole workspace: go.work names every module, and workspace mode needs
# each of them (pkg/ and the service are what the binary is built from).
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/reducer ./services/reducer/cmd/reducer
# Contracts (ONEX_CONTRACTS_DIR), if the repo has any; an empty dir otherwise.
RUN mkdir -p /out/contracts && if [ -d contracts ]; then cp -R contracts/. /out/contracts/; fi

# ---- run: distroless, no shell, uid 65532 ----------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="onex-fleet-reducer" \
      org.opencontainers.image.source="https://github.com/omninode/onex-fleet"
COPY --from=build /out/reducer /usr/local/bin/reducer
COPY --from=build /out/contracts /etc/onex/contracts
ENV ONEX_CONTRACTS_DIR=/etc/onex/contracts \
    ONEX_HTTP_PORT=8085
USER nonroot:nonroot
# HTTP: /healthz, /readyz, /metrics
EXPOSE 8085
ENTRYPOINT ["/usr/local/bin/reducer"]
