package infraerr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSanitizeVouched(t *testing.T) {
	const secret = "hunter2-s3cret"
	cause := errors.New("server said: password " + secret + " is wrong")
	v := Vouched(KindConfiguration, Context{Transport: TransportKafka}, "KAFKA_SASL_PASSWORD is required for SCRAM-SHA-512", cause)
	plain := New(KindConfiguration, Context{}, "KAFKA_SASL_PASSWORD is required", nil)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"vouched keeps its message, drops its cause", v,
			"ProtocolConfigurationError: KAFKA_SASL_PASSWORD is required for SCRAM-SHA-512"},
		{"wrapped in plain text", fmt.Errorf("start: %w", v),
			"ProtocolConfigurationError: start: KAFKA_SASL_PASSWORD is required for SCRAM-SHA-512"},
		{"wrapped in sensitive text", fmt.Errorf("token abc: %w", v), "ProtocolConfigurationError: " + Redacted},
		{"wrapped before other text", fmt.Errorf("%w (and more)", v), "ProtocolConfigurationError: " + Redacted},
		{"kept through Wrap", Wrap(v, Context{Operation: "connect"}, ""),
			"ProtocolConfigurationError: KAFKA_SASL_PASSWORD is required for SCRAM-SHA-512"},
		{"not vouched: redacted as before", plain, "ProtocolConfigurationError: " + Redacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeError(tt.err)
			if got != tt.want {
				t.Errorf("SanitizeError = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, secret) {
				t.Errorf("the cause leaked: %q", got)
			}
		})
	}
	if !IsVouched(fmt.Errorf("x: %w", v)) || IsVouched(plain) || IsVouched(cause) {
		t.Error("IsVouched")
	}
	if !errors.Is(v, cause) {
		t.Error("a vouched error must still unwrap to its cause")
	}
}
