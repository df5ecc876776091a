package infraerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// secrets that must never survive any sanitizer in this file.
var secrets = []string{"hunter2", "s3cr3t", "p@ss#w/rd", "p@ss:w", "Sup3rS3cret", "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9", "alice@example.com", "tok_live_123"}

func assertNoSecret(t *testing.T, out string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("output %q leaks %q", out, s)
		}
	}
}

func TestSanitizeStringNastyInputs(t *testing.T) {
	tests := []struct {
		name, in string
		redacted bool
	}{
		{"postgres dsn", "could not connect: postgresql://admin:hunter2@db.internal:5432/omninode", true},
		{"postgres short scheme", "dial postgres://svc:s3cr3t@10.0.0.5/reg failed", true},
		{"password kv", "auth failed for user=svc password=hunter2", true},
		{"upper case keyword", "PASSWORD=hunter2", true},
		{"pgpassword env", "PGPASSWORD=hunter2 psql", true},
		{"bearer", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", true},
		{"bare jwt", "bad credentials eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", true},
		{"jwt without keyword", "rejected eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", true},
		{"api key", "x-api-key: tok_live_123", true},
		{"pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIE...", true},
		{"redis url", "redis://default:Sup3rS3cret@cache:6379/0", true},
		{"valkey url", "valkey://:Sup3rS3cret@cache:6379", true},
		{"http userinfo (extra detector)", "GET http://admin:hunter2@consul:8500/v1/agent", true},
		{"email (extra detector)", "no node for alice@example.com", true},
		{"aws key id (extra detector)", "key AKIAIOSFODNN7EXAMPLE rejected", true},
		{"vault header", "X-Vault-Token rejected", true},
		{"consul token", "CONSUL_HTTP_TOKEN invalid", true},
		{"session", "session_id=abc", true},
		{"user:pass", "user:pass@host", true},
		{"broad auth", "authentication failed", true},
		{"broad pwd", "cwd=/pwd", true},
		{"kelvin sign lowercases to k", "to\u212Aen=abc", true},
		{"safe", "connection refused to broker 127.0.0.1:19092", false},
		{"safe topic", "unknown topic onex.evt.platform.node-heartbeat.v1", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeString(tt.in)
			if tt.redacted {
				if got != Redacted {
					t.Errorf("SanitizeString(%q) = %q, want redacted", tt.in, got)
				}
			} else if got != tt.in {
				t.Errorf("SanitizeString(%q) = %q, want unchanged", tt.in, got)
			}
			assertNoSecret(t, got)
			assertNoSecret(t, SanitizeError(errors.New(tt.in)))
		})
	}
}

func TestSanitizeStringTruncation(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"exactly 500", strings.Repeat("a", 500), strings.Repeat("a", 500)},
		{"501", strings.Repeat("a", 501), strings.Repeat("a", 500) + TruncatedSuffix},
		{"multibyte counts code points", strings.Repeat("é", 600), strings.Repeat("é", 500) + TruncatedSuffix},
		{"invalid utf8 byte counts as one", strings.Repeat("\xff", 501), strings.Repeat("\xff", 500) + TruncatedSuffix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SanitizeString(tt.in); got != tt.want {
				t.Errorf("len %d, want len %d", len(got), len(tt.want))
			}
		})
	}
}

