package config

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

// The Kafka client security variables: the Python runtime's names (spec
// 11.1), plus the optional client certificate.
const (
	EnvKafkaSecurityProtocol  = "KAFKA_SECURITY_PROTOCOL"
	EnvKafkaSASLMechanism     = "KAFKA_SASL_MECHANISM"
	EnvKafkaSASLUsername      = "KAFKA_SASL_USERNAME"
	EnvKafkaSASLPassword      = "KAFKA_SASL_PASSWORD"
	EnvKafkaSSLCAFile         = "KAFKA_SSL_CA_FILE"
	EnvKafkaSSLCertFile       = "KAFKA_SSL_CERT_FILE"
	EnvKafkaSSLKeyFile        = "KAFKA_SSL_KEY_FILE"
	EnvKafkaOAuthTokenURL     = "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"
	EnvKafkaOAuthClientID     = "KAFKA_SASL_OAUTHBEARER_CLIENT_ID"
	EnvKafkaOAuthClientSecret = "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"
)

// KafkaSecurityVars lists every Kafka security variable, in the order the
// docs give them (the Infisical prefetch fetches them all).
var KafkaSecurityVars = []string{
	EnvKafkaSecurityProtocol, EnvKafkaSASLMechanism, EnvKafkaSASLUsername, EnvKafkaSASLPassword,
	EnvKafkaSSLCAFile, EnvKafkaSSLCertFile, EnvKafkaSSLKeyFile,
	EnvKafkaOAuthTokenURL, EnvKafkaOAuthClientID, EnvKafkaOAuthClientSecret,
}

// Kafka security protocols (KAFKA_SECURITY_PROTOCOL), Kafka's own names.
const (
	KafkaPlaintext     = "PLAINTEXT"
	KafkaSSL           = "SSL"
	KafkaSASLPlaintext = "SASL_PLAINTEXT"
	KafkaSASLSSL       = "SASL_SSL"
)

// SASL mechanisms (KAFKA_SASL_MECHANISM), Kafka's own names.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
	SASLOAuthBearer = "OAUTHBEARER"
)

// KafkaSecurity is how a Kafka client encrypts and authenticates. The zero
// value is PLAINTEXT: no TLS, no SASL, the local default.
//
// It never prints a secret: String, GoString (%#v), LogValue and JSON show
// the protocol, mechanism, user and file names only.
type KafkaSecurity struct {
	// Protocol is KAFKA_SECURITY_PROTOCOL: PLAINTEXT (default), SSL,
	// SASL_PLAINTEXT or SASL_SSL.
	Protocol string
	// Mechanism is KAFKA_SASL_MECHANISM, required with the SASL protocols:
	// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
	Mechanism string
	// Username and Password are KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD
	// (PLAIN and SCRAM).
	Username string
	Password Secret
	// CAFile is KAFKA_SSL_CA_FILE: the PEM certificates the broker's
	// certificate must chain to. Empty: the system roots.
	CAFile string
	// CertFile and KeyFile are KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE:
	// an optional PEM client certificate and its unencrypted key, both or
	// neither.
	CertFile, KeyFile string
	// OAuth is the client-credentials client of OAUTHBEARER.
	OAuth OAuthClient
}

// OAuthClient is an OAuth 2.0 client-credentials client (RFC 6749 4.4).
type OAuthClient struct {
	// TokenURL is KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL (http or https).
	TokenURL string
	// ClientID and ClientSecret are KAFKA_SASL_OAUTHBEARER_CLIENT_ID and
	// KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET.
	ClientID     string
	ClientSecret Secret
}

// LoadKafkaSecurity reads the Kafka security variables and validates them
// (Validate). Names are case-insensitive; surrounding blanks are dropped.
func LoadKafkaSecurity() (KafkaSecurity, error) {
	env := func(name string) string { return strings.TrimSpace(os.Getenv(name)) }
	k := KafkaSecurity{
		Protocol:  strings.ToUpper(env(EnvKafkaSecurityProtocol)),
		Mechanism: strings.ToUpper(env(EnvKafkaSASLMechanism)),
		Username:  env(EnvKafkaSASLUsername),
		// A password is taken as it is: blanks may be part of it.
		Password: Secret(os.Getenv(EnvKafkaSASLPassword)),
		CAFile:   env(EnvKafkaSSLCAFile),
		CertFile: env(EnvKafkaSSLCertFile),
		KeyFile:  env(EnvKafkaSSLKeyFile),
		OAuth: OAuthClient{
			TokenURL:     env(EnvKafkaOAuthTokenURL),
			ClientID:     env(EnvKafkaOAuthClientID),
			ClientSecret: Secret(os.Getenv(EnvKafkaOAuthClientSecret)),
		},
	}
	if k.Protocol == "" {
		k.Protocol = KafkaPlaintext
	}
	return k, k.Validate()
}

