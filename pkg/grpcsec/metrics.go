package grpcsec

import "github.com/prometheus/client_golang/prometheus"

// Reasons a call is refused (label reason of
// onex_grpc_requests_denied_total): a fixed set, so the series stay bounded.
const (
	// ReasonNoClientCertificate: mTLS is on and the caller sent no verified
	// client certificate (Unauthenticated).
	ReasonNoClientCertificate = "no_client_certificate"
	// ReasonNoCredentials: an admin call with neither a bearer token nor a
	// client certificate (Unauthenticated).
	ReasonNoCredentials = "no_credentials"
	// ReasonBadToken: an admin call whose bearer token is wrong or
	// malformed (PermissionDenied).
	ReasonBadToken = "bad_token"
	// ReasonNotAuthorised: an admin call with a verified client
	// certificate whose identity is not in ONEX_GRPC_ADMIN_SUBJECTS
	// (PermissionDenied).
	ReasonNotAuthorised = "not_authorised"
	// ReasonAdminDisabled: an admin call to a server with no admin
	// credential configured (PermissionDenied).
	ReasonAdminDisabled = "admin_disabled"
)

// Metrics counts the refused calls.
type Metrics struct {
	// Denied is onex_grpc_requests_denied_total{grpc_service, method,
	// reason}. The gRPC service is grpc_service, not service: every fleet
	// series already carries service, the fleet service's name.
	Denied *prometheus.CounterVec
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_grpc_requests_denied_total",
		Help: "gRPC calls refused before reaching their handler, by gRPC service, full method name and reason (no_client_certificate, no_credentials, bad_token, not_authorised, admin_disabled)."},
		[]string{"grpc_service", "method", "reason"})}
	if reg != nil {
		reg.MustRegister(m.Denied)
	}
	return m
}
