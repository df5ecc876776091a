package grpcsec

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Names are what the caller calls its TLS settings (flags, variables), for
// the hints in Explain's lines. Empty names get generic words.
type Names struct {
	CAFile, CertFile, ServerName string
}

// Explain turns the error of a call into one line an operator can act on,
// and reports whether the server refused the caller's credentials
// (Unauthenticated, PermissionDenied: the line is then the code and the
// server's message). A TLS handshake that failed is named for what went
// wrong (an untrusted or misnamed server certificate, a client certificate
// the server refused, a server that does not speak TLS) instead of gRPC's
// "connection error: desc = transport: authentication handshake failed:
// …". Any other error is "<code>: <message>".
//
// gRPC hands the handshake's error to the call as text only, so the
// failures are recognised by crypto/tls's and crypto/x509's fixed words.
func Explain(err error, n Names) (line string, refused bool) {
	if err == nil {
		return "", false
	}
	s, ok := status.FromError(err)
	if !ok {
		return err.Error(), false
	}
	msg := s.Message()
	switch s.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return s.Code().String() + ": " + msg, true
	case codes.Unavailable, codes.DeadlineExceeded:
		if why := handshakeFailure(msg, n); why != "" {
			return "cannot connect: " + why, false
		}
	}
	return s.Code().String() + ": " + msg, false
}

// handshakeFailure names the TLS failure msg reports, "" when it reports
// none.
func handshakeFailure(msg string, n Names) string {
	ca := orDefault(n.CAFile, "the CA file")
	switch {
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return "the server's certificate is not signed by a trusted CA (" + ca + ", else the system roots)"
	case strings.Contains(msg, "x509: certificate is valid for"), strings.Contains(msg, "x509: certificate is not valid for any names"):
		return "the server's certificate is for another name (" + x509Reason(msg) + "): dial a name it holds or set " +
			orDefault(n.ServerName, "the server name")
	case strings.Contains(msg, "x509: certificate has expired or is not yet valid"):
		return "the server's certificate is not valid (" + x509Reason(msg) + ")"
	case strings.Contains(msg, "remote error: tls: "):
		alert := msg[strings.Index(msg, "remote error: tls: ")+len("remote error: "):]
		alert = strings.TrimRight(strings.SplitN(alert, "\"", 2)[0], " ")
		return "the server refused the TLS handshake (" + alert + "): it wants a client certificate (" +
			orDefault(n.CertFile, "the client certificate") + ") signed by a CA it trusts"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the server does not speak TLS: connect without the TLS settings, or check the address"
	case strings.Contains(msg, "error reading server preface"):
		return "the server closed the connection during setup: if it speaks TLS, give its CA (" + ca + "); if it does not, drop the TLS settings"
	case strings.Contains(msg, "authentication handshake failed"):
		return "the TLS handshake failed (" + x509Reason(msg) + ")"
	}
	return ""
}

// x509Reason is the part of msg from crypto's own words on ("x509: …",
// "tls: …"), without gRPC's wrapping and quotes.
func x509Reason(msg string) string {
	for _, p := range []string{"x509: ", "tls: "} {
		if i := strings.Index(msg, p); i >= 0 {
			return strings.TrimRight(strings.SplitN(msg[i:], "\"", 2)[0], " ")
		}
	}
	return msg
}
