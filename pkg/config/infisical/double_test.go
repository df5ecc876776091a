// This file holds a protocol double of Infisical, NOT Infisical: an
// httptest.Server that answers the two HTTP endpoints github.com/infisical/go-sdk
// v0.8.0 calls for a universal-auth prefetch, with the request shapes the SDK
// sends and the JSON the Infisical API returns, as read from the SDK's source
// (packages/api/auth/universal_auth_login.go, packages/api/secrets/list_secrets.go
// and their models):
//
//	POST /api/v1/auth/universal-auth/login
//	  body {"clientId","clientSecret"[,"organizationSlug"]}
//	  200  {"accessToken","expiresIn","accessTokenMaxTTL","tokenType":"Bearer"}
//	GET  /api/v3/secrets/raw?workspaceId&workspaceSlug&environment&secretPath
//	                        &expandSecretReferences&include_imports&recursive
//	  Authorization: Bearer <accessToken>
//	  200  {"secrets":[{"id","_id","workspace","environment","version","type",
//	        "secretKey","secretValue","secretComment","secretPath","tags",
//	        "secretMetadata"}],"imports":[]}
//
// Errors use Infisical's error body {"reqId","statusCode","message","error"};
// a folder that does not exist lists as empty (Infisical returns an empty
// 200 there, not a 404). Infisical itself cannot run on our machines; what
// the double proves is that our code drives the real SDK correctly, not that
// a given Infisical server version agrees with the SDK.
package infisical

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// double is the protocol double described in the file comment. Tests change
// its fields only through configure, so the handler's reads under mu are
// ordered after them.
type double struct {
	t            *testing.T
	clientID     string
	clientSecret string
	token        string
	projectID    string
	environment  string

	mu sync.Mutex
	// folders maps a secret path ("/shared/kafka") to its keys and values.
	folders map[string]map[string]string
	// requests records "METHOD path secretPath" of every request served.
	requests []string
	// listFailures makes the next n list requests answer listStatus.
	listFailures int
	listStatus   int
	// errorMessage, when set, replaces the message of every error body; a
	// hostile or buggy server may echo anything, the submitted secret too.
	errorMessage func(submittedSecret string) string
	// stall, when non-nil, holds every request after the first stallAfter
	// until it is closed or the client goes away: a server that accepted and
	// never answers.
	stall      chan struct{}
	stallAfter int
}

func newDouble(t *testing.T) (*double, *httptest.Server) {
	d := &double{
		t:            t,
		clientID:     "c6f1e2d4-client-id",
		clientSecret: "ua-secret-7f3b9c1d2e4a",
		token:        "st.access-token.9a8b7c6d5e",
		projectID:    "proj-2b4d6f",
		environment:  "prod",
		folders:      map[string]map[string]string{},
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv
}

// configure changes the double's behaviour; call it before the requests.
func (d *double) configure(f func(d *double)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

// Requests returns the requests the double has received.
func (d *double) Requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

func (d *double) set(folders map[string]map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, kv := range folders {
		d.folders[p] = maps.Clone(kv)
	}
}

func (d *double) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	var stall chan struct{}
	if len(d.requests) >= d.stallAfter {
		stall = d.stall
	}
	d.requests = append(d.requests, r.Method+" "+r.URL.Path+" "+r.URL.Query().Get("secretPath"))
	d.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
		d.fail(w, http.StatusServiceUnavailable, "Service Unavailable", "stalled", "")
		return
	}
	if ua := r.Header.Get("User-Agent"); ua != "infisical-go-sdk" {
		d.t.Errorf("double: User-Agent %q, the SDK sends infisical-go-sdk", ua)
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/auth/universal-auth/login":
		d.login(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v3/secrets/raw":
		d.list(w, r)
	default:
		d.fail(w, http.StatusNotFound, "Not Found", fmt.Sprintf("Route %s:%s not found", r.Method, r.URL.Path), "")
	}
}

func (d *double) login(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		d.t.Errorf("double: login Content-Type %q", ct)
	}
	var body struct {
		ClientID         string `json:"clientId"`
		ClientSecret     string `json:"clientSecret"`
		OrganizationSlug string `json:"organizationSlug"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		d.t.Errorf("double: login body does not match the SDK's shape: %v", err)
		d.fail(w, http.StatusUnprocessableEntity, "ValidationFailure", "bad body", "")
		return
	}
	d.mu.Lock()
	ok, token := body.ClientID == d.clientID && body.ClientSecret == d.clientSecret, d.token
	d.mu.Unlock()
	if !ok {
		d.fail(w, http.StatusUnauthorized, "UnauthorizedError", "Invalid credentials", body.ClientSecret)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"accessToken": token, "expiresIn": 7200, "accessTokenMaxTTL": 7200, "tokenType": "Bearer",
	})
}

// sdkListQuery is the query the SDK sends on every list, no more, no less.
var sdkListQuery = []string{"environment", "expandSecretReferences", "include_imports", "recursive", "secretPath", "workspaceId", "workspaceSlug"}

func (d *double) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if keys := slices.Sorted(maps.Keys(q)); !slices.Equal(keys, sdkListQuery) {
		d.t.Errorf("double: list query keys %v, the SDK sends %v", keys, sdkListQuery)
	}
	d.mu.Lock()
	token, project, environment, status := d.token, d.projectID, d.environment, d.listStatus
	failing := d.listFailures > 0
	if failing {
		d.listFailures--
	}
	folder := maps.Clone(d.folders[q.Get("secretPath")])
	d.mu.Unlock()
	switch {
	case r.Header.Get("Authorization") != "Bearer "+token:
		d.fail(w, http.StatusUnauthorized, "UnauthorizedError", "Token missing or invalid", "")
		return
	case failing:
		d.fail(w, status, http.StatusText(status), "Something went wrong", "")
		return
	case q.Get("workspaceId") != project:
		d.fail(w, http.StatusNotFound, "NotFound", "Project not found", "")
		return
	case q.Get("environment") != environment:
		d.fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Environment with slug '%s' not found", q.Get("environment")), "")
		return
	}
	secrets := []map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(folder)) {
		id := fmt.Sprintf("sec-%d", len(secrets)+1)
		secrets = append(secrets, map[string]any{
			"id": id, "_id": id, "workspace": project, "environment": environment,
			"version": 1, "type": "shared", "secretKey": k, "secretValue": folder[k],
			"secretComment": "", "secretPath": q.Get("secretPath"),
			"tags": []any{}, "secretMetadata": []any{},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": secrets, "imports": []any{}})
}

func (d *double) fail(w http.ResponseWriter, status int, kind, message, submittedSecret string) {
	d.mu.Lock()
	echo := d.errorMessage
	d.mu.Unlock()
	if echo != nil {
		message = echo(submittedSecret)
	}
	writeJSON(w, status, map[string]any{"reqId": "req-Q2xz81", "statusCode": status, "message": message, "error": kind})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
