package app

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
)

// grpcTestToken is the admin token of TestGRPCSecurity: it must reach no
// log line.
const grpcTestToken = "tok-Pj48-never-print-abcdefghij"

// TestGRPCSecurity runs the projector three times on the real broker and
// PostgreSQL, as plaintext (the default), with TLS and an admin token, and
// with mTLS and an admin subject, and calls its registry, admin and health
// services with real TLS clients: who may call what, and that refusals are
// clear, counted and logged without the token.
func TestGRPCSecurity(t *testing.T) {
	ca := testca.New(t, "projector grpc CA")
	srvCert, srvKey := ca.Issue(t, "projector", "127.0.0.1", "localhost")
	adminCert, adminKey := ca.Issue(t, "onexctl-admin")
	plainCert, plainKey := ca.Issue(t, "reader")
	other := testca.New(t, "a CA the projector never heard of")
	trusting := grpcsec.ClientSettings{CAFile: ca.CertFile}

	type check struct {
		name   string
		client grpcsec.ClientSettings
		call   string     // health, list, watch, deregister
		code   codes.Code // codes.OK: the call succeeds
		msg    string     // substring of the error (its explained line)
	}
	tests := []struct {
		name     string
		security grpcsec.ServerSettings
		checks   []check
		denied   map[string]string // reason -> method counted once
	}{
		{name: "plaintext default", checks: []check{
			{name: "read as before", call: "list"},
			{name: "health", call: "health"},
			{name: "watch", call: "watch"},
			{name: "admin disabled when unconfigured", call: "deregister", code: codes.PermissionDenied,
				msg: "admin calls are disabled on this server: set ONEX_GRPC_ADMIN_TOKEN or ONEX_GRPC_ADMIN_SUBJECTS"},
		}, denied: map[string]string{grpcsec.ReasonAdminDisabled: registryv1.AdminService_DeregisterNode_FullMethodName}},

		{name: "tls with an admin token", security: grpcsec.ServerSettings{CertFile: srvCert, KeyFile: srvKey, AdminToken: grpcTestToken},
			checks: []check{
				{name: "tls read", client: trusting, call: "list"},
				{name: "tls watch", client: trusting, call: "watch"},
				{name: "admin with the token", client: grpcsec.ClientSettings{CAFile: ca.CertFile, Token: grpcTestToken}, call: "deregister"},
				{name: "admin with a wrong token", client: grpcsec.ClientSettings{CAFile: ca.CertFile, Token: "not-the-token"}, call: "deregister",
					code: codes.PermissionDenied, msg: "the bearer token is not the admin token"},
				{name: "admin without a token", client: trusting, call: "deregister", code: codes.Unauthenticated,
					msg: "admin calls need a bearer token (ONEX_GRPC_ADMIN_TOKEN)"},
				{name: "a client trusting another CA", client: grpcsec.ClientSettings{CAFile: other.CertFile}, call: "list",
					code: codes.Unavailable, msg: "cannot connect: the server's certificate is not signed by a trusted CA"},
				{name: "a plaintext client", call: "list", code: codes.Unavailable, msg: "cannot connect: the server closed the connection during setup"},
			}, denied: map[string]string{grpcsec.ReasonBadToken: registryv1.AdminService_DeregisterNode_FullMethodName,
				grpcsec.ReasonNoCredentials: registryv1.AdminService_DeregisterNode_FullMethodName}},

		{name: "mtls with an admin subject", security: grpcsec.ServerSettings{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: ca.CertFile,
			AdminSubjects: []string{"onexctl-admin"}},
			checks: []check{
				{name: "health without a certificate", client: trusting, call: "health"},
				{name: "read without a certificate", client: trusting, call: "list", code: codes.Unauthenticated,
					msg: "a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
				{name: "watch without a certificate", client: trusting, call: "watch", code: codes.Unauthenticated,
					msg: "a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
				{name: "read with a plain certificate", client: grpcsec.ClientSettings{CAFile: ca.CertFile, CertFile: plainCert, KeyFile: plainKey}, call: "list"},
				{name: "admin with the admin subject's certificate", client: grpcsec.ClientSettings{CAFile: ca.CertFile, CertFile: adminCert, KeyFile: adminKey},
					call: "deregister"},
				{name: "admin with a plain certificate", client: grpcsec.ClientSettings{CAFile: ca.CertFile, CertFile: plainCert, KeyFile: plainKey},
					call: "deregister", code: codes.PermissionDenied, msg: `the client certificate "reader" is not allowed admin calls`},
			}, denied: map[string]string{grpcsec.ReasonNoClientCertificate: registryv1.RegistryService_ListNodes_FullMethodName,
				grpcsec.ReasonNotAuthorised: registryv1.AdminService_DeregisterNode_FullMethodName}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "grpcsec", pgtest.NewDatabase(t))
			testkit.CreateTopic(t, h.brokers, h.admin, 1, nil)
			s := h.settings()
			s.GRPC = tt.security
			h.start(s)
			addr := h.app.GRPCAddr()
			published := 0
			for _, c := range tt.checks {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				err := registryCall(ctx, addr, c.client, c.call)
				cancel()
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("%s: took %v; a refusal must not hang", c.name, took)
				}
				if got := status.Code(err); got != c.code {
					t.Errorf("%s: code %v (%v), want %v", c.name, got, err, c.code)
					continue
				}
				line, _ := grpcsec.Explain(err, grpcsec.Names{})
				if !strings.Contains(line, c.msg) {
					t.Errorf("%s: %q, want it to contain %q", c.name, line, c.msg)
				}
				if c.call == "deregister" && c.code == codes.OK {
					published++
				}
			}
			if published > 0 {
				recs := testkit.ReadAll(t, h.brokers, h.admin, published, 30*time.Second, false)
				for _, r := range recs {
					if _, c, err := operator.Decode(r.Value); err != nil || c.Command != operator.Deregister {
						t.Errorf("admin record: %+v, %v", c, err)
					}
				}
			}
			for reason, method := range tt.denied {
				labels := map[string]string{"grpc_service": method[1:strings.LastIndex(method, "/")], "method": method, "reason": reason}
				if v := h.gather("onex_grpc_requests_denied_total", labels); v < 1 {
					t.Errorf("onex_grpc_requests_denied_total%v = %v, want >= 1", labels, v)
				}
			}
			h.stop()
			log, err := os.ReadFile(h.logPath)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(log), grpcTestToken) {
				t.Error("the service's log shows the admin token")
			}
			if len(tt.denied) > 0 && !strings.Contains(string(log), `"msg":"grpc call refused"`) {
				t.Error("no refusal was logged")
			}
		})
	}
}

// registryCall makes one call of kind over a new connection with the client
// settings c.
func registryCall(ctx context.Context, addr string, c grpcsec.ClientSettings, kind string) error {
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
		// Readiness reaches the health service within half a second.
		for _, svc := range []string{"", registryv1.RegistryService_ServiceDesc.ServiceName} {
			for {
				r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err != nil {
					return err
				}
				if r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
					break
				}
				select {
				case <-ctx.Done():
					return errors.New("health of " + svc + ": " + r.GetStatus().String())
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		return nil
	case "list":
		_, err := registryv1.NewRegistryServiceClient(cc).ListNodes(ctx, &registryv1.ListNodesRequest{})
		return err
	case "watch":
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := registryv1.NewRegistryServiceClient(cc).WatchNodes(wctx, &registryv1.WatchNodesRequest{})
		if err != nil {
			return err
		}
		// The first message is a checkpoint: proof the stream is served.
		if _, err := st.Recv(); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	case "deregister":
		_, err := registryv1.NewAdminServiceClient(cc).DeregisterNode(ctx, &registryv1.DeregisterNodeRequest{NodeId: uuid.NewString(), Reason: "grpc security test"})
		return err
	}
	panic(kind)
}
