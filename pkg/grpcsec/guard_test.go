package grpcsec

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const (
	adminService = "onex.registry.v1.AdminService"
	readService  = "onex.registry.v1.RegistryService"
	adminMethod  = "/" + adminService + "/DeregisterNode"
	readMethod   = "/" + readService + "/ListNodes"
	healthMethod = "/grpc.health.v1.Health/Check"
)

func TestIdentities(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://fleet/ns/ops/sa/admin")
	tests := []struct {
		name string
		cert *x509.Certificate
		want []string
	}{
		{"nil", nil, nil},
		{"cn only", &x509.Certificate{Subject: pkix.Name{CommonName: "onexctl-admin"}}, []string{"onexctl-admin"}},
		{"cn and every san kind, cn repeated as a dns name", &x509.Certificate{Subject: pkix.Name{CommonName: "ops.example"},
			DNSNames: []string{"ops.example", "ops2.example"}, URIs: []*url.URL{spiffe}, EmailAddresses: []string{"ops@example.org"}},
			[]string{"ops.example", "ops2.example", "spiffe://fleet/ns/ops/sa/admin", "ops@example.org"}},
		{"no name at all", &x509.Certificate{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Identities(tt.cert); !slices.Equal(got, tt.want) {
				t.Errorf("Identities = %q, want %q", got, tt.want)
			}
		})
	}
}

// callCtx is the context of an incoming call: from a peer with the
// certificate cert (verified unless unverified), with the authorization
// metadata auth (none when nil).
func callCtx(cert *x509.Certificate, unverified bool, auth []string) context.Context {
	state := tls.ConnectionState{}
	if cert != nil {
		state.PeerCertificates = []*x509.Certificate{cert}
		if !unverified {
			state.VerifiedChains = [][]*x509.Certificate{{cert}}
		}
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000},
		AuthInfo: credentials.TLSInfo{State: state},
	})
	md := metadata.MD{}
	for _, a := range auth {
		md.Append("authorization", a)
	}
	return metadata.NewIncomingContext(ctx, md)
}

