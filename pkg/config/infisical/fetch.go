package infisical

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	sdk "github.com/infisical/go-sdk"
	sdkerrors "github.com/infisical/go-sdk/packages/errors"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// fetched is one key's value from Infisical and the folder it came from.
type fetched struct {
	value string
	path  string
	scope Source // SourceInfisicalShared or SourceInfisicalService
}

// fetchPolicy retries a prefetch that failed for a transient reason
// (connection, timeout, 429, 5xx) a few times within the boot deadline.
var fetchPolicy = retry.Policy{MaxAttempts: 3, Initial: 500 * time.Millisecond, Max: 4 * time.Second, Multiplier: 2, Jitter: 0.25}

// fetch logs in and lists every folder refs need, retrying transient
// failures until ctx ends. The result maps each key found to its value; a
// key in /services/<slug>/<transport> replaces the same key in
// /shared/<transport>.
func fetch(ctx context.Context, s Settings, service string, refs []keyRef, log *slog.Logger) (map[string]fetched, error) {
	var out map[string]fetched
	err := retry.Do(ctx, fetchPolicy, nil, infraerr.Retriable,
		func(attempt int, err error, wait time.Duration) {
			log.Warn("infisical fetch failed, retrying", "attempt", attempt, "wait_ms", wait.Milliseconds(), "error", err.Error())
		},
		func(ctx context.Context, _ int) error {
			v, err := fetchOnce(ctx, s, service, refs)
			out = v
			return err
		})
	if errors.Is(err, retry.ErrStopped) {
		// The deadline ended the wait between attempts: report it as the
		// timeout it is, keeping the last attempt's (safe) message.
		return nil, infraerr.New(infraerr.KindTimeout, errCtx("fetch"), "infisical: boot deadline reached while retrying", err)
	}
	return out, err
}

// fetchOnce runs one login-and-list pass. The SDK's calls take no context,
// so the pass runs on its own goroutine and fetchOnce returns when ctx ends
// without waiting for it. That goroutine only writes to its buffered channel,
// never to the environment, and it ends with its current HTTP exchange: the
// SDK's own retries are off and every request asks the server to close the
// connection, so nothing of it stays behind once the exchange is over.
func fetchOnce(ctx context.Context, s Settings, service string, refs []keyRef) (map[string]fetched, error) {
	if err := ctx.Err(); err != nil {
		return nil, timeoutErr(err)
	}
	type result struct {
		values map[string]fetched
		err    error
	}
	done := make(chan result, 1)
	go func() {
		v, err := login(ctx, s, service, refs)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.values, r.err
	case <-ctx.Done():
		return nil, timeoutErr(ctx.Err())
	}
}

func timeoutErr(cause error) error {
	return infraerr.New(infraerr.KindTimeout, errCtx("fetch"), "infisical: no answer before the boot deadline", cause)
}

// login authenticates with universal auth and lists /shared/<t> then
// /services/<service>/<t> for each transport of refs.
func login(ctx context.Context, s Settings, service string, refs []keyRef) (map[string]fetched, error) {
	client := sdk.NewInfisicalClient(ctx, sdk.Config{
		SiteUrl: s.Addr,
		// One pass at boot: no background token renewal goroutine.
		AutoTokenRefresh: sdk.BoolPtr(false),
		// The SDK's console logger prints request URLs; ours says enough.
		SilentMode: true,
		LogWriter:  io.Discard,
		// MaxRetries 0 turns the SDK's retries off (they sleep without a
		// context); fetch retries with the boot deadline instead.
		RetryRequestsConfig: &sdk.RetryRequestsConfig{ExponentialBackoff: &sdk.ExponentialBackoffStrategy{MaxRetries: 0}},
		CustomHeaders:       map[string]string{"Connection": "close"},
	})
	if _, err := client.Auth().UniversalAuthLogin(s.ClientID, s.ClientSecret.Reveal()); err != nil {
		return nil, sanitize("login", err)
	}
	wanted := map[string]map[string]bool{} // transport → keys
	var transports []string
	for _, r := range refs {
		if wanted[r.transport] == nil {
			wanted[r.transport] = map[string]bool{}
			transports = append(transports, r.transport)
		}
		wanted[r.transport][r.key] = true
	}
	out := map[string]fetched{}
	for _, t := range transports {
		for _, scope := range []struct {
			path   string
			source Source
		}{
			{"/shared/" + t, SourceInfisicalShared},
			{"/services/" + service + "/" + t, SourceInfisicalService},
		} {
			res, err := client.Secrets().ListSecrets(sdk.ListSecretsOptions{
				ProjectID:              s.ProjectID,
				Environment:            s.Environment,
				SecretPath:             scope.path,
				ExpandSecretReferences: true,
				IncludeImports:         true,
			})
			if err != nil {
				return nil, sanitize("list "+scope.path, err)
			}
			for _, sec := range res.Secrets {
				if wanted[t][sec.SecretKey] {
					out[sec.SecretKey] = fetched{value: sec.SecretValue, path: scope.path, scope: scope.source}
				}
			}
		}
	}
	return out, nil
}

func errCtx(op string) infraerr.Context {
	return infraerr.Context{Transport: infraerr.TransportInfisical, Operation: op}
}

var reqIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// sanitize turns an SDK error into a classified error whose message is made
// only of op, an HTTP status, a request id of a fixed alphabet and a phrase
// from infraerr's allowlist. Nothing of the SDK's text is kept: its API
// errors quote the server's message and its request errors the full URL, and
// neither is ours to vouch for. The SDK error is not wrapped either, so no
// %v of the result can print it.
func sanitize(op string, err error) error {
	var api *sdkerrors.APIError
	if errors.As(err, &api) {
		kind := kindForStatus(api.StatusCode)
		msg := fmt.Sprintf("infisical %s: HTTP %d", op, api.StatusCode)
		if reqIDPattern.MatchString(api.ReqId) {
			msg += " (request id " + api.ReqId + ")"
		}
		return infraerr.New(kind, errCtx(op), msg, nil)
	}
	raw := strings.ToLower(err.Error())
	kind := infraerr.KindProtocol
	switch {
	case strings.Contains(raw, "timeout") || strings.Contains(raw, "deadline exceeded"):
		kind = infraerr.KindTimeout
	case strings.Contains(raw, "connection refused"), strings.Contains(raw, "connection reset"),
		strings.Contains(raw, "no such host"), strings.Contains(raw, "eof"),
		strings.Contains(raw, "network is unreachable"), strings.Contains(raw, "broken pipe"):
		kind = infraerr.KindConnection
	}
	return infraerr.New(kind, errCtx(op), "infisical "+op+": "+strings.TrimPrefix(infraerr.SanitizeBackendError("infisical", raw), "infisical "), nil)
}

// kindForStatus classifies an HTTP status from Infisical.
func kindForStatus(code int) infraerr.Kind {
	switch {
	case code == 401 || code == 403:
		return infraerr.KindAuthentication
	case code == 404:
		// The project or the environment does not exist (a missing folder is
		// an empty 200, never a 404).
		return infraerr.KindConfiguration
	case code == 429:
		return infraerr.KindRateLimited
	case code >= 500:
		return infraerr.KindUnavailable
	default:
		return infraerr.KindRequestRejected
	}
}
