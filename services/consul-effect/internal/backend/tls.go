package backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// The TLS side of the settings: which scheme they select, the check of the
// files they name before anything connects, and the settings that work but
// deserve a look.

// Scheme is the scheme the client uses: https when CONSUL_HTTP_SSL is true
// or CONSUL_HTTP_ADDR starts with https://, else http.
func (s Settings) Scheme() string {
	if s.SSL || strings.HasPrefix(s.Addr, "https://") {
		return "https"
	}
	return "http"
}

// CheckTLS checks, when the client uses TLS, that the files the settings
// name can be read and are what they should be: CONSUL_CACERT a PEM
// certificate, CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY (both or neither) a
// certificate and its matching unencrypted key. The error is a
// configuration error naming the variable and the file, never a file's
// content. Over http the files are not used and not checked (TLSWarnings
// says so).
func (s Settings) CheckTLS() error {
	if s.Scheme() != "https" {
		return nil
	}
	if s.CACert != "" {
		pem, err := readNamed("CONSUL_CACERT", s.CACert)
		if err != nil {
			return err
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return tlsConfigErr(fmt.Sprintf("CONSUL_CACERT %s holds no PEM certificate", s.CACert), nil)
		}
	}
	switch {
	case s.ClientCert == "" && s.ClientKey == "":
	case s.ClientCert == "" || s.ClientKey == "":
		return tlsConfigErr("CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY go together: set both or neither", nil)
	default:
		certPEM, err := readNamed("CONSUL_CLIENT_CERT", s.ClientCert)
		if err != nil {
			return err
		}
		keyPEM, err := readNamed("CONSUL_CLIENT_KEY", s.ClientKey)
		if err != nil {
			return err
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			// crypto/tls says what is wrong in fixed words ("private key
			// does not match public key"), never with the key's bytes.
			return tlsConfigErr(fmt.Sprintf("CONSUL_CLIENT_CERT %s and CONSUL_CLIENT_KEY %s are no PEM certificate and matching unencrypted key (%s)",
				s.ClientCert, s.ClientKey, err), err)
		}
	}
	return nil
}

// TLSWarnings are settings that work but deserve a look: TLS files or a
// server name that http ignores, certificate checks turned off. They name
// variables only.
func (s Settings) TLSWarnings() []string {
	var w []string
	if s.Scheme() != "https" {
		for _, f := range []struct{ name, v string }{{"CONSUL_CACERT", s.CACert}, {"CONSUL_CLIENT_CERT", s.ClientCert},
			{"CONSUL_CLIENT_KEY", s.ClientKey}, {"CONSUL_TLS_SERVER_NAME", s.TLSServerName}} {
			if f.v != "" {
				w = append(w, f.name+" is ignored: Consul is reached over http (set CONSUL_HTTP_SSL=true or an https:// CONSUL_HTTP_ADDR)")
			}
		}
		return w
	}
	if s.InsecureSkipVerify {
		w = append(w, "CONSUL_HTTP_SSL_VERIFY=false: Consul's certificate is not checked (for development only)")
	}
	return w
}

// readNamed reads the file a variable names; the error names both and the
// operating system's reason.
func readNamed(name, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		reason := "cannot be read"
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason += " (" + pe.Err.Error() + ")"
		}
		return nil, tlsConfigErr(fmt.Sprintf("%s %s %s", name, path, reason), err)
	}
	return b, nil
}

// tlsConfigErr is a configuration error of the TLS settings. Its message
// holds variable and file names only, so it is Vouched: a path under
// /run/secrets would otherwise blank it whole.
func tlsConfigErr(msg string, cause error) error {
	return infraerr.Vouched(infraerr.KindConfiguration, infraerr.Context{Transport: infraerr.TransportConsul, Operation: "configure"},
		"config: "+msg, cause)
}
