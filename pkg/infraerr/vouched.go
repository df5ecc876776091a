package infraerr

import (
	"errors"
	"strings"
)

// Vouched builds an *Error of kind k whose message its caller vouches for:
// fixed words and the names of variables, files, mechanisms and hosts, never
// a secret nor text a backend sent. SanitizeError prints that message as it
// is, where the pattern check would blank it whole for merely naming
// KAFKA_SASL_PASSWORD, OAUTHBEARER or a certificate authority, and an
// operator would read "[REDACTED …]" instead of what to fix. The cause is
// kept for errors.Is/As and Error(), but SanitizeError never prints it.
func Vouched(k Kind, ctx Context, msg string, cause error) *Error {
	e := New(k, ctx, msg, cause)
	e.vouched = true
	return e
}

// IsVouched reports whether err is, or wraps, a Vouched error.
func IsVouched(err error) bool {
	var ie *Error
	return errors.As(err, &ie) && ie.vouched
}

// vouchedMessage returns what SanitizeError may print of err when err is a
// Vouched error, or wraps one in text (fmt.Errorf("start: %w", v)) that
// matches no pattern itself: that text followed by the vouched message,
// without the cause.
func vouchedMessage(err error) (string, bool) {
	var ie *Error
	if !errors.As(err, &ie) || !ie.vouched {
		return "", false
	}
	if err == error(ie) {
		return ie.Message, true
	}
	prefix, ok := strings.CutSuffix(err.Error(), ie.Error())
	if !ok || IsSensitive(prefix) {
		return "", false
	}
	return prefix + ie.Message, true
}
