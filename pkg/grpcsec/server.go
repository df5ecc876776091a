package grpcsec

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ServerOptions are the options of a server with settings s guarded by g:
// TLS credentials when s has a certificate (plaintext otherwise, as before
// these settings existed) and g's interceptors. The certificate files are
// read now.
func ServerOptions(s ServerSettings, g *Guard) ([]grpc.ServerOption, error) {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(g.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(g.StreamInterceptor()),
	}
	cfg, err := s.TLSConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	return opts, nil
}
