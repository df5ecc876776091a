package grpcsec

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// ClientSettings is how a client reaches a server secured by
// ServerSettings. The zero value is plaintext without credentials, the way
// clients dialled before TLS existed. The names of the flags or variables
// the fields came from are the caller's (onexctl's); errors name the files.
type ClientSettings struct {
	// TLS asks for TLS even when no other field does (the server's
	// certificate then chains to the system roots).
	TLS bool
	// CAFile holds the PEM certificates the server's certificate must
	// chain to; empty: the system roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its
	// unencrypted key, both or neither (for a server with mTLS).
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must hold when it is
	// not the target's host.
	ServerName string
	// Token is sent as "authorization: Bearer <token>" on every call.
	Token config.Secret
}

// UsesTLS reports whether the client speaks TLS: asked for, or implied by
// any TLS setting.
func (c ClientSettings) UsesTLS() bool {
	return c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// ErrTokenNeedsTLS is returned by DialOptions for a token to be sent in
// plaintext to a host other than this one.
var ErrTokenNeedsTLS = errors.New("a bearer token is only sent over TLS, or in plaintext to a loopback address; give the server's CA (or ask for TLS) or connect on this host")

// DialOptions are the options to dial target with: TLS credentials (TLS
// 1.2+, the server verified against CAFile or the system roots and its
// name, the client certificate when given) or plaintext when no TLS setting
// is given, and the token as per-call credentials. A token is refused over
// plaintext unless target is a loopback address, where it never leaves the
// host (the explicit opt-in that lets gRPC send it without transport
// security). The files are read now.
func (c ClientSettings) DialOptions(target string) ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	secure := c.UsesTLS()
	if secure {
		cfg, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.Token != "" {
		if !secure && !Loopback(target) {
			return nil, ErrTokenNeedsTLS
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken{token: c.Token, requireTLS: secure}))
	}
	return opts, nil
}

func (c ClientSettings) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pool, err := config.LoadCAPool(infraerr.TransportGRPC, "CA file", c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case c.CertFile == "" && c.KeyFile == "":
	case c.CertFile == "" || c.KeyFile == "":
		return nil, configErr("a client certificate and its key go together: give both or neither", nil)
	default:
		pair, err := config.LoadKeyPair(infraerr.TransportGRPC, "client certificate", c.CertFile, "key", c.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Loopback reports whether a gRPC target ("host:port", optionally with the
// dns:/// or passthrough:/// scheme, or a unix socket) stays on this host.
func Loopback(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	for _, scheme := range []string{"dns:///", "passthrough:///"} {
		target = strings.TrimPrefix(target, scheme)
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String sums the settings up without the token.
func (c ClientSettings) String() string {
	if !c.UsesTLS() {
		return fmt.Sprintf("plaintext, token set: %v", c.Token != "")
	}
	return fmt.Sprintf("TLS, CA %s, client certificate %s, server name %s, token set: %v",
		orDefault(c.CAFile, "system roots"), orDefault(c.CertFile, "none"), orDefault(c.ServerName, "the target's host"), c.Token != "")
}

// GoString keeps %#v from printing the token.
func (c ClientSettings) GoString() string { return "grpcsec.ClientSettings{" + c.String() + "}" }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