func TestSanitizeError(t *testing.T) {
	long := strings.Repeat("x", 600)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("payload is not valid JSON"), "RuntimeHostError: payload is not valid JSON"},
		{"json syntax", jsonSyntaxErr(t), "JSONDecodeError: unexpected end of JSON input"},
		{"content", Content("payload.node_id", "not a valid UUID"), "ValidationError: payload.node_id: not a valid UUID"},
		{"timeout with cause", New(KindTimeout, Context{}, "publish", context.DeadlineExceeded), "InfraTimeoutError: publish: context deadline exceeded"},
		{"no message with cause", &Error{Kind: KindConnection, Err: errors.New("refused")}, "InfraConnectionError: refused"},
		{"secret in cause", New(KindConnection, Context{}, "connect", errors.New("postgresql://u:hunter2@h/db")), "InfraConnectionError: " + Redacted},
		{"secret in message", New(KindAuthentication, Context{}, "bad password hunter2", nil), "InfraAuthenticationError: " + Redacted},
		{"wrapped *Error uses full text", fmt.Errorf("handler: %w", New(KindTimeout, Context{}, "slow", nil)), "InfraTimeoutError: handler: slow"},
		{"truncated", errors.New(long), "RuntimeHostError: " + strings.Repeat("x", 500) + TruncatedSuffix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeError(tt.err)
			if got != tt.want {
				t.Errorf("SanitizeError = %q, want %q", got, tt.want)
			}
			assertNoSecret(t, got)
		})
	}
}

func TestSanitizeBackendError(t *testing.T) {
	tests := []struct {
		backend, raw, want string
	}{
		{"postgres", "connection refused", "postgres operation failed: connection refused"},
		{"postgres", "dial tcp: Connection Refused (postgresql://u:hunter2@h)", "postgres operation failed: connection refused"},
		{"consul", "auth failed: password=hunter2", "consul operation failed"},
		{"consul", "", "consul operation failed"},
		{"consul", "   ", "consul operation failed"},
		{"postgres", `{"error": "timeout"}`, "postgres operation failed: timeout"},
		{"consul", "Unexpected response code: 503 (Service Unavailable)", "consul operation failed: service unavailable"},
		{"postgres", "FATAL: password authentication failed for user \"svc\"", "postgres operation failed: authentication failed"},
		{"postgres", "relation already exists", "postgres operation failed: already exists"},
		{"consul", "key not found", "consul operation failed: not found"},
		{"postgres", "connection timeout after 10s", "postgres operation failed: connection timeout"},
		{"consul", "no route", "consul operation failed"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got := SanitizeBackendError(tt.backend, tt.raw)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			assertNoSecret(t, got)
		})
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"standard", "postgresql://svc:hunter2@db.internal:5432/omninode", "postgresql://svc@db.internal:5432/omninode"},
		{"postgres scheme", "postgres://svc:hunter2@localhost:5436/reg?sslmode=disable", "postgres://svc@localhost:5436/reg?sslmode=disable"},
		{"password with @ and :", "postgresql://svc:p@ss:w@db:5432/x", "postgresql://svc@db:5432/x"},
		{"password with unencoded / or # is ambiguous", "postgresql://svc:p@ss#w/rd@db:5432/x", RedactedDSN},
		{"password only", "postgresql://:hunter2@db/x", "postgresql://db/x"},
		{"no password", "postgresql://svc@db/x", "postgresql://svc@db/x"},
		{"no userinfo", "postgresql://db:5432/x", "postgresql://db:5432/x"},
		{"password query param", "postgresql://db/x?user=svc&password=hunter2&sslmode=require", "postgresql://db/x?sslmode=require"},
		{"fragment dropped", "postgresql://db/x#hunter2", "postgresql://db/x"},
		{"weird user dropped", "postgresql://a%2Fb~c!:hunter2@db/x", "postgresql://db/x"},
		{"@ in query is ambiguous", "postgresql://db/x?password=hunter2@y", RedactedDSN},
		{"@ in query value found by fuzzing", "postgresql://db:5432/x?password=@00000", RedactedDSN},
		{"driver scheme", "postgresql+asyncpg://svc:hunter2@db/x", "postgresql+asyncpg://svc@db/x"},
		{"keyword form", "host=db port=5432 user=svc password=hunter2 dbname=x sslmode=disable", "host=db port=5432 user=svc dbname=x sslmode=disable"},
		{"keyword quoted", "host=db password='p@ss#w/rd with space' dbname=x", "host=db dbname=x"},
		{"keyword escaped quote", `host=db password='a\'hunter2' dbname=x`, "host=db dbname=x"},
		{"keyword unterminated", "host=db password='hunter2", RedactedDSN},
		{"keyword options dropped", "host=db options='-c s3cr3t' dbname=x", "host=db dbname=x"},
		{"not a dsn", "localhost:5432", "localhost:5432"},
		{"not a dsn sensitive", "hunter2 password", Redacted},
		{"empty", "  ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactDSN(tt.in)
			if got != tt.want {
				t.Errorf("RedactDSN(%q) = %q, want %q", tt.in, got, tt.want)
			}
			assertNoSecret(t, got)
		})
	}
}

