package grpcsec

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// HealthService is the gRPC health service, open to every caller: a
// Kubernetes or load-balancer probe holds no client certificate.
var HealthService = healthpb.Health_ServiceDesc.ServiceName

// MsgClientCertificateRequired is the message of a call refused for want of
// a client certificate.
const MsgClientCertificateRequired = "a client certificate signed by " + EnvClientCAFile + " is required"

// Guard decides, before its handler runs, whether a call may go ahead: with
// mTLS every method but health needs a verified client certificate, and the
// admin services' methods need an admin token or an admin client
// certificate. Each refusal is counted and logged.
type Guard struct {
	mtls     bool
	hasToken bool
	// tokenSum is the token's SHA-256: comparing digests keeps the
	// comparison constant-time in the token's length too.
	tokenSum [sha256.Size]byte
	subjects map[string]bool
	admin    map[string]bool
	metrics  *Metrics
	log      *slog.Logger
}

// NewGuard returns the guard of a server with settings s whose services
// adminServices (full names, e.g. "onex.registry.v1.AdminService") need
// admin rights. m and log may be nil.
func NewGuard(s ServerSettings, adminServices []string, m *Metrics, log *slog.Logger) *Guard {
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.Default()
	}
	g := &Guard{mtls: s.MutualTLS(), subjects: map[string]bool{}, admin: map[string]bool{}, metrics: m, log: log}
	if tok := s.AdminToken.Reveal(); tok != "" {
		g.hasToken, g.tokenSum = true, sha256.Sum256([]byte(tok))
	}
	for _, sub := range s.AdminSubjects {
		g.subjects[sub] = true
	}
	for _, svc := range adminServices {
		g.admin[svc] = true
	}
	return g
}

// UnaryInterceptor checks unary calls.
func (g *Guard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := g.Authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor checks streaming calls.
func (g *Guard) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := g.Authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Authorize returns nil when the call to fullMethod may go ahead, else the
// status error to answer with, counted and logged.
func (g *Guard) Authorize(ctx context.Context, fullMethod string) error {
	service := serviceOf(fullMethod)
	v := g.decide(ctx, service)
	if v.err == nil {
		if v.by != "" {
			g.log.Info("grpc admin call authorised", "method", fullMethod, "peer", peerAddr(ctx), "by", v.by)
		}
		return nil
	}
	g.metrics.Denied.WithLabelValues(service, fullMethod, v.reason).Inc()
	attrs := []any{"method", fullMethod, "reason", v.reason, "peer", peerAddr(ctx)}
	if cert := verifiedPeer(ctx); cert != nil {
		attrs = append(attrs, "client_identity", strings.Join(Identities(cert), ","))
	}
	g.log.Warn("grpc call refused", attrs...)
	return v.err
}

// verdict is the decision on one call: allowed when err is nil, by then
// naming the admin credential that allowed an admin call ("token", or the
// certificate identity that matched); refused with err for reason otherwise.
type verdict struct {
	reason, by string
	err        error
}

var allowed = verdict{}

func refused(reason string, code codes.Code, format string, args ...any) verdict {
	return verdict{reason: reason, err: status.Errorf(code, format, args...)}
}

// decide judges a call to service.
func (g *Guard) decide(ctx context.Context, service string) verdict {
	if service == HealthService {
		return allowed
	}
	cert := verifiedPeer(ctx)
	if g.mtls && cert == nil {
		return refused(ReasonNoClientCertificate, codes.Unauthenticated, "%s", MsgClientCertificateRequired)
	}
	if !g.admin[service] {
		return allowed
	}
	if !g.hasToken && len(g.subjects) == 0 {
		return refused(ReasonAdminDisabled, codes.PermissionDenied,
			"admin calls are disabled on this server: set %s or %s to allow them", EnvAdminToken, EnvAdminSubjects)
	}
	for _, id := range Identities(cert) {
		if g.subjects[id] {
			return verdict{by: id}
		}
	}
	token, present, wellFormed := bearer(ctx)
	switch {
	case present && !wellFormed:
		return refused(ReasonBadToken, codes.PermissionDenied, `the authorization metadata is not "Bearer <token>"`)
	case present && !g.hasToken:
		return refused(ReasonBadToken, codes.PermissionDenied,
			"this server takes no admin token: admin calls need a client certificate listed in %s", EnvAdminSubjects)
	case present:
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], g.tokenSum[:]) == 1 {
			return verdict{by: "token"}
		}
		return refused(ReasonBadToken, codes.PermissionDenied, "the bearer token is not the admin token (%s)", EnvAdminToken)
	case cert != nil && len(g.subjects) > 0:
		name := "without a name"
		if ids := Identities(cert); len(ids) > 0 {
			name = fmt.Sprintf("%q", ids[0])
		}
		return refused(ReasonNotAuthorised, codes.PermissionDenied,
			"the client certificate %s is not allowed admin calls (%s)", name, EnvAdminSubjects)
	}
	return refused(ReasonNoCredentials, codes.Unauthenticated, "admin calls need %s", g.accepted())
}

// accepted says which admin credentials the server takes.
func (g *Guard) accepted() string {
	var ways []string
	if g.hasToken {
		ways = append(ways, "a bearer token ("+EnvAdminToken+")")
	}
	if len(g.subjects) > 0 {
		ways = append(ways, "a client certificate listed in "+EnvAdminSubjects)
	}
	return strings.Join(ways, " or ")
}

// bearer reads the call's "authorization: Bearer <token>" metadata: present
// when there is an authorization value, wellFormed when it is exactly one
// value of the Bearer scheme with a token.
func bearer(ctx context.Context) (token string, present, wellFormed bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) != 1 {
		return "", true, false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", true, false
	}
	return tok, true, true
}

// serviceOf is the service part of a full method name ("/pkg.Svc/Method").
func serviceOf(fullMethod string) string {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[:i]
	}
	return s
}
