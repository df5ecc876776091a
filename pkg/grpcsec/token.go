package grpcsec

import (
	"context"

	"github.com/omninode/onex-fleet/pkg/config"
)

// bearerToken sends a token as "authorization: Bearer <token>" on every
// call (credentials.PerRPCCredentials).
type bearerToken struct {
	token config.Secret
	// requireTLS is false only for a plaintext loopback target: gRPC
	// refuses to send credentials that require transport security over a
	// connection that has none.
	requireTLS bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token.Reveal()}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.requireTLS }
