// Package grpcsec secures a gRPC server and its clients: TLS, optional
// client certificates (mTLS), and admin authorisation by bearer token or
// client-certificate identity, with every refusal counted and logged. The
// server side reads its settings from ONEX_GRPC_* variables; the client side
// takes its settings from the caller (onexctl's flags).
package grpcsec

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// The server's variables (docs/configuration.md, projector-effect).
const (
	EnvTLSCertFile   = "ONEX_GRPC_TLS_CERT_FILE"
	EnvTLSKeyFile    = "ONEX_GRPC_TLS_KEY_FILE"
	EnvClientCAFile  = "ONEX_GRPC_CLIENT_CA_FILE"
	EnvAdminToken    = "ONEX_GRPC_ADMIN_TOKEN"
	EnvAdminSubjects = "ONEX_GRPC_ADMIN_SUBJECTS"
)

// minTokenLength is the length below which an admin token is warned about:
// a short token can be guessed by a client allowed to try.
const minTokenLength = 16

// ServerSettings is how a gRPC server encrypts and whom it lets call admin
// methods. The zero value is today's plaintext server with admin calls
// refused.
//
// It never prints the token: String, GoString, LogValue and JSON show file
// names, subjects and whether a token is set.
type ServerSettings struct {
	// CertFile and KeyFile are ONEX_GRPC_TLS_CERT_FILE and
	// ONEX_GRPC_TLS_KEY_FILE: the server's PEM certificate (chain) and its
	// unencrypted key, both or neither. Set, the server speaks TLS 1.2+ only.
	CertFile, KeyFile string
	// ClientCAFile is ONEX_GRPC_CLIENT_CA_FILE: the PEM certificates a
	// client certificate must chain to. Set, every method but gRPC health
	// needs a verified client certificate. Requires TLS.
	ClientCAFile string
	// AdminToken is ONEX_GRPC_ADMIN_TOKEN: a bearer token
	// ("authorization: Bearer <token>") that authorises admin calls.
	AdminToken config.Secret
	// AdminSubjects is ONEX_GRPC_ADMIN_SUBJECTS: client-certificate
	// identities (Subject CN, DNS, URI or email SAN, matched exactly) that
	// may call admin methods.
	AdminSubjects []string
}

// LoadServerSettings reads the ONEX_GRPC_* security variables and validates
// them (Validate). File names and subjects are trimmed; the token is taken
// as it is, and refused if it has blanks around it.
func LoadServerSettings() (ServerSettings, error) {
	env := func(name string) string { return strings.TrimSpace(os.Getenv(name)) }
	s := ServerSettings{
		CertFile:     env(EnvTLSCertFile),
		KeyFile:      env(EnvTLSKeyFile),
		ClientCAFile: env(EnvClientCAFile),
		AdminToken:   config.Secret(os.Getenv(EnvAdminToken)),
	}
	for _, sub := range strings.Split(os.Getenv(EnvAdminSubjects), ",") {
		if sub = strings.TrimSpace(sub); sub != "" {
			s.AdminSubjects = append(s.AdminSubjects, sub)
		}
	}
	return s, s.Validate()
}

// TLS reports whether the server speaks TLS.
func (s ServerSettings) TLS() bool { return s.CertFile != "" || s.KeyFile != "" }

// MutualTLS reports whether the server verifies client certificates.
func (s ServerSettings) MutualTLS() bool { return s.ClientCAFile != "" }

// AdminEnabled reports whether any admin credential is configured; without
// one every admin call is refused.
func (s ServerSettings) AdminEnabled() bool {
	return s.AdminToken != "" || len(s.AdminSubjects) > 0
}

// Validate checks the settings as a whole, the way the server checks them at
// start: key and certificate together and matching, a client CA only with
// TLS and holding a certificate, a token gRPC can carry. The error is a
// configuration error naming the variable and the file, never the token.
func (s ServerSettings) Validate() error {
	if tok := s.AdminToken.Reveal(); tok != "" {
		if strings.TrimSpace(tok) != tok {
			return configErr(EnvAdminToken+" begins or ends with blanks (an env file's quoting?); set it without them", nil)
		}
		for _, r := range tok {
			// gRPC metadata values are printable ASCII; anything else
			// could never be sent by a client.
			if r < 0x20 || r > 0x7e {
				return configErr(EnvAdminToken+" must be printable ASCII (a bearer token gRPC metadata can carry)", nil)
			}
		}
	}
	if s.MutualTLS() && !s.TLS() {
		return configErr(fmt.Sprintf("%s needs TLS: set %s and %s too", EnvClientCAFile, EnvTLSCertFile, EnvTLSKeyFile), nil)
	}
	_, err := s.TLSConfig()
	return err
}

