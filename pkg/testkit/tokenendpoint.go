package testkit

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TokenEndpoint is the tests' stand-in for an OAuth 2.0 identity provider,
// as the Infisical tests have theirs: an httptest server that answers the
// client-credentials grant (RFC 6749 4.4, client authenticated with HTTP
// Basic) with unsigned JWTs ({"alg":"none"}, claims sub, iat, exp, scope),
// the tokens Kafka's unsecured OAUTHBEARER validator accepts. It is not an
// identity provider: it signs nothing and knows one client.
type TokenEndpoint struct {
	// URL is the token endpoint.
	URL string
	// ClientID and ClientSecret are the one client it knows.
	ClientID, ClientSecret string

	mu       sync.Mutex
	lifetime time.Duration
	refuse   bool
	requests int
	issued   []string
}

// NewTokenEndpoint starts a token endpoint for a client with a random
// secret; tokens live an hour unless SetLifetime says otherwise.
func NewTokenEndpoint(t testing.TB, clientID string) *TokenEndpoint {
	t.Helper()
	e := &TokenEndpoint{ClientID: clientID, ClientSecret: "cs-" + Unique() + Unique(), lifetime: time.Hour}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	e.URL = srv.URL + "/oauth2/token"
	return e
}

// SetLifetime sets exp - iat of the tokens issued from now on; a negative
// lifetime issues tokens that have already expired.
func (e *TokenEndpoint) SetLifetime(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lifetime = d
}

// Refuse makes every request fail as a wrong client secret would (HTTP 401,
// error invalid_client, and a description that echoes the secret, which a
// client must never repeat).
func (e *TokenEndpoint) Refuse(refuse bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refuse = refuse
}

// Requests is how many token requests arrived.
func (e *TokenEndpoint) Requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}

// Issued returns every token issued, for tests that look for secrets where
// none may be.
func (e *TokenEndpoint) Issued() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.issued...)
}

func (e *TokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests++
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials":
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "unsupported_grant_type"})
		return
	case e.refuse || !ok || id != e.ClientID || secret != e.ClientSecret:
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
			"error_description": "client " + id + " with secret " + secret + " is unknown"})
		return
	}
	now := time.Now()
	token := UnsignedJWT(map[string]any{"sub": id, "iat": now.Unix(), "exp": now.Add(e.lifetime).Unix(), "scope": "kafka"})
	e.issued = append(e.issued, token)
	expiresIn := int64(e.lifetime / time.Second)
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": token, "token_type": "Bearer", "expires_in": max(expiresIn, 1)})
}

// UnsignedJWT is a JWS with "alg":"none" and an empty signature (RFC 7519
// 6.1), the form Kafka's unsecured OAUTHBEARER validator reads.
func UnsignedJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + "."
}
