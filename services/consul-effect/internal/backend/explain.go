package backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// Explanations of the refusals an operator must act on: Consul refusing
// the ACL token, a server certificate the client does not trust, a scheme
// that does not match the listener. Each is one Vouched line naming the
// variable to check: Consul's and crypto/tls's own texts would be blanked
// whole by the sanitizer (they say "token" and "authority"), and an
// operator would read "[REDACTED - potentially sensitive data]".

// hints are the settings an explanation depends on (never their values).
type hints struct {
	token  bool // CONSUL_HTTP_TOKEN is set
	caFile bool // CONSUL_CACERT is set
}

// docRef is where the least policy and the TLS settings are explained.
const docRef = "(docs/consul-effect.md)"

// lacksRE reads the permission and resource out of Consul's "Permission
// denied" answer ("token with AccessorID '…' lacks permission 'service:write'
// on "onex-effect""): a rule name and a service or node name, public facts.
// Nothing else of Consul's text is kept.
var lacksRE = regexp.MustCompile(`lacks permission '([a-z]+:[a-z]+)' on "([A-Za-z0-9._:/-]{1,128})"`)

// explain returns the explanation of err when it is one of the refusals
// above, else nil.
func explain(op string, err error, h hints) *infraerr.Error {
	ctx := infraerr.Context{Transport: infraerr.TransportConsul, Operation: op, Target: Name}
	var (
		se        api.StatusError
		rolled    *TxnRolledBack
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		notTLS    tls.RecordHeaderError
		remote    *net.OpError
	)
	switch {
	case errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden):
		return infraerr.Vouched(infraerr.KindAuthentication, ctx, aclRefusal(se.Code, se.Body, h.token), err)
	case errors.As(err, &rolled) && rolled.Denied():
		return infraerr.Vouched(infraerr.KindAuthentication, ctx, aclRefusal(http.StatusConflict, rolled.Error(), h.token), err)
	case errors.As(err, &se) && se.Code == http.StatusBadRequest && strings.Contains(se.Body, "HTTP request to an HTTPS server"):
		return infraerr.Vouched(infraerr.KindConfiguration, ctx,
			"Consul's address speaks HTTPS: set CONSUL_HTTP_SSL=true or an https:// CONSUL_HTTP_ADDR", err)
	case errors.As(err, &unknownCA):
		msg := "Consul's certificate is not signed by CONSUL_CACERT"
		if !h.caFile {
			msg = "Consul's certificate is not signed by a CA the system trusts: set CONSUL_CACERT"
		}
		return infraerr.Vouched(infraerr.KindAuthentication, ctx, msg, err)
	case errors.As(err, &hostname):
		// crypto/x509 lists the names the certificate holds and the host
		// asked for: public facts.
		return infraerr.Vouched(infraerr.KindAuthentication, ctx, "Consul's certificate is for another host ("+hostname.Error()+
			"): set CONSUL_TLS_SERVER_NAME to a name it holds, or use that name in CONSUL_HTTP_ADDR", err)
	case errors.As(err, &invalid):
		return infraerr.Vouched(infraerr.KindAuthentication, ctx, "Consul's certificate is not valid ("+invalid.Error()+")", err)
	case errors.As(err, &notTLS) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return infraerr.Vouched(infraerr.KindConfiguration, ctx,
			"Consul's address does not speak HTTPS: check CONSUL_HTTP_SSL and CONSUL_HTTP_ADDR", err)
	case errors.As(err, &remote) && remote.Op == "remote error":
		// A TLS alert from Consul: crypto/tls names it in fixed words
		// ("tls: certificate required").
		return infraerr.Vouched(infraerr.KindAuthentication, ctx, "Consul refused the TLS handshake ("+remote.Err.Error()+
			"): an agent that verifies clients needs CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY signed by a CA it trusts", err)
	}
	return nil
}

// aclRefusal is the line for a 401 or 403: what Consul said, in its fixed
// words, and the permission it found missing.
func aclRefusal(code int, body string, token bool) string {
	var reason string
	switch {
	case strings.Contains(body, "ACL not found"):
		reason = "ACL not found: Consul does not know it"
	case strings.Contains(body, "Permission denied"):
		reason = "Permission denied"
		if m := lacksRE.FindStringSubmatch(body); m != nil {
			who := "it"
			if !token {
				who = "anonymous"
			}
			reason += fmt.Sprintf(": %s lacks %s on %q", who, m[1], m[2])
		}
	default:
		reason = http.StatusText(code)
	}
	switch {
	case !token:
		return fmt.Sprintf("Consul refused the request without an ACL token (%d %s): set CONSUL_HTTP_TOKEN %s", code, reason, docRef)
	case strings.HasPrefix(reason, "ACL not found"):
		return fmt.Sprintf("Consul refused the ACL token (%d %s): check CONSUL_HTTP_TOKEN %s", code, reason, docRef)
	}
	return fmt.Sprintf("Consul refused the ACL token (%d %s): check CONSUL_HTTP_TOKEN and its policy %s", code, reason, docRef)
}