// TLS reports whether the protocol encrypts (SSL, SASL_SSL).
func (k KafkaSecurity) TLS() bool { return k.Protocol == KafkaSSL || k.Protocol == KafkaSASLSSL }

// SASL reports whether the protocol authenticates with SASL (SASL_PLAINTEXT,
// SASL_SSL).
func (k KafkaSecurity) SASL() bool {
	return k.Protocol == KafkaSASLPlaintext || k.Protocol == KafkaSASLSSL
}

// Validate checks the settings as a whole, the way a service checks them at
// start: a known protocol and mechanism, the credentials the mechanism needs,
// and TLS files that can be read and parsed. The error is a configuration
// error (infraerr.KindConfiguration) that names the variable, never a secret.
func (k KafkaSecurity) Validate() error {
	switch k.Protocol {
	case "", KafkaPlaintext, KafkaSSL, KafkaSASLPlaintext, KafkaSASLSSL:
	default:
		return kafkaConfigErr("KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", nil)
	}
	switch k.Mechanism {
	case "":
		if k.SASL() {
			return kafkaConfigErr(fmt.Sprintf("KAFKA_SECURITY_PROTOCOL=%s needs KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)", k.Protocol), nil)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLOAuthBearer:
		if !k.SASL() {
			// Refused rather than ignored: credentials that are silently
			// not sent are a misconfiguration found only by the broker.
			return kafkaConfigErr(fmt.Sprintf("KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL=%s does not use SASL (SASL_PLAINTEXT or SASL_SSL)", k.protocol()), nil)
		}
	default:
		return kafkaConfigErr("KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", nil)
	}
	if k.SASL() {
		if err := k.validateCredentials(); err != nil {
			return err
		}
	}
	if k.TLS() {
		if _, err := k.TLSConfig(); err != nil {
			return err
		}
	}
	return nil
}

func (k KafkaSecurity) validateCredentials() error {
	var missing []string
	need := func(name, v string) {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if k.Mechanism == SASLOAuthBearer {
		need(EnvKafkaOAuthTokenURL, k.OAuth.TokenURL)
		need(EnvKafkaOAuthClientID, k.OAuth.ClientID)
		need(EnvKafkaOAuthClientSecret, k.OAuth.ClientSecret.Reveal())
	} else {
		need(EnvKafkaSASLUsername, k.Username)
		need(EnvKafkaSASLPassword, k.Password.Reveal())
	}
	if len(missing) > 0 {
		return kafkaConfigErr(fmt.Sprintf("KAFKA_SASL_MECHANISM=%s needs %s", k.Mechanism, strings.Join(missing, " and ")), nil)
	}
	if k.Mechanism == SASLOAuthBearer {
		u, err := url.Parse(k.OAuth.TokenURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL itself is not repeated: it may carry credentials.
			return kafkaConfigErr("KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL must be an absolute http or https URL", nil)
		}
	}
	return nil
}

// TLSConfig builds the client TLS configuration: TLS 1.2 or newer, the
// broker's certificate verified against CAFile (else the system roots) and
// its host name, and the client certificate when one is set. It is nil when
// the protocol does not use TLS. Each call reads the files again, so a
// renewed certificate is taken by the next client built.
func (k KafkaSecurity) TLSConfig() (*tls.Config, error) {
	if !k.TLS() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if k.CAFile != "" {
		pool, err := LoadCAPool(infraerr.TransportKafka, EnvKafkaSSLCAFile, k.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case k.CertFile == "" && k.KeyFile == "":
	case k.CertFile == "" || k.KeyFile == "":
		return nil, kafkaConfigErr("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together: set both or neither", nil)
	default:
		pair, err := LoadKeyPair(infraerr.TransportKafka, EnvKafkaSSLCertFile, k.CertFile, EnvKafkaSSLKeyFile, k.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Warnings are settings that work but deserve a look: credentials sent
// unencrypted, TLS files a non-TLS protocol ignores. They name variables
// only.
func (k KafkaSecurity) Warnings() []string {
	var w []string
	if !k.TLS() {
		for _, f := range []struct{ name, v string }{{EnvKafkaSSLCAFile, k.CAFile}, {EnvKafkaSSLCertFile, k.CertFile}, {EnvKafkaSSLKeyFile, k.KeyFile}} {
			if f.v != "" {
				w = append(w, fmt.Sprintf("%s is ignored: KAFKA_SECURITY_PROTOCOL=%s does not use TLS", f.name, k.protocol()))
			}
		}
	}
	if !k.SASL() && (k.Username != "" || k.Password != "") {
		w = append(w, fmt.Sprintf("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are ignored: KAFKA_SECURITY_PROTOCOL=%s does not use SASL", k.protocol()))
	}
	if k.Protocol == KafkaSASLPlaintext && (k.Mechanism == SASLPlain || k.Mechanism == SASLOAuthBearer) {
		w = append(w, fmt.Sprintf("KAFKA_SASL_MECHANISM=%s over SASL_PLAINTEXT sends its credentials unencrypted; use SASL_SSL", k.Mechanism))
	}
	if k.Mechanism == SASLOAuthBearer {
		if u, err := url.Parse(k.OAuth.TokenURL); err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
			w = append(w, "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL is plain http: the client secret crosses the network unencrypted")
		}
	}
	return w
}

// String is the protocol and mechanism, e.g. "SASL_SSL SCRAM-SHA-512".
func (k KafkaSecurity) String() string {
	if k.Mechanism == "" {
		return k.protocol()
	}
	return k.protocol() + " " + k.Mechanism
}

// LogValue shows what a log line may show: protocol, mechanism, user, file
// names and the token endpoint without its query; never a password or a
// client secret.
func (k KafkaSecurity) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("protocol", k.protocol())}
	if k.Mechanism != "" {
		attrs = append(attrs, slog.String("mechanism", k.Mechanism))
	}
	if k.Username != "" {
		attrs = append(attrs, slog.String("username", k.Username))
	}
	if k.CAFile != "" {
		attrs = append(attrs, slog.String("ca_file", k.CAFile))
	}
	if k.CertFile != "" {
		attrs = append(attrs, slog.String("cert_file", k.CertFile))
	}
	if k.OAuth.TokenURL != "" {
		attrs = append(attrs, slog.String("token_endpoint", RedactURL(k.OAuth.TokenURL)), slog.String("client_id", k.OAuth.ClientID))
	}
	return slog.GroupValue(attrs...)
}

// GoString keeps %#v from printing the fields one by one.
func (k KafkaSecurity) GoString() string { return "config.KafkaSecurity{" + k.String() + "}" }

// MarshalJSON is the LogValue's fields as an object.
func (k KafkaSecurity) MarshalJSON() ([]byte, error) {
	out := map[string]string{}
	for _, a := range k.LogValue().Group() {
		out[a.Key] = a.Value.String()
	}
	return json.Marshal(out)
}

// String is the client id and the endpoint without its query, which may
// carry credentials.
func (o OAuthClient) String() string {
	return "client " + o.ClientID + " at " + RedactURL(o.TokenURL)
}

// GoString is String, so %#v prints no field as it is.
func (o OAuthClient) GoString() string { return "config.OAuthClient{" + o.String() + "}" }

// MarshalJSON is String as a JSON string.
func (o OAuthClient) MarshalJSON() ([]byte, error) { return json.Marshal(o.String()) }

func (k KafkaSecurity) protocol() string {
	if k.Protocol == "" {
		return KafkaPlaintext
	}
	return k.Protocol
}

// RedactURL is u's scheme, host and path: no user information, query or
// fragment, which may carry credentials. An unparsable u gives "".
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func kafkaConfigErr(msg string, cause error) error {
	return configErr(infraerr.TransportKafka, msg, cause)
}

// configErr is a configuration error of a transport's security settings.
// Its message holds variable and file names only, so it is Vouched: the
// sanitizer would otherwise blank it for naming KAFKA_SASL_PASSWORD.
func configErr(transport, msg string, cause error) error {
	return infraerr.Vouched(infraerr.KindConfiguration,
		infraerr.Context{Transport: transport, Operation: "configure"}, "config: "+msg, cause)
}
