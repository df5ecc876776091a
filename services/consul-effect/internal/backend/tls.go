package backend

import (
	"strings"

	"github.com/omninode/onex-fleet/pkg/config"
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
		if _, err := config.LoadCAPool(infraerr.TransportConsul, "CONSUL_CACERT", s.CACert); err != nil {
			return err
		}
	}
	switch {
	case s.ClientCert == "" && s.ClientKey == "":
	case s.ClientCert == "" || s.ClientKey == "":
		return tlsConfigErr("CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY go together: set both or neither", nil)
	default:
		if _, err := config.LoadKeyPair(infraerr.TransportConsul, "CONSUL_CLIENT_CERT", s.ClientCert, "CONSUL_CLIENT_KEY", s.ClientKey); err != nil {
			return err
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

// tlsConfigErr is a configuration error of the TLS settings. Its message
// holds variable and file names only, so it is Vouched: a path under
// /run/secrets would otherwise blank it whole.
func tlsConfigErr(msg string, cause error) error {
	return infraerr.Vouched(infraerr.KindConfiguration, infraerr.Context{Transport: infraerr.TransportConsul, Operation: "configure"},
		"config: "+msg, cause)
}
