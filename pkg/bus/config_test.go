package bus

import (
	"os"
	"strings"
	"testing"

	"github.com/rcrowley/go-metrics"

	"github.com/omninode/onex-fleet/pkg/config"
)

// TestNewConfigSecurity: without Options.Security every client takes the
// process's settings from the environment; with it, exactly what it says.
func TestNewConfigSecurity(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		security *config.KafkaSecurity
		tls      bool
		sasl     bool
		err      string
	}{
		{name: "nothing set: plaintext"},
		{name: "environment: SASL_SSL", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, tls: true, sasl: true},
		{name: "environment: invalid", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
			err: "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM"},
		{name: "explicit settings win over the environment", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
			security: &config.KafkaSecurity{Protocol: config.KafkaSSL}, tls: true},
		{name: "explicit plaintext", env: map[string]string{"KAFKA_SECURITY_PROTOCOL": "SSL"}, security: &config.KafkaSecurity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range config.KafkaSecurityVars {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := NewConfig(Options{Brokers: []string{"127.0.0.1:9092"}, Security: tt.security})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Net.TLS.Enable != tt.tls || c.Net.SASL.Enable != tt.sasl {
				t.Errorf("tls %v sasl %v, want %v %v", c.Net.TLS.Enable, c.Net.SASL.Enable, tt.tls, tt.sasl)
			}
		})
	}
}

// TestSaramaMetricsOff: a client made by this package records none of
// sarama's go-metrics, whose meters and histograms cost every request a
// lock and a sample heap and are read by nothing.
func TestSaramaMetricsOff(t *testing.T) {
	c, err := NewConfig(Options{Brokers: []string{"127.0.0.1:9"}, Security: &config.KafkaSecurity{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := metrics.GetOrRegisterHistogram("request-size", c.MetricRegistry, metrics.NewUniformSample(8)).(metrics.NilHistogram); !ok {
		t.Error("sarama's histograms are recorded: metrics.UseNilMetrics is off")
	}
	if _, ok := metrics.GetOrRegisterMeter("request-rate", c.MetricRegistry).(metrics.NilMeter); !ok {
		t.Error("sarama's meters are recorded: metrics.UseNilMetrics is off")
	}
}