func TestRedactBootstrapServers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:19092", "127.0.0.1:19092"},
		{"u:hunter2@b1:9092, b2:9092", "b1:9092,b2:9092"},
		{"SASL_SSL://svc:p@ss#w/rd@b1:9092", "SASL_SSL://b1:9092"},
		{"b1:9092,,", "b1:9092"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := RedactBootstrapServers(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			assertNoSecret(t, got)
		})
	}
}

func lowerContainsPattern(s string) (string, bool) {
	lower := strings.ToLower(s)
	for _, p := range SensitivePatterns {
		if strings.Contains(lower, p) {
			return p, true
		}
	}
	return "", false
}

func FuzzSanitizeString(f *testing.F) {
	for _, s := range []string{
		"", "connection refused", "postgresql://u:p@h/db", "POSTGRES://X", "password=1",
		strings.Repeat("a", 499) + "postgres://", strings.Repeat("é", 510), "to\u212Aen", "\xff\xfe-----BEGIN",
		"http://u:p@h", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := SanitizeString(in)
		if out == Redacted {
			return
		}
		if p, ok := lowerContainsPattern(out); ok {
			t.Fatalf("output %q contains sensitive pattern %q", out, p)
		}
		if IsSensitive(out) {
			t.Fatalf("output %q is itself sensitive", out)
		}
		if utf8.RuneCountInString(out) > MaxSanitizedLength+utf8.RuneCountInString(TruncatedSuffix) {
			t.Fatalf("output too long: %d", utf8.RuneCountInString(out))
		}
		if !strings.HasPrefix(in, strings.TrimSuffix(out, TruncatedSuffix)) {
			t.Fatalf("output is not a prefix of the input")
		}
		// The same guarantee holds for the message part of SanitizeError.
		se := SanitizeError(errors.New(in))
		msg := strings.TrimPrefix(se, "RuntimeHostError: ")
		if msg != Redacted {
			if p, ok := lowerContainsPattern(msg); ok {
				t.Fatalf("SanitizeError message %q contains %q", msg, p)
			}
		}
	})
}

func FuzzRedactDSN(f *testing.F) {
	for _, s := range []string{
		"postgresql://svc:hunter2@db:5432/x", "host=db password=hunter2", "postgresql://a:b@c@d/e?password=f#g",
		"host=db password='x", "x://", "=", "a=b c='d\\'e'",
	} {
		f.Add(s, "hunter2")
	}
	f.Fuzz(func(t *testing.T, user, pass string) {
		if len(pass) < 6 || strings.ContainsAny(pass, " \t\r\n'\\") {
			return
		}
		// The password is placed in all the usual spots; it must not survive.
		for _, dsn := range []string{
			"postgresql://" + user + ":" + pass + "@db:5432/x",
			"postgresql://db:5432/x?password=" + pass,
			"host=db user=svc password=" + pass + " dbname=x",
			"host=db password='" + pass + "' dbname=x",
		} {
			out := RedactDSN(dsn)
			// Only meaningful when the password cannot be mistaken for other
			// kept parts of the DSN.
			if strings.Contains("postgresql://"+user+"@db:5432/x host=db user=svc dbname=x "+RedactedDSN+" "+Redacted, pass) {
				continue
			}
			if strings.Contains(out, pass) {
				t.Fatalf("RedactDSN(%q) = %q leaks the password", dsn, out)
			}
		}
	})
}
