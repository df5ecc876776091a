// Package retry implements the spec's exponential backoff with jitter
// (section 6.4) and a bounded retry loop that stops early for errors that are
// not worth retrying and for shutdown.
//
// The delay formula is the spec's: attempt n (0-based) waits
// min(initial*base^n, max) * (1 + U(-jitter, +jitter)). Delay states it, for
// the callers that schedule a retry themselves (the orchestrator persists its
// next retry time); Do waits the same delays through cenkalti/backoff's
// exponential backoff, which computes that formula.
package retry

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is a bounded exponential backoff. The zero value is not useful; use
// Default or fill every field.
type Policy struct {
	// MaxAttempts counts the first attempt too; 1 means no retry.
	MaxAttempts int `yaml:"max_attempts" json:"max_attempts"`
	// Initial is the delay after the first failed attempt, before jitter.
	Initial time.Duration `yaml:"initial_delay" json:"initial_delay"`
	// Max caps the delay before jitter.
	Max time.Duration `yaml:"max_delay" json:"max_delay"`
	// Multiplier is the exponential base (spec range 1.5–4.0).
	Multiplier float64 `yaml:"exponential_base" json:"exponential_base"`
	// Jitter is the symmetric jitter factor (spec range 0–0.5).
	Jitter float64 `yaml:"jitter_factor" json:"jitter_factor"`
}

// Default is the consumer wiring's standard policy from spec section 6.4:
// three attempts, 1 s initial delay doubling to at most 30 s, 25% jitter.
func Default() Policy {
	return Policy{MaxAttempts: 3, Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.25}
}

// Validate reports a policy outside the spec's ranges.
func (p Policy) Validate() error {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > 10:
		return errors.New("retry: max_attempts must be within 1..10")
	case p.Initial <= 0:
		return errors.New("retry: initial_delay must be > 0")
	case p.Max < p.Initial:
		return errors.New("retry: max_delay must be >= initial_delay")
	case p.Multiplier < 1:
		return errors.New("retry: exponential_base must be >= 1")
	case p.Jitter < 0 || p.Jitter > 0.5:
		return errors.New("retry: jitter_factor must be within 0..0.5")
	}
	return nil
}

// Delay returns the wait after failed attempt n (0-based). u must be uniform in
// [0,1); it is a parameter so the formula is testable without randomness.
func (p Policy) Delay(n int, u float64) time.Duration {
	base := float64(p.Initial) * math.Pow(p.Multiplier, float64(n))
	if base > float64(p.Max) || math.IsInf(base, 0) {
		base = float64(p.Max)
	}
	d := base * (1 + p.Jitter*(2*u-1))
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}

// Permanent marks err as not worth retrying; Do returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// ErrStopped is returned by Do when stop closed or ctx ended while it was
// waiting between attempts: the operation was neither completed nor given up.
var ErrStopped = errors.New("retry: stopped while waiting to retry")

// Do calls fn until it succeeds, returns an error that retriable rejects (or
// one marked Permanent), or MaxAttempts calls have failed; then it returns the
// last error. Between attempts it waits as BackOff(p) says, aborting with
// ErrStopped (wrapping the last error) when ctx is done or stop is closed;
// fn keeps ctx, so closing stop never cancels an attempt under way. A nil
// retriable retries every error. onRetry, if set, is told of each retry.
//
// The loop is cenkalti/backoff's Retry; Do adds what the fleet's callers
// rely on and the library does not give: the stop channel, the attempt
// number, and the last error (not the context's) when a wait is cut short.
func Do(ctx context.Context, p Policy, stop <-chan struct{}, retriable func(error) bool, onRetry func(attempt int, err error, wait time.Duration), fn func(ctx context.Context, attempt int) error) error {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stop != nil {
		go func() {
			select {
			case <-stop:
				cancel()
			case <-waitCtx.Done():
			}
		}()
	}
	var (
		attempts int
		last     error
		final    bool // last was not to be retried
	)
	op := func() (struct{}, error) {
		last = fn(ctx, attempts)
		attempts++
		if last != nil && (IsPermanent(last) || (retriable != nil && !retriable(last))) {
			final = true
			return struct{}{}, backoff.Permanent(last)
		}
		return struct{}{}, last
	}
	opts := []backoff.RetryOption{
		backoff.WithBackOff(BackOff(p)),
		backoff.WithMaxTries(uint(p.MaxAttempts)),
		backoff.WithMaxElapsedTime(0), // MaxAttempts bounds the loop, not time
	}
	if onRetry != nil {
		opts = append(opts, backoff.WithNotify(func(err error, wait time.Duration) { onRetry(attempts, last, wait) }))
	}
	if _, err := backoff.Retry(waitCtx, op, opts...); err == nil {
		return nil
	}
	if !final && attempts < p.MaxAttempts {
		return errors.Join(ErrStopped, last)
	}
	return last
}

// BackOff is p as a cenkalti/backoff strategy. Its delays follow Delay: the
// library's exponential backoff computes the same formula (interval times
// multiplier, capped, then spread by the randomization factor), so the
// spec's numbers hold with the library's randomness.
func BackOff(p Policy) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.Initial, p.Max
	b.Multiplier, b.RandomizationFactor = max(p.Multiplier, 1), p.Jitter
	b.Reset()
	return b
}

// Sleep waits for d or until ctx is done; it reports whether the full wait
// elapsed (false means ctx ended first).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
