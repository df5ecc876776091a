package infraerr

import (
	"regexp"
	"strings"
)

// MaxSanitizedLength is the number of characters (Unicode code points, as in
// Python) a sanitized message keeps before TruncatedSuffix is appended.
const MaxSanitizedLength = 500

// Redacted replaces a message that may contain sensitive data.
const Redacted = "[REDACTED - potentially sensitive data]"

// TruncatedSuffix is appended to a message cut at MaxSanitizedLength.
const TruncatedSuffix = "... [truncated]"

// SensitivePatterns is the Python runtime's list of lowercase substrings that
// mark a message as potentially sensitive (§7.3, util_error_sanitization.py).
// A message containing any of them, compared case-insensitively, is redacted
// as a whole. The list is deliberately broad ("auth", "pwd", "token").
// Do not modify it at run time.
var SensitivePatterns = []string{
	"password", "passwd", "pwd",
	"secret", "token",
	"api_key", "apikey", "api-key",
	"access_key", "accesskey", "access-key",
	"private_key", "privatekey", "private-key",
	"ssh_key", "sshkey", "ssh-key",
	"client_secret", "clientsecret", "client-secret",
	"access_token", "accesstoken", "access-token",
	"refresh_token", "refreshtoken", "refresh-token",
	"id_token", "idtoken", "id-token",
	"session_id", "sessionid", "session-id",
	"credential", "auth", "bearer", "authorization",
	"connection_string", "connectionstring", "connection-string",
	"conn_str", "connstr",
	"user:pass", "username:password",
	"aws_secret", "aws_access",
	"vault_token", "vaulttoken", "vault-token", "x-vault-token",
	"consul_token", "consultoken", "consul-token",
	"consul_http_token", "consul-http-token", "x-consul-token",
	"db_password", "database_password", "pgpassword", "mysql_pwd",
	"-----begin", "-----end",
	"mongodb://", "postgres://", "postgresql://", "mysql://",
	"redis://", "rediss://", "valkey://", "amqp://", "kafka://",
}