func TestGuardDecisions(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://fleet/admin")
	adminCN := &x509.Certificate{Subject: pkix.Name{CommonName: "onexctl-admin"}}
	adminURI := &x509.Certificate{Subject: pkix.Name{CommonName: "whoever"}, URIs: []*url.URL{spiffe}}
	adminEmail := &x509.Certificate{EmailAddresses: []string{"ops@example.org"}}
	adminDNS := &x509.Certificate{DNSNames: []string{"ops.example"}}
	reader := &x509.Certificate{Subject: pkix.Name{CommonName: "reader"}, DNSNames: []string{"reader.example"}}
	prefixOnly := &x509.Certificate{Subject: pkix.Name{CommonName: "onexctl-admin-not"}}
	bearer := []string{"Bearer " + testToken}

	plain := ServerSettings{}
	tokenOnly := ServerSettings{CertFile: "c", KeyFile: "k", AdminToken: testToken}
	mtls := ServerSettings{CertFile: "c", KeyFile: "k", ClientCAFile: "ca", AdminToken: testToken,
		AdminSubjects: []string{"onexctl-admin", "spiffe://fleet/admin", "ops@example.org", "ops.example"}}
	subjectsOnly := ServerSettings{CertFile: "c", KeyFile: "k", ClientCAFile: "ca", AdminSubjects: []string{"onexctl-admin"}}
	mtlsNoAdmin := ServerSettings{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}

	tests := []struct {
		name       string
		s          ServerSettings
		method     string
		cert       *x509.Certificate
		unverified bool
		auth       []string
		code       codes.Code // codes.OK: allowed
		reason     string
		msg        string // substring of the refusal's message
	}{
		{name: "plaintext read", s: plain, method: readMethod, code: codes.OK},
		{name: "plaintext health", s: plain, method: healthMethod, code: codes.OK},
		{name: "plaintext admin is disabled", s: plain, method: adminMethod, code: codes.PermissionDenied, reason: ReasonAdminDisabled,
			msg: "admin calls are disabled on this server: set ONEX_GRPC_ADMIN_TOKEN or ONEX_GRPC_ADMIN_SUBJECTS"},
		{name: "admin disabled even with a token sent", s: mtlsNoAdmin, method: adminMethod, cert: reader, auth: bearer,
			code: codes.PermissionDenied, reason: ReasonAdminDisabled},

		{name: "token: admin with the token", s: tokenOnly, method: adminMethod, auth: bearer, code: codes.OK},
		{name: "token: lower-case scheme", s: tokenOnly, method: adminMethod, auth: []string{"bearer " + testToken}, code: codes.OK},
		{name: "token: wrong token", s: tokenOnly, method: adminMethod, auth: []string{"Bearer " + testToken + "x"},
			code: codes.PermissionDenied, reason: ReasonBadToken, msg: "the bearer token is not the admin token (ONEX_GRPC_ADMIN_TOKEN)"},
		{name: "token: a prefix of the token", s: tokenOnly, method: adminMethod, auth: []string{"Bearer " + testToken[:10]},
			code: codes.PermissionDenied, reason: ReasonBadToken},
		{name: "token: basic scheme", s: tokenOnly, method: adminMethod, auth: []string{"Basic " + testToken},
			code: codes.PermissionDenied, reason: ReasonBadToken, msg: `not "Bearer <token>"`},
		{name: "token: empty bearer", s: tokenOnly, method: adminMethod, auth: []string{"Bearer "},
			code: codes.PermissionDenied, reason: ReasonBadToken},
		{name: "token: two authorization values", s: tokenOnly, method: adminMethod, auth: []string{"Bearer " + testToken, "Bearer x"},
			code: codes.PermissionDenied, reason: ReasonBadToken},
		{name: "token: no credentials", s: tokenOnly, method: adminMethod, code: codes.Unauthenticated, reason: ReasonNoCredentials,
			msg: "admin calls need a bearer token (ONEX_GRPC_ADMIN_TOKEN)"},
		{name: "token: read needs nothing", s: tokenOnly, method: readMethod, code: codes.OK},
		{name: "token: an unverified certificate is no identity", s: ServerSettings{AdminSubjects: []string{"onexctl-admin"}},
			method: adminMethod, cert: adminCN, unverified: true, code: codes.Unauthenticated, reason: ReasonNoCredentials},

		{name: "mtls: read without a certificate", s: mtls, method: readMethod, code: codes.Unauthenticated,
			reason: ReasonNoClientCertificate, msg: "a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
		{name: "mtls: read with an unverified certificate", s: mtls, method: readMethod, cert: reader, unverified: true,
			code: codes.Unauthenticated, reason: ReasonNoClientCertificate},
		{name: "mtls: stream without a certificate", s: mtls, method: "/" + readService + "/WatchNodes", code: codes.Unauthenticated,
			reason: ReasonNoClientCertificate},
		{name: "mtls: health without a certificate", s: mtls, method: healthMethod, code: codes.OK},
		{name: "mtls: health watch without a certificate", s: mtls, method: "/grpc.health.v1.Health/Watch", code: codes.OK},
		{name: "mtls: read with a certificate", s: mtls, method: readMethod, cert: reader, code: codes.OK},
		{name: "mtls: admin without a certificate, even with the token", s: mtls, method: adminMethod, auth: bearer,
			code: codes.Unauthenticated, reason: ReasonNoClientCertificate},
		{name: "mtls: admin by CN", s: mtls, method: adminMethod, cert: adminCN, code: codes.OK},
		{name: "mtls: admin by URI SAN", s: mtls, method: adminMethod, cert: adminURI, code: codes.OK},
		{name: "mtls: admin by email SAN", s: mtls, method: adminMethod, cert: adminEmail, code: codes.OK},
		{name: "mtls: admin by DNS SAN", s: mtls, method: adminMethod, cert: adminDNS, code: codes.OK},
		{name: "mtls: admin subject with a wrong token", s: mtls, method: adminMethod, cert: adminCN, auth: []string{"Bearer nope"}, code: codes.OK},
		{name: "mtls: plain certificate", s: mtls, method: adminMethod, cert: reader, code: codes.PermissionDenied, reason: ReasonNotAuthorised,
			msg: `the client certificate "reader" is not allowed admin calls (ONEX_GRPC_ADMIN_SUBJECTS)`},
		{name: "mtls: a name that only starts like a subject", s: mtls, method: adminMethod, cert: prefixOnly,
			code: codes.PermissionDenied, reason: ReasonNotAuthorised},
		{name: "mtls: plain certificate with the token", s: mtls, method: adminMethod, cert: reader, auth: bearer, code: codes.OK},
		{name: "mtls: plain certificate with a wrong token", s: mtls, method: adminMethod, cert: reader, auth: []string{"Bearer nope"},
			code: codes.PermissionDenied, reason: ReasonBadToken},
		{name: "subjects only: a token is refused", s: subjectsOnly, method: adminMethod, cert: reader, auth: bearer,
			code: codes.PermissionDenied, reason: ReasonBadToken, msg: "this server takes no admin token"},
		{name: "mtls without admin: read", s: mtlsNoAdmin, method: readMethod, cert: reader, code: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			g := NewGuard(tt.s, []string{adminService}, m, slog.New(slog.NewJSONHandler(&logged, nil)))
			err := g.Authorize(callCtx(tt.cert, tt.unverified, tt.auth), tt.method)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code %v (%v), want %v", got, err, tt.code)
			}
			if strings.Contains(logged.String(), testToken) || (err != nil && strings.Contains(err.Error(), testToken)) {
				t.Errorf("the token was logged or answered:\n%s\n%v", logged.String(), err)
			}
			if tt.code == codes.OK {
				if n := testutil.CollectAndCount(m.Denied); n != 0 {
					t.Errorf("%d denial series for an allowed call", n)
				}
				return
			}
			if tt.msg != "" && !strings.Contains(status.Convert(err).Message(), tt.msg) {
				t.Errorf("message %q, want it to contain %q", status.Convert(err).Message(), tt.msg)
			}
			if v := testutil.ToFloat64(m.Denied.WithLabelValues(serviceOf(tt.method), tt.method, tt.reason)); v != 1 {
				t.Errorf("denied{%s,%s} = %v, want 1", tt.method, tt.reason, v)
			}
			line := logged.String()
			for _, want := range []string{`"msg":"grpc call refused"`, `"method":"` + tt.method + `"`, `"reason":"` + tt.reason + `"`, `"peer":"127.0.0.1:40000"`} {
				if !strings.Contains(line, want) {
					t.Errorf("log line lacks %s: %s", want, line)
				}
			}
			if tt.cert != nil && !tt.unverified && !strings.Contains(line, `"client_identity":"`+Identities(tt.cert)[0]) {
				t.Errorf("log line lacks the certificate's identity: %s", line)
			}
		})
	}
}

func TestServiceOf(t *testing.T) {
	for in, want := range map[string]string{
		adminMethod:  adminService,
		healthMethod: HealthService,
		"/Svc/M":     "Svc",
		"odd":        "odd",
	} {
		if got := serviceOf(in); got != want {
			t.Errorf("serviceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for target, want := range map[string]bool{
		"127.0.0.1:8086": true, "localhost:8086": true, "[::1]:8086": true, "dns:///localhost:8086": true,
		"passthrough:///127.0.0.2:1": true, "unix:///tmp/s.sock": true,
		"10.0.0.5:8086": false, "registry.example:443": false, "dns:///registry:8086": false, "0.0.0.0:8086": false,
	} {
		if got := Loopback(target); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", target, got, want)
		}
	}
}