// TLSConfig builds the server's TLS configuration, nil without TLS: TLS 1.2
// or newer, the server's certificate, and with a client CA, client
// certificates verified when given. They are verified "if given" rather
// than required so that gRPC health stays reachable for probes that hold
// no certificate; the interceptors require one on every other method.
// The files are read at each call, so a restart takes renewed files.
func (s ServerSettings) TLSConfig() (*tls.Config, error) {
	if !s.TLS() {
		return nil, nil
	}
	if s.CertFile == "" || s.KeyFile == "" {
		return nil, configErr(fmt.Sprintf("%s and %s go together: set both or neither", EnvTLSCertFile, EnvTLSKeyFile), nil)
	}
	pair, err := config.LoadKeyPair(infraerr.TransportGRPC, EnvTLSCertFile, s.CertFile, EnvTLSKeyFile, s.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if s.MutualTLS() {
		pool, err := config.LoadCAPool(infraerr.TransportGRPC, EnvClientCAFile, s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// Warnings are settings that work but deserve a look. They name variables
// only.
func (s ServerSettings) Warnings() []string {
	var w []string
	if s.AdminToken != "" && !s.TLS() {
		w = append(w, fmt.Sprintf("%s is set without TLS (%s, %s): the token crosses the network unencrypted", EnvAdminToken, EnvTLSCertFile, EnvTLSKeyFile))
	}
	if s.AdminToken != "" && len(s.AdminToken.Reveal()) < minTokenLength {
		w = append(w, fmt.Sprintf("%s is shorter than %d characters: easy to guess", EnvAdminToken, minTokenLength))
	}
	if len(s.AdminSubjects) > 0 && !s.MutualTLS() {
		w = append(w, fmt.Sprintf("%s is set without %s: no client certificate is verified, so no subject can match", EnvAdminSubjects, EnvClientCAFile))
	}
	return w
}

// String sums the settings up: "plaintext", "TLS" or "mTLS", and how admin
// calls are authorised.
func (s ServerSettings) String() string {
	mode := s.mode()
	var admin []string
	if s.AdminToken != "" {
		admin = append(admin, "token")
	}
	if len(s.AdminSubjects) > 0 {
		admin = append(admin, fmt.Sprintf("%d subjects", len(s.AdminSubjects)))
	}
	if len(admin) == 0 {
		return mode + ", admin disabled"
	}
	return mode + ", admin by " + strings.Join(admin, " or ")
}

func (s ServerSettings) mode() string {
	switch {
	case s.MutualTLS():
		return "mTLS"
	case s.TLS():
		return "TLS"
	}
	return "plaintext"
}

// GoString keeps %#v from printing the fields one by one.
func (s ServerSettings) GoString() string { return "grpcsec.ServerSettings{" + s.String() + "}" }

// LogValue shows file names, subjects and whether a token is set.
func (s ServerSettings) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("mode", s.mode())}
	if s.CertFile != "" {
		attrs = append(attrs, slog.String("cert_file", s.CertFile))
	}
	if s.ClientCAFile != "" {
		attrs = append(attrs, slog.String("client_ca_file", s.ClientCAFile))
	}
	attrs = append(attrs, slog.Bool("admin_token_set", s.AdminToken != ""))
	if len(s.AdminSubjects) > 0 {
		attrs = append(attrs, slog.String("admin_subjects", strings.Join(s.AdminSubjects, ",")))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON is String as a JSON string.
func (s ServerSettings) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// configErr is a configuration error of the gRPC security settings. Its
// message holds variable and file names only, so it is Vouched: the
// sanitizer would otherwise blank it for naming ONEX_GRPC_ADMIN_TOKEN.
func configErr(msg string, cause error) error {
	return infraerr.Vouched(infraerr.KindConfiguration,
		infraerr.Context{Transport: infraerr.TransportGRPC, Operation: "configure"}, "config: "+msg, cause)
}
