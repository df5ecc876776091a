package infisical

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	sdkerrors "github.com/infisical/go-sdk/packages/errors"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

var (
	apiErrShape = regexp.MustCompile(`^infisical login: HTTP -?[0-9]+( \(request id [A-Za-z0-9_-]{1,64}\))?$`)
	reqErrShape = regexp.MustCompile(`^infisical login: operation failed(: (` + strings.Join(infraerr.SafeBackendPhrases, "|") + `))?$`)
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
		kind infraerr.Kind
	}{
		{name: "401", err: &sdkerrors.APIError{StatusCode: 401, ReqId: "req-1", ErrorMessage: "bad clientSecret=s3cr3t"}, want: "infisical login: HTTP 401 (request id req-1)", kind: infraerr.KindAuthentication},
		{name: "403", err: &sdkerrors.APIError{StatusCode: 403}, want: "infisical login: HTTP 403", kind: infraerr.KindAuthentication},
		{name: "404", err: &sdkerrors.APIError{StatusCode: 404}, want: "infisical login: HTTP 404", kind: infraerr.KindConfiguration},
		{name: "429", err: &sdkerrors.APIError{StatusCode: 429}, want: "infisical login: HTTP 429", kind: infraerr.KindRateLimited},
		{name: "502", err: &sdkerrors.APIError{StatusCode: 502}, want: "infisical login: HTTP 502", kind: infraerr.KindUnavailable},
		{name: "422", err: &sdkerrors.APIError{StatusCode: 422}, want: "infisical login: HTTP 422", kind: infraerr.KindRequestRejected},
		{name: "request id outside the alphabet is dropped", err: &sdkerrors.APIError{StatusCode: 500, ReqId: "token=abc def"}, want: "infisical login: HTTP 500", kind: infraerr.KindUnavailable},
		{name: "refused", err: sdkerrors.NewRequestError("op", errors.New(`Post "https://u:pw@infisical/api/v1/auth": dial tcp 10.0.0.1:443: connect: connection refused`)),
			want: "infisical login: operation failed: connection refused", kind: infraerr.KindConnection},
		{name: "timeout", err: sdkerrors.NewRequestError("op", errors.New(`Get "https://infisical/api/v3/secrets/raw?x": net/http: TLS handshake timeout`)),
			want: "infisical login: operation failed: timeout", kind: infraerr.KindTimeout},
		{name: "undecodable answer", err: sdkerrors.NewRequestError("op", errors.New(`invalid character '<' looking for beginning of value`)),
			want: "infisical login: operation failed", kind: infraerr.KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sanitize("login", tt.err)
			if got.Error() != tt.want {
				t.Errorf("sanitize = %q, want %q", got, tt.want)
			}
			if k, _ := infraerr.KindOf(got); k != tt.kind {
				t.Errorf("kind = %v, want %v", k, tt.kind)
			}
			if errors.Unwrap(got) != nil {
				t.Errorf("the SDK error is still wrapped: %v", errors.Unwrap(got))
			}
		})
	}
}

// FuzzSanitize: whatever the server or the transport said, the sanitized
// message has one of two fixed shapes, so nothing of it can leak.
func FuzzSanitize(f *testing.F) {
	f.Add(401, "req-1", "Invalid credentials", `Post "http://h/api": dial tcp: connection refused`)
	f.Add(500, "clientSecret=x", "postgresql://u:p@h/db", "context deadline exceeded")
	f.Add(0, "", "", "")
	f.Fuzz(func(t *testing.T, status int, reqID, message, raw string) {
		api := sanitize("login", &sdkerrors.APIError{Method: "POST", URL: raw, StatusCode: status, ErrorMessage: message, ReqId: reqID})
		if !apiErrShape.MatchString(api.Error()) {
			t.Fatalf("API error rendered as %q", api)
		}
		req := sanitize("login", sdkerrors.NewRequestError("op", errors.New(raw)))
		if !reqErrShape.MatchString(req.Error()) {
			t.Fatalf("request error rendered as %q", req)
		}
	})
}

func TestNeedsKeys(t *testing.T) {
	tests := []struct {
		name    string
		needs   Needs
		want    []string // transport/key
		wantErr string
	}{
		{name: "transports then env, each key once", needs: Needs{Service: "consul-effect", Transports: []string{Kafka}, Env: []string{"CONSUL_HTTP_TOKEN", "KAFKA_ACKS"}},
			want: []string{"kafka/KAFKA_GROUP_ID", "kafka/KAFKA_ACKS", "kafka/KAFKA_REQUEST_TIMEOUT_MS",
				"kafka/KAFKA_SECURITY_PROTOCOL", "kafka/KAFKA_SASL_MECHANISM", "kafka/KAFKA_SASL_USERNAME", "kafka/KAFKA_SASL_PASSWORD",
				"kafka/KAFKA_SSL_CA_FILE", "kafka/KAFKA_SSL_CERT_FILE", "kafka/KAFKA_SSL_KEY_FILE",
				"kafka/KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", "kafka/KAFKA_SASL_OAUTHBEARER_CLIENT_ID", "kafka/KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
				"env/CONSUL_HTTP_TOKEN"}},
		{name: "db list is the spec's", needs: Needs{Service: "p", Transports: []string{DB}},
			want: []string{"db/POSTGRES_HOST", "db/POSTGRES_PORT", "db/POSTGRES_USER", "db/POSTGRES_POOL_MIN_SIZE", "db/POSTGRES_POOL_MAX_SIZE", "db/POSTGRES_TIMEOUT_MS", "db/QUERY_TIMEOUT_SECONDS"}},
		{name: "slug with a slash", needs: Needs{Service: "a/../b"}, wantErr: "service slug"},
		{name: "empty slug", needs: Needs{}, wantErr: "service slug"},
		{name: "unknown transport", needs: Needs{Service: "s", Transports: []string{"qdrant"}}, wantErr: `unknown transport "qdrant"`},
		{name: "bootstrap variable", needs: Needs{Service: "s", Env: []string{"INFISICAL_CLIENT_SECRET"}}, wantErr: "bootstrap variable"},
		{name: "not a variable name", needs: Needs{Service: "s", Env: []string{"A-B"}}, wantErr: "not an environment variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs, err := tt.needs.keys()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range refs {
				got = append(got, r.transport+"/"+r.key)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("keys = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProfilePolicy(t *testing.T) {
	tests := []struct {
		profile string
		want    Policy
		known   bool
	}{
		{"local-dev", PolicyDisabled, true}, {"default", PolicyDisabled, true}, {"main", PolicyDisabled, true},
		{"effects", PolicyDisabled, true}, {"workers", PolicyDisabled, true}, {"projection-api", PolicyDisabled, true},
		{"canary", PolicyDisabled, true}, {"staging", PolicyBestEffort, true}, {"production", PolicyRequired, true},
		{"Production", PolicyDisabled, false}, {"", PolicyDisabled, false},
	}
	for _, tt := range tests {
		got, known := ProfilePolicy(tt.profile)
		if got != tt.want || known != tt.known {
			t.Errorf("ProfilePolicy(%q) = %s, %v; want %s, %v", tt.profile, got, known, tt.want, tt.known)
		}
	}
}
