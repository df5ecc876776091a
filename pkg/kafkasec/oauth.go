package kafkasec

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// DefaultTokenTimeout bounds one request to the token endpoint.
const DefaultTokenTimeout = 10 * time.Second

// defaultLifetime is how long a token without expires_in is kept.
const defaultLifetime = time.Minute

// refreshShare is the part of a token's lifetime after which the next
// Token call fetches a new one, so no connection is opened with a token
// about to expire (Kafka's own client refreshes at 80 % too).
const refreshShare = 0.8

// TokenSource is a sarama.AccessTokenProvider for SASL/OAUTHBEARER: it gets
// access tokens from an OAuth 2.0 token endpoint with the client-credentials
// grant (RFC 6749 4.4, the client authenticated with HTTP Basic) and keeps
// each one until 80 % of its lifetime has passed. It starts no goroutine:
// a token is fetched by the Token call that needs it, one request at a
// time, each bounded by its timeout. It is safe for concurrent use.
type TokenSource struct {
	client  config.OAuthClient
	http    *http.Client
	timeout time.Duration
	now     func() time.Time

	mu        sync.Mutex
	token     string
	refreshAt time.Time
	expiresAt time.Time
}

// TokenOption changes a TokenSource built by NewTokenSource.
type TokenOption func(*TokenSource)

// WithTokenTimeout bounds each token request by d instead of
// DefaultTokenTimeout.
func WithTokenTimeout(d time.Duration) TokenOption { return func(s *TokenSource) { s.timeout = d } }

// WithClock makes the source tell time with now (tests).
func WithClock(now func() time.Time) TokenOption { return func(s *TokenSource) { s.now = now } }

// NewTokenSource returns a TokenSource for c.
func NewTokenSource(c config.OAuthClient, opts ...TokenOption) *TokenSource {
	s := &TokenSource{client: c, http: &http.Client{}, timeout: DefaultTokenTimeout, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

var shared sync.Map // sourceKey -> *TokenSource

// SharedTokenSource returns the process's one TokenSource for c, so the
// clients of a service share a token instead of fetching one each.
func SharedTokenSource(c config.OAuthClient) *TokenSource {
	k := sourceKey(c)
	if ts, ok := shared.Load(k); ok {
		return ts.(*TokenSource)
	}
	ts, _ := shared.LoadOrStore(k, NewTokenSource(c))
	return ts.(*TokenSource)
}

// sourceKey identifies a client without keeping its secret in the key.
func sourceKey(c config.OAuthClient) string {
	sum := sha256.Sum256([]byte(c.TokenURL + "\x00" + c.ClientID + "\x00" + c.ClientSecret.Reveal()))
	return string(sum[:])
}

// Token returns a valid access token, fetching one when the kept one is due
// for refresh. A failed refresh still returns the kept token while it has
// not expired, so a token endpoint that is briefly down stops no
// connection.
func (s *TokenSource) Token() (*sarama.AccessToken, error) {
	return s.TokenContext(context.Background())
}

// TokenContext is Token bounded by ctx as well as by the timeout.
func (s *TokenSource) TokenContext(ctx context.Context) (*sarama.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.refreshAt) {
		return &sarama.AccessToken{Token: s.token}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tok, lifetime, err := s.fetch(ctx)
	if err != nil {
		if s.token != "" && now.Before(s.expiresAt) {
			return &sarama.AccessToken{Token: s.token}, nil
		}
		return nil, err
	}
	s.token = tok
	s.expiresAt = now.Add(lifetime)
	s.refreshAt = now.Add(time.Duration(float64(lifetime) * refreshShare))
	return &sarama.AccessToken{Token: tok}, nil
}

// tokenResponse is the successful answer of RFC 6749 5.1.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// oauthErrorCode is the "error" of RFC 6749 5.2: a fixed ASCII code
// (invalid_client, …), the only part of an error answer a log may show.
var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,40}$`)

func (s *TokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.client.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, s.fail(infraerr.KindConfiguration, "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL is not a usable URL", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 2.3.1: both parts form-encoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(s.client.ClientID), url.QueryEscape(s.client.ClientSecret.Reveal()))
	resp, err := s.http.Do(req)
	if err != nil {
		// The client's error quotes the URL, which may hold credentials:
		// only its classification and an allowlisted phrase are kept.
		kind, ok := infraerr.KindOf(err)
		if !ok || (kind != infraerr.KindTimeout && kind != infraerr.KindConnection) {
			kind = infraerr.KindConnection
		}
		reason := infraerr.SanitizeBackendError("request", err.Error())
		if kind == infraerr.KindTimeout || errors.Is(err, context.DeadlineExceeded) {
			kind, reason = infraerr.KindTimeout, fmt.Sprintf("no answer within %s", s.timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the same error without the URL
		}
		return "", 0, s.fail(kind, "the token endpoint cannot be reached ("+reason+")", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", 0, s.fail(infraerr.KindConnection, "the token endpoint's answer was cut off", err)
	}
	if resp.StatusCode/100 != 2 {
		return "", 0, s.refused(resp.StatusCode, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", 0, s.fail(infraerr.KindProtocol, fmt.Sprintf("the token endpoint answered HTTP %d without an access_token", resp.StatusCode), nil)
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", 0, s.fail(infraerr.KindProtocol, "the token endpoint issued a token that is not a bearer token", nil)
	}
	lifetime := defaultLifetime
	if tr.ExpiresIn > 0 {
		lifetime = time.Duration(tr.ExpiresIn) * time.Second
	}
	return tr.AccessToken, lifetime, nil
}

// refused classifies a non-2xx answer by its status and, when it has one,
// its RFC 6749 error code; nothing else of the body is kept.
func (s *TokenSource) refused(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	detail := fmt.Sprintf("HTTP %d", status)
	if json.Unmarshal(body, &e) == nil && oauthErrorCode.MatchString(e.Error) {
		detail += " " + e.Error
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		return s.fail(infraerr.KindAuthentication, "the token endpoint refused KAFKA_SASL_OAUTHBEARER_CLIENT_ID and KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET ("+detail+")", nil)
	case status == http.StatusTooManyRequests:
		return s.fail(infraerr.KindRateLimited, "the token endpoint is rate limiting ("+detail+")", nil)
	case status >= 500:
		return s.fail(infraerr.KindUnavailable, "the token endpoint failed ("+detail+")", nil)
	}
	return s.fail(infraerr.KindProtocol, "the token endpoint answered "+detail, nil)
}

// fail builds the one line a failed token request gives: what went wrong,
// the endpoint without query or user information, never the secret.
func (s *TokenSource) fail(kind infraerr.Kind, msg string, cause error) error {
	return infraerr.Vouched(kind, infraerr.Context{Transport: infraerr.TransportKafka, Operation: "oauthbearer_token",
		Target: config.RedactURL(s.client.TokenURL)},
		fmt.Sprintf("kafka OAUTHBEARER token from %s: %s", config.RedactURL(s.client.TokenURL), msg), cause)
}
