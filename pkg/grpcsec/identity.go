package grpcsec

import (
	"context"
	"crypto/x509"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Identities are the names a client certificate may be known by in
// ONEX_GRPC_ADMIN_SUBJECTS: its Subject CN, then every DNS, URI and email
// SAN, in that order, without duplicates. A CN is listed because many
// internal CAs put the client's name there only; SANs because SPIFFE and
// cert-manager identities are URIs or DNS names.
func Identities(cert *x509.Certificate) []string {
	if cert == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(cert.Subject.CommonName)
	for _, d := range cert.DNSNames {
		add(d)
	}
	for _, u := range cert.URIs {
		add(u.String())
	}
	for _, e := range cert.EmailAddresses {
		add(e)
	}
	return out
}

// verifiedPeer returns the client certificate of the call when the TLS
// handshake verified it against the client CA, else nil. A certificate that
// was sent but not verified (no client CA configured) is never returned:
// anyone can put any name in a certificate of their own.
func verifiedPeer(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	return info.State.PeerCertificates[0]
}

// peerAddr is the call's remote address, "" when unknown.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
