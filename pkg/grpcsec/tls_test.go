package grpcsec

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
)

// The test server's services stand in for the registry's: a read service
// with a unary and a server-streaming method, and an admin service.
const (
	testRead  = "onex.test.v1.ReadService"
	testAdmin = "onex.test.v1.AdminService"
)

// emptyService is a service of one unary method Get (or Do for the admin
// one) and one server-streaming method Watch, all taking and returning
// Empty.
func emptyService(name, unary string) *grpc.ServiceDesc {
	full := "/" + name + "/" + unary
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: unary, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return &emptypb.Empty{}, nil }
			if icpt == nil {
				return h(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
		}}},
		Streams: []grpc.StreamDesc{{StreamName: "Watch", ServerStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
			return stream.SendMsg(&emptypb.Empty{})
		}}},
	}
}

// serve runs a guarded server with settings s on a loopback port until the
// test ends; its denial counter is returned.
func serve(t *testing.T, s ServerSettings) (string, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	opts, err := ServerOptions(s, NewGuard(s, []string{testAdmin}, m, slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	g.RegisterService(emptyService(testRead, "Get"), struct{}{})
	g.RegisterService(emptyService(testAdmin, "Do"), struct{}{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String(), m
}

// call makes one call of kind (health, read, watch, admin) over a new
// connection with the client settings c.
func call(ctx context.Context, addr string, c ClientSettings, kind string) error {
	opts, err := c.DialOptions(addr)
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return err
	}
	defer cc.Close()
	switch kind {
	case "health":
		r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return errors.New("health: " + r.GetStatus().String())
		}
		return err
	case "read":
		return cc.Invoke(ctx, "/"+testRead+"/Get", &emptypb.Empty{}, &emptypb.Empty{})
	case "admin":
		return cc.Invoke(ctx, "/"+testAdmin+"/Do", &emptypb.Empty{}, &emptypb.Empty{})
	case "watch":
		st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/"+testRead+"/Watch")
		if err != nil {
			return err
		}
		if err := st.SendMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		if err := st.RecvMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		if err := st.RecvMsg(&emptypb.Empty{}); !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
	panic(kind)
}

// TestTLSServer runs real servers (plaintext, TLS with an admin token, mTLS
// with a token and admin subjects) and calls them with real clients: what
// each may call, and that every refusal, including a failed handshake, is
// one clear line within seconds.
func TestTLSServer(t *testing.T) {
	ca := testca.New(t, "grpcsec test CA")
	srvCert, srvKey := ca.Issue(t, "server", "127.0.0.1", "localhost")
	adminCert, adminKey := ca.Issue(t, "onexctl-admin")
	plainCert, plainKey := ca.Issue(t, "reader")
	other := testca.New(t, "another CA")
	otherCert, otherKey := other.Issue(t, "onexctl-admin-elsewhere", "onexctl-admin")

	servers := map[string]ServerSettings{
		"plain":       {},
		"plain-token": {AdminToken: testToken},
		"tls":         {CertFile: srvCert, KeyFile: srvKey, AdminToken: testToken},
		"mtls": {CertFile: srvCert, KeyFile: srvKey, ClientCAFile: ca.CertFile, AdminToken: testToken,
			AdminSubjects: []string{"onexctl-admin"}},
	}
	addrs, metrics := map[string]string{}, map[string]*Metrics{}
	for name, s := range servers {
		addrs[name], metrics[name] = serve(t, s)
	}

	trusting := ClientSettings{CAFile: ca.CertFile}
	with := func(c ClientSettings, f func(*ClientSettings)) ClientSettings { f(&c); return c }
	token := with(trusting, func(c *ClientSettings) { c.Token = testToken })
	adminClient := with(trusting, func(c *ClientSettings) { c.CertFile, c.KeyFile = adminCert, adminKey })
	plainClient := with(trusting, func(c *ClientSettings) { c.CertFile, c.KeyFile = plainCert, plainKey })

	tests := []struct {
		name    string
		server  string
		client  ClientSettings
		call    string
		byName  bool       // dial localhost rather than 127.0.0.1
		code    codes.Code // codes.OK: the call succeeds
		refused bool       // Explain reports a refusal of the credentials
		line    string     // substring of Explain's line
	}{
		{name: "plaintext read, as before", server: "plain", call: "read"},
		{name: "plaintext watch", server: "plain", call: "watch"},
		{name: "plaintext health", server: "plain", call: "health"},
		{name: "plaintext admin is disabled by default", server: "plain", call: "admin", code: codes.PermissionDenied, refused: true,
			line: "PermissionDenied: admin calls are disabled on this server: set ONEX_GRPC_ADMIN_TOKEN or ONEX_GRPC_ADMIN_SUBJECTS"},
		{name: "token over plaintext loopback", server: "plain-token", client: ClientSettings{Token: testToken}, call: "admin"},
		{name: "tls client to a plaintext server", server: "plain", client: trusting, call: "read", code: codes.Unavailable,
			line: "cannot connect: the server does not speak TLS"},

		{name: "tls read", server: "tls", client: trusting, call: "read"},
		{name: "tls read by host name", server: "tls", client: trusting, call: "read", byName: true},
		{name: "tls admin with the token", server: "tls", client: token, call: "admin"},
		{name: "tls admin with a wrong token", server: "tls", client: with(trusting, func(c *ClientSettings) { c.Token = "wrong-token" }),
			call: "admin", code: codes.PermissionDenied, refused: true, line: "PermissionDenied: the bearer token is not the admin token"},
		{name: "tls admin without credentials", server: "tls", client: trusting, call: "admin", code: codes.Unauthenticated, refused: true,
			line: "Unauthenticated: admin calls need a bearer token (ONEX_GRPC_ADMIN_TOKEN)"},
		{name: "tls: a client trusting another CA", server: "tls", client: ClientSettings{CAFile: other.CertFile}, call: "read",
			code: codes.Unavailable, line: "cannot connect: the server's certificate is not signed by a trusted CA (--ca-file, else the system roots)"},
		{name: "tls: the system roots do not know the test CA", server: "tls", client: ClientSettings{TLS: true}, call: "read",
			code: codes.Unavailable, line: "not signed by a trusted CA"},
		{name: "tls: a server name the certificate does not hold", server: "tls",
			client: with(trusting, func(c *ClientSettings) { c.ServerName = "registry.example" }), call: "read",
			code: codes.Unavailable, line: "cannot connect: the server's certificate is for another name (x509: certificate is valid for localhost, not registry.example): dial a name it holds or set --server-name"},
		{name: "plaintext client to a tls server", server: "tls", call: "read", code: codes.Unavailable,
			line: "cannot connect: the server closed the connection during setup"},

		{name: "mtls health without a certificate", server: "mtls", client: trusting, call: "health"},
		{name: "mtls read without a certificate", server: "mtls", client: trusting, call: "read", code: codes.Unauthenticated, refused: true,
			line: "Unauthenticated: a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
		{name: "mtls watch without a certificate", server: "mtls", client: trusting, call: "watch", code: codes.Unauthenticated, refused: true,
			line: "a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
		{name: "mtls admin with the token but no certificate", server: "mtls", client: token, call: "admin", code: codes.Unauthenticated, refused: true},
		{name: "mtls read with a plain certificate", server: "mtls", client: plainClient, call: "read"},
		{name: "mtls watch with a plain certificate", server: "mtls", client: plainClient, call: "watch"},
		{name: "mtls admin with the admin subject's certificate", server: "mtls", client: adminClient, call: "admin"},
		{name: "mtls admin with a plain certificate", server: "mtls", client: plainClient, call: "admin", code: codes.PermissionDenied, refused: true,
			line: `PermissionDenied: the client certificate "reader" is not allowed admin calls (ONEX_GRPC_ADMIN_SUBJECTS)`},
		{name: "mtls admin with a plain certificate and the token", server: "mtls",
			client: with(plainClient, func(c *ClientSettings) { c.Token = testToken }), call: "admin"},
		// crypto/tls sends no certificate the server's CA list does not
		// name, so the server sees none, and says which CA it wants.
		{name: "mtls: a certificate of another CA with the admin name", server: "mtls",
			client: with(trusting, func(c *ClientSettings) { c.CertFile, c.KeyFile = otherCert, otherKey }), call: "admin",
			code: codes.Unauthenticated, refused: true, line: "Unauthenticated: a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
	}
	names := Names{CAFile: "--ca-file", CertFile: "--cert-file", ServerName: "--server-name"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			addr := addrs[tt.server]
			if tt.byName {
				addr = strings.Replace(addr, "127.0.0.1", "localhost", 1)
			}
			err := call(ctx, addr, tt.client, tt.call)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the call took %v: a refusal must not hang", took)
			}
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code %v (%v), want %v", got, err, tt.code)
			}
			line, refused := Explain(err, names)
			if refused != tt.refused || !strings.Contains(line, tt.line) || strings.Contains(line, "\n") {
				t.Errorf("Explain = %q, %v; want refused %v and a line containing %q", line, refused, tt.refused, tt.line)
			}
			if strings.Contains(line, testToken) {
				t.Errorf("the line shows the token: %s", line)
			}
		})
	}
	for _, c := range []struct {
		server, method, reason string
		want                   float64
	}{
		{"plain", "/" + testAdmin + "/Do", ReasonAdminDisabled, 1},
		{"tls", "/" + testAdmin + "/Do", ReasonBadToken, 1},
		{"tls", "/" + testAdmin + "/Do", ReasonNoCredentials, 1},
		{"mtls", "/" + testRead + "/Get", ReasonNoClientCertificate, 1},
		{"mtls", "/" + testRead + "/Watch", ReasonNoClientCertificate, 1},
		{"mtls", "/" + testAdmin + "/Do", ReasonNoClientCertificate, 2},
		{"mtls", "/" + testAdmin + "/Do", ReasonNotAuthorised, 1},
	} {
		if got := testutil.ToFloat64(metrics[c.server].Denied.WithLabelValues(serviceOf(c.method), c.method, c.reason)); got != c.want {
			t.Errorf("%s: denied{%s,%s} = %v, want %v", c.server, c.method, c.reason, got, c.want)
		}
	}
}

func TestDialOptionsRefused(t *testing.T) {
	ca := testca.New(t, "grpcsec dial CA")
	cert, key := ca.Issue(t, "client")
	tests := []struct {
		name   string
		c      ClientSettings
		target string
		err    string
	}{
		{"token in plaintext off this host", ClientSettings{Token: testToken}, "registry.example:8086", ErrTokenNeedsTLS.Error()},
		{"cert without key", ClientSettings{CertFile: cert}, "127.0.0.1:1", "a client certificate and its key go together"},
		{"key without cert", ClientSettings{KeyFile: key}, "127.0.0.1:1", "a client certificate and its key go together"},
		{"missing CA file", ClientSettings{CAFile: "/nonexistent/ca.pem"}, "127.0.0.1:1", "CA file /nonexistent/ca.pem cannot be read"},
		{"key of another certificate", ClientSettings{CertFile: cert, KeyFile: ca.CertFile}, "127.0.0.1:1", "are no PEM certificate and matching unencrypted key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.DialOptions(tt.target)
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), testToken) {
				t.Errorf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
	for _, ok := range []ClientSettings{{}, {Token: config.Secret(testToken)}, {TLS: true, Token: testToken}, {CAFile: ca.CertFile, CertFile: cert, KeyFile: key}} {
		if _, err := ok.DialOptions("127.0.0.1:8086"); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}
