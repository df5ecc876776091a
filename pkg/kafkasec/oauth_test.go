package kafkasec_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/kafkasec"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// A client secret with the characters RFC 6749 2.3.1 makes a client
// form-encode before Basic encoding.
const trickySecret = "s3cr:et&=+/never-print"

func TestTokenSourceFetches(t *testing.T) {
	idp := testkit.NewTokenEndpoint(t, "fleet:client")
	idp.ClientSecret = trickySecret
	ts := kafkasec.NewTokenSource(config.OAuthClient{TokenURL: idp.URL, ClientID: idp.ClientID, ClientSecret: trickySecret})
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	issued := idp.Issued()
	if len(issued) != 1 || tok.Token != issued[0] || !strings.HasSuffix(tok.Token, ".") {
		t.Fatalf("token %q, issued %q", tok.Token, issued)
	}
}

// TestTokenSourceCaches: one request per token, a new one after 80 % of its
// lifetime, and the kept token while the endpoint fails before it expires.
func TestTokenSourceCaches(t *testing.T) {
	var (
		mu      sync.Mutex
		fail    bool
		serial  int
		now     = time.Unix(1_800_000_000, 0)
		advance = func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		serial++
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "token-" + string(rune('0'+serial)), "token_type": "bearer", "expires_in": 100})
	}))
	t.Cleanup(srv.Close)
	ts := kafkasec.NewTokenSource(config.OAuthClient{TokenURL: srv.URL, ClientID: "c", ClientSecret: "s"},
		kafkasec.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	steps := []struct {
		name    string
		advance time.Duration
		fail    bool
		want    string // the token; "" for an error
	}{
		{name: "first call fetches", want: "token-1"},
		{name: "kept while young", advance: 79 * time.Second, want: "token-1"},
		{name: "refreshed after 80 %", advance: 2 * time.Second, want: "token-2"},
		{name: "endpoint down: the kept token serves until it expires", advance: 81 * time.Second, fail: true, want: "token-2"},
		{name: "endpoint down and the token expired: an error", advance: 20 * time.Second, fail: true},
		{name: "endpoint back", want: "token-3"},
	}
	for _, st := range steps {
		advance(st.advance)
		mu.Lock()
		fail = st.fail
		mu.Unlock()
		tok, err := ts.Token()
		switch {
		case st.want == "" && err == nil:
			t.Fatalf("%s: token %q, want an error", st.name, tok.Token)
		case st.want == "":
			if k, _ := infraerr.KindOf(err); k != infraerr.KindUnavailable {
				t.Errorf("%s: kind %v, want unavailable", st.name, k)
			}
		case err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case tok.Token != st.want:
			t.Errorf("%s: token %q, want %q", st.name, tok.Token, st.want)
		}
	}
}

// TestTokenSourceFailures: each way a token request fails gives one
// classified line that names the endpoint without its query and never
// carries the secret nor what the server said beyond its error code.
func TestTokenSourceFailures(t *testing.T) {
	answer := func(status int, body string, delay time.Duration) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/token?api_key=" + trickySecret
	}
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/token"
	}()
	echo := `{"error":"invalid_client","error_description":"secret ` + trickySecret + ` is wrong"}`
	tests := []struct {
		name string
		url  string
		kind infraerr.Kind
		want string
	}{
		{"refused client", answer(401, echo, 0), infraerr.KindAuthentication,
			"the token endpoint refused KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET (HTTP 401 invalid_client)"},
		{"bad request without a code", answer(400, "<html>"+trickySecret+"</html>", 0), infraerr.KindAuthentication, "(HTTP 400)"},
		{"error code out of the RFC's alphabet", answer(403, `{"error":"`+trickySecret+`"}`, 0), infraerr.KindAuthentication, "(HTTP 403)"},
		{"rate limited", answer(429, "", 0), infraerr.KindRateLimited, "the token endpoint is rate limiting (HTTP 429)"},
		{"server error", answer(502, "", 0), infraerr.KindUnavailable, "the token endpoint failed (HTTP 502)"},
		{"not json", answer(200, "access_token="+trickySecret, 0), infraerr.KindProtocol, "answered HTTP 200 without an access_token"},
		{"not a bearer token", answer(200, `{"access_token":"x","token_type":"mac"}`, 0), infraerr.KindProtocol, "not a bearer token"},
		{"redirect", answer(302, "", 0), infraerr.KindProtocol, "the token endpoint answered HTTP 302"},
		{"no answer in time", answer(200, "{}", time.Second), infraerr.KindTimeout, "the token endpoint cannot be reached (no answer within 200ms)"},
		{"nothing listening", closed, infraerr.KindConnection, "the token endpoint cannot be reached (request operation failed: connection refused)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := kafkasec.NewTokenSource(config.OAuthClient{TokenURL: tt.url, ClientID: "fleet", ClientSecret: trickySecret},
				kafkasec.WithTokenTimeout(200*time.Millisecond))
			start := time.Now()
			tok, err := ts.Token()
			if err == nil {
				t.Fatalf("token %q, want an error", tok.Token)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s: a token request is bounded by its timeout", d)
			}
			if k, _ := infraerr.KindOf(err); k != tt.kind {
				t.Errorf("kind %v, want %v", k, tt.kind)
			}
			line := infraerr.SanitizeError(err)
			endpoint := config.RedactURL(tt.url)
			if !strings.Contains(line, tt.want) || !strings.Contains(line, "kafka OAUTHBEARER token from "+endpoint+": ") {
				t.Errorf("logged as %q, want %q from %s", line, tt.want, endpoint)
			}
			if strings.Contains(err.Error(), trickySecret) || strings.Contains(line, trickySecret) {
				t.Errorf("the secret leaked: %v", err)
			}
		})
	}
}

func TestSharedTokenSource(t *testing.T) {
	a := config.OAuthClient{TokenURL: "https://idp.example/token", ClientID: "fleet", ClientSecret: "one"}
	b := a
	b.ClientSecret = "two"
	if kafkasec.SharedTokenSource(a) != kafkasec.SharedTokenSource(a) {
		t.Error("the same client must share one source")
	}
	if kafkasec.SharedTokenSource(a) == kafkasec.SharedTokenSource(b) {
		t.Error("another secret is another client")
	}
}