// extraDetectors go beyond the Python list (they only ever redact more, so
// wire compatibility is unaffected): any URL with an '@' after its scheme
// (userinfo credentials), JWTs, e-mail addresses (PII, §7.3) and AWS access
// key ids.
var extraDetectors = []*regexp.Regexp{
	regexp.MustCompile(`(?i)[a-z][a-z0-9+.\-]*://\S*@`),
	regexp.MustCompile(`eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.`),
	regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`),
	regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),
}

// IsSensitive reports whether s contains any SensitivePatterns entry
// (case-insensitively) or matches one of the additional detectors (URL
// userinfo, JWT, e-mail address, AWS access key id).
func IsSensitive(s string) bool {
	lower := strings.ToLower(s)
	for _, p := range SensitivePatterns {
		if strings.Contains(lower, p) {
			return true
		}
	}
	for _, re := range extraDetectors {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// truncate keeps the first MaxSanitizedLength code points of s (an invalid
// UTF-8 byte counts as one) and appends TruncatedSuffix when it cut anything.
func truncate(s string) string {
	n := 0
	for i := range s {
		if n == MaxSanitizedLength {
			return s[:i] + TruncatedSuffix
		}
		n++
	}
	return s
}

// SanitizeString makes an error string safe to log or publish
// (sanitize_error_string): "" stays "", a string for which IsSensitive is
// true becomes Redacted, anything else is truncated to MaxSanitizedLength
// characters plus TruncatedSuffix. Guarantee: the result never contains any
// of the SensitivePatterns (case-insensitively) unless it is exactly Redacted
// (which contains none either).
func SanitizeString(s string) string {
	if s == "" {
		return ""
	}
	if IsSensitive(s) {
		return Redacted
	}
	return truncate(s)
}

// SanitizeError renders err for DLQ records, logs and responses
// (sanitize_error_message): "{Type}: {message}" where Type is TypeName(err);
// when the message is sensitive (IsSensitive) the result is
// "{Type}: [REDACTED - potentially sensitive data]"; a long message is
// truncated to MaxSanitizedLength characters plus TruncatedSuffix. For an
// *Error the message is its Message followed by its cause chain (without the
// class-name fallback of Error()). SanitizeError(nil) is "".
//
// A Vouched error keeps its message (not its cause) even when it matches a
// pattern, and so does one wrapped in text that does not match any.
//
// Note that the Type itself may contain a pattern (InfraAuthenticationError
// contains "auth"); only the message part is guaranteed pattern-free, except
// for the names a Vouched message was built from.
func SanitizeError(err error) string {
	if err == nil {
		return ""
	}
	if msg, ok := vouchedMessage(err); ok {
		return TypeName(err) + ": " + truncate(msg)
	}
	var msg string
	if ie, ok := err.(*Error); ok && ie != nil {
		msg = ie.Message
		if ie.Err != nil {
			if msg != "" {
				msg += ": "
			}
			msg += ie.Err.Error()
		}
	} else {
		msg = err.Error()
	}
	typ := TypeName(err)
	if IsSensitive(msg) {
		return typ + ": " + Redacted
	}
	return typ + ": " + truncate(msg)
}

// SafeBackendPhrases is the allowlist of phrases SanitizeBackendError may
// copy from a backend error, checked in this order (longer, more specific
// phrases first; first match wins).
var SafeBackendPhrases = []string{
	"connection refused", "connection reset", "connection timeout", "connection closed",
	"network unreachable", "host not found", "dns lookup failed",
	"service unavailable", "too many connections", "resource exhausted",
	"authentication failed", "permission denied", "access denied",
	"already exists", "not found", "conflict",
	"timeout", "unavailable",
}

// SanitizeBackendError summarizes a raw backend error (Consul, PostgreSQL, …)
// by allowlist (sanitize_backend_error): the result is
// "{backend} operation failed", followed by ": {phrase}" when the raw error
// contains (case-insensitively) one of SafeBackendPhrases. Nothing else of
// raw ever appears in the result.
func SanitizeBackendError(backend, raw string) string {
	base := backend + " operation failed"
	lower := strings.ToLower(strings.TrimSpace(raw))
	if lower == "" {
		return base
	}
	for _, p := range SafeBackendPhrases {
		if strings.Contains(lower, p) {
			return base + ": " + p
		}
	}
	return base
}

// dsnSafeQueryKeys are the DSN query parameters / keywords RedactDSN keeps.
var dsnSafeQueryKeys = map[string]bool{
	"sslmode": true, "connect_timeout": true, "application_name": true,
	"target_session_attrs": true, "pool_max_conns": true, "pool_min_conns": true,
}

// dsnSafeKeywords are the libpq keyword/value DSN keys RedactDSN keeps.
var dsnSafeKeywords = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true,
	"sslmode": true, "connect_timeout": true, "application_name": true,
	"target_session_attrs": true,
}

var safeUserRE = regexp.MustCompile(`^[A-Za-z0-9._~\-]+$`)

// RedactedDSN is what RedactDSN returns for input it cannot take apart safely.
const RedactedDSN = "[REDACTED DSN]"

// RedactDSN returns a loggable form of a connection string. Guarantee: the
// password never survives, in any of these forms:
//   - URL form "scheme://user:pass@host:port/db?query": the password is dropped
//     entirely (not masked), giving "scheme://user@host:port/db"; the user is
//     kept only when it consists of unreserved characters; the fragment is
//     dropped and only non-secret query parameters (sslmode, connect_timeout,
//     application_name, target_session_attrs, pool_min/max_conns) are kept. The
//     LAST '@' separates userinfo from host, so a password containing '@' or
//     ':' is still removed. When an '@' comes after the first '/', '?' or '#'
//     (an unencoded '/', '?' or '#' in the password, or an '@' in the path or
//     query) the input is ambiguous and RedactedDSN is returned.
//   - libpq keyword form "host=h port=5432 user=u password='x y' dbname=d":
//     only the keywords host, hostaddr, port, dbname, user, sslmode,
//     connect_timeout, application_name and target_session_attrs are kept.
//   - anything else: SanitizeString(dsn).
//
// Unparseable keyword input (e.g. an unterminated quote) yields RedactedDSN.
func RedactDSN(dsn string) string {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return ""
	}
	if i := strings.Index(dsn, "://"); i > 0 {
		return redactURLDSN(dsn[:i], dsn[i+3:])
	}
	if strings.Contains(dsn, "=") {
		return redactKeywordDSN(dsn)
	}
	return SanitizeString(dsn)
}

func redactURLDSN(scheme, rest string) string {
	if !safeUserRE.MatchString(strings.ReplaceAll(scheme, "+", "")) {
		return RedactedDSN
	}
	user := ""
	at := strings.LastIndex(rest, "@")
	if delim := strings.IndexAny(rest, "/?#"); at >= 0 && delim >= 0 && at > delim {
		// An '@' after the first '/', '?' or '#': either a password holding
		// one of those characters unencoded, or an '@' in the path/query.
		// Both readings are possible, so neither can be shown safely.
		return RedactedDSN
	}
	if at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		name := userinfo
		if c := strings.IndexByte(userinfo, ':'); c >= 0 {
			name = userinfo[:c]
		}
		if safeUserRE.MatchString(name) {
			user = name + "@"
		}
	}
	if h := strings.IndexByte(rest, '#'); h >= 0 {
		rest = rest[:h]
	}
	base, query, hasQuery := strings.Cut(rest, "?")
	out := scheme + "://" + user + base
	if hasQuery {
		var kept []string
		for _, kv := range strings.Split(query, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if dsnSafeQueryKeys[strings.ToLower(k)] {
				kept = append(kept, kv)
			}
		}
		if len(kept) > 0 {
			out += "?" + strings.Join(kept, "&")
		}
	}
	return out
}

func redactKeywordDSN(dsn string) string {
	var kept []string
	s := dsn
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return RedactedDSN
		}
		key := strings.TrimSpace(s[:eq])
		if strings.ContainsAny(key, " \t\r\n'") {
			return RedactedDSN
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, "'") {
			// Quoted value: backslash escapes the next character.
			var b strings.Builder
			b.WriteByte('\'')
			i, closed := 1, false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					b.WriteByte(c)
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				b.WriteByte(c)
				i++
				if c == '\'' {
					closed = true
					break
				}
			}
			if !closed {
				return RedactedDSN
			}
			val, s = b.String(), s[i:]
		} else {
			end := strings.IndexAny(s, " \t\r\n")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if dsnSafeKeywords[strings.ToLower(key)] {
			kept = append(kept, key+"="+val)
		}
	}
	return strings.Join(kept, " ")
}

// RedactBootstrapServers strips credentials from a comma-separated Kafka
// bootstrap list for logging: in every entry, everything up to and including
// the last '@' after an optional "scheme://" is removed
// ("SASL_SSL://u:p@b1:9092, b2:9092" → "SASL_SSL://b1:9092,b2:9092"). Entries
// are trimmed; empty entries are dropped; a scheme that is not a plain
// identifier is dropped too.
func RedactBootstrapServers(s string) string {
	var out []string
	for _, srv := range strings.Split(s, ",") {
		srv = strings.TrimSpace(srv)
		if srv == "" {
			continue
		}
		prefix := ""
		if i := strings.Index(srv, "://"); i >= 0 {
			prefix, srv = srv[:i+3], srv[i+3:]
			if !safeUserRE.MatchString(prefix[:i]) {
				prefix = ""
			}
		}
		if at := strings.LastIndex(srv, "@"); at >= 0 {
			srv = srv[at+1:]
		}
		out = append(out, prefix+srv)
	}
	return strings.Join(out, ",")
}
