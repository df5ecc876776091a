package nodescmd

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/envelopecmd"
	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/testkit/testca"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/admin"
)

// testToken is the registry's admin token in these tests; no output may
// show it.
const testToken = "tok-Kc52-never-print-abcdefghij"

// oneNode is a RegistryService with one node.
type oneNode struct {
	registryv1.UnimplementedRegistryServiceServer
	id string
}

func (o oneNode) ListNodes(context.Context, *registryv1.ListNodesRequest) (*registryv1.ListNodesResponse, error) {
	return &registryv1.ListNodesResponse{Nodes: []*registryv1.Node{{NodeId: o.id, NodeType: "effect", NodeVersion: "1.0.0",
		State: registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE, UpdatedAt: timestamppb.Now()}}}, nil
}

// recorder is the admin service's producer: it keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []*sarama.ProducerMessage
}

func (r *recorder) Send(_ context.Context, msgs ...*sarama.ProducerMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msgs...)
	return nil
}

func (r *recorder) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		k, _ := m.Key.Encode()
		out = append(out, string(k))
	}
	return out
}

// secureRegistry serves the registry, admin and health services the way
// the projector does, guarded by s, on a loopback port.
func secureRegistry(t *testing.T, s grpcsec.ServerSettings, node string) (string, *recorder) {
	t.Helper()
	guard := grpcsec.NewGuard(s, []string{registryv1.AdminService_ServiceDesc.ServiceName}, nil, slog.New(slog.DiscardHandler))
	opts, err := grpcsec.ServerOptions(s, guard)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	registryv1.RegisterRegistryServiceServer(g, oneNode{id: node})
	rec := &recorder{}
	adm := admin.New("onex.cmd.platform.registration-admin.v1", "test", nil, slog.New(slog.DiscardHandler))
	adm.Attach(rec)
	adm.Register(g)
	healthpb.RegisterHealthServer(g, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String(), rec
}

// TestNodesSecurityFlags runs `onexctl nodes` against a registry with mTLS,
// an admin token and an admin subject, and one in plaintext: the TLS flags
// and their variables reach the server; every refusal is one line on
// stderr and exit 1 within seconds; bad settings are refused before
// connecting (exit 2); the token is never shown.
func TestNodesSecurityFlags(t *testing.T) {
	ca := testca.New(t, "onexctl test CA")
	srvCert, srvKey := ca.Issue(t, "registry", "127.0.0.1", "localhost")
	adminCert, adminKey := ca.Issue(t, "onexctl-admin")
	plainCert, plainKey := ca.Issue(t, "reader")
	other := testca.New(t, "another CA")
	node := uuid.NewString()
	secured, rec := secureRegistry(t, grpcsec.ServerSettings{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: ca.CertFile,
		AdminToken: testToken, AdminSubjects: []string{"onexctl-admin"}}, node)
	plain, plainRec := secureRegistry(t, grpcsec.ServerSettings{AdminToken: testToken}, node)
	sentSoFar := func() int { return len(rec.keys()) + len(plainRec.keys()) }

	tlsFlags := []string{"--addr", secured, "--ca-file", ca.CertFile}
	asReader := append(append([]string{}, tlsFlags...), "--cert-file", plainCert, "--key-file", plainKey)
	asAdmin := append(append([]string{}, tlsFlags...), "--cert-file", adminCert, "--key-file", adminKey)
	with := func(base []string, more ...string) []string { return append(append([]string{}, base...), more...) }

	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		exit   int    // 0, 1 (the call failed) or 2 (refused before connecting)
		out    string // substring of stdout
		stderr string // substring of the one stderr line (exit 1) or the error (exit 2)
		sent   bool   // an admin service published a command
	}{
		{name: "list with a client certificate", args: with(asReader, "list"), out: node},
		{name: "list with the settings from the environment", args: []string{"list", "--addr", secured},
			env: map[string]string{envRegistryCAFile: ca.CertFile, envRegistryCertFile: plainCert, envRegistryKeyFile: plainKey}, out: node},
		{name: "list by host name with --server-name", args: with(asReader, "list", "--server-name", "localhost"), out: node},
		{name: "list without a client certificate", args: with(tlsFlags, "list"), exit: 1,
			stderr: "nodes list: the registry refused the call: Unauthenticated: a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
		{name: "list trusting another CA", args: []string{"list", "--addr", secured, "--ca-file", other.CertFile}, exit: 1,
			stderr: "nodes list: cannot connect: the server's certificate is not signed by a trusted CA (--ca-file/ONEX_REGISTRY_CA_FILE, else the system roots)"},
		{name: "list with the system roots", args: []string{"list", "--addr", secured, "--tls"}, exit: 1,
			stderr: "not signed by a trusted CA"},
		{name: "list with a wrong server name", args: with(asReader, "list", "--server-name", "registry.example"), exit: 1,
			stderr: "nodes list: cannot connect: the server's certificate is for another name (x509: certificate is valid for localhost, not registry.example)"},
		{name: "list in plaintext from a TLS server", args: []string{"list", "--addr", secured}, exit: 1,
			stderr: "nodes list: cannot connect: the server closed the connection during setup"},
		{name: "get without a client certificate", args: with(tlsFlags, "get", node), exit: 1,
			stderr: "nodes get: the registry refused the call: Unauthenticated"},
		{name: "watch without a client certificate", args: with(tlsFlags, "watch"), exit: 1,
			stderr: "nodes watch: the registry refused the call: Unauthenticated"},

		{name: "deregister via grpc as the admin subject", args: with(asAdmin, "deregister", node, "--via", "grpc"),
			out: "deregister published by the registry: command_id=", sent: true},
		{name: "deregister via grpc with --token", args: with(asReader, "deregister", node, "--via", "grpc", "--token", testToken),
			out: "topic=onex.cmd.platform.registration-admin.v1", sent: true},
		{name: "deregister via grpc with the token from the environment", args: with(asReader, "deregister", node, "--via", "grpc"),
			env: map[string]string{envRegistryToken: testToken}, out: "deregister published by the registry", sent: true},
		{name: "evict via grpc as json", args: with(asAdmin, "evict", "--state", "active", "--older-than", "1h", "--via", "grpc", "-o", "json"),
			out: `"command":"evict"`, sent: true},
		{name: "deregister via grpc with a wrong token", args: with(asReader, "deregister", node, "--via", "grpc", "--token", "not-the-token"), exit: 1,
			stderr: "nodes deregister: the registry refused the call: PermissionDenied: the bearer token is not the admin token (ONEX_GRPC_ADMIN_TOKEN)"},
		{name: "deregister via grpc with a plain certificate", args: with(asReader, "deregister", node, "--via", "grpc"), exit: 1,
			stderr: `nodes deregister: the registry refused the call: PermissionDenied: the client certificate "reader" is not allowed admin calls (ONEX_GRPC_ADMIN_SUBJECTS)`},
		{name: "evict via grpc without a client certificate", args: with(tlsFlags, "evict", "--state", "active", "--older-than", "1h", "--via", "grpc", "--token", testToken),
			exit: 1, stderr: "nodes evict: the registry refused the call: Unauthenticated: a client certificate signed by ONEX_GRPC_CLIENT_CA_FILE is required"},
		{name: "token in plaintext to the loopback address", args: []string{"deregister", node, "--via", "grpc", "--addr", plain},
			env: map[string]string{envRegistryToken: testToken}, out: "deregister published by the registry", sent: true},
		{name: "plaintext list as before", args: []string{"list", "--addr", plain}, out: node},

		{name: "token in plaintext off this host", args: []string{"deregister", node, "--via", "grpc", "--addr", "registry.example:8086", "--token", testToken},
			exit: 2, stderr: "--token/ONEX_REGISTRY_TOKEN: a bearer token is only sent over TLS"},
		{name: "certificate without key", args: []string{"list", "--addr", secured, "--ca-file", ca.CertFile, "--cert-file", plainCert},
			exit: 2, stderr: "a client certificate and its key go together"},
		{name: "missing CA file", args: []string{"list", "--addr", secured, "--ca-file", "/nonexistent/ca.pem"},
			exit: 2, stderr: "CA file /nonexistent/ca.pem cannot be read"},
		{name: "bad ONEX_REGISTRY_TLS", args: []string{"list", "--addr", secured}, env: map[string]string{envRegistryTLS: "maybe"},
			exit: 2, stderr: "ONEX_REGISTRY_TLS must be true or false"},
		{name: "--topic with --via grpc", args: with(asAdmin, "deregister", node, "--via", "grpc", "--topic", "onex.cmd.platform.registration-admin.v1"),
			exit: 2, stderr: "--topic applies to --via kafka only"},
		{name: "unknown --via", args: []string{"deregister", node, "--via", "pigeon"}, exit: 2, stderr: "--via must be kafka or grpc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{envRegistryTLS, envRegistryCAFile, envRegistryCertFile, envRegistryKeyFile, envRegistryServerName, envRegistryToken, "ONEX_REGISTRY_ADDR"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			before := sentSoFar()
			start := time.Now()
			out, stderr, err := runQuiet(t, append(tt.args, "--timeout", "5s")...)
			if took := time.Since(start); took > 4*time.Second {
				t.Errorf("took %v: a refusal must not hang", took)
			}
			var ee *envelopecmd.ExitError
			exit := 0
			switch {
			case errors.As(err, &ee):
				exit = ee.Code
			case err != nil:
				exit = 2
			}
			if exit != tt.exit {
				t.Fatalf("exit %d (%v), want %d; stdout %q, stderr %q", exit, err, tt.exit, out, stderr)
			}
			switch tt.exit {
			case 0:
				if !strings.Contains(out, tt.out) || stderr != "" {
					t.Errorf("stdout %q, stderr %q; want stdout with %q", out, stderr, tt.out)
				}
			case 1:
				line := strings.TrimSuffix(stderr, "\n")
				if !strings.Contains(line, tt.stderr) || strings.Contains(line, "\n") || out != "" {
					t.Errorf("stderr %q, want one line with %q (stdout %q)", stderr, tt.stderr, out)
				}
			case 2:
				if !strings.Contains(err.Error(), tt.stderr) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q, want one line with %q", err, tt.stderr)
				}
			}
			for _, s := range []string{out, stderr, errString(err)} {
				if strings.Contains(s, testToken) {
					t.Errorf("the output shows the token: %q", s)
				}
			}
			if sent := sentSoFar() > before; sent != tt.sent {
				t.Errorf("a command was published: %v, want %v", sent, tt.sent)
			}
			if tt.out == `"command":"evict"` {
				var r map[string]string
				if err := json.Unmarshal([]byte(out), &r); err != nil || r["via"] != "grpc" || r["command_id"] == "" || r["correlation_id"] == "" {
					t.Errorf("json output %q: %v", out, err)
				}
			}
		})
	}
}

// TestTokenNotInHelp: a token in the environment is never a flag default
// `--help` prints.
func TestTokenNotInHelp(t *testing.T) {
	t.Setenv(envRegistryToken, testToken)
	out, _, err := runQuiet(t, "list", "--help")
	if err != nil || !strings.Contains(out, "--token") || strings.Contains(out, testToken) {
		t.Errorf("help: %v\n%s", err, out)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
