package chartcheck

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// secureValues switches every secured transport on (docs/configuration.md's
// Helm example); relative to the repository root, where helm runs.
const secureValues = "deploy/chartcheck/testdata/secure-values.yaml"

// want is one expected variable: a literal value, a secretKeyRef, or a file
// of a Secret mounted read-only.
type want struct {
	value       string
	secret, key string // secretKeyRef
	file, entry string // file: Secret name and the Secret's key mounted at the path
}

func lit(v string) want              { return want{value: v} }
func ref(secret, key string) want    { return want{secret: secret, key: key} }
func file(secret, entry string) want { return want{file: secret, entry: entry} }

// checkSecurity asserts that a Deployment carries exactly the security
// variables of exp (among SecurityEnvNames), each as expected, and that its
// pod mounts exactly the Secret volumes those files need, read-only with mode
// at most 0440, and nothing else but /tmp.
func checkSecurity(t *testing.T, d *appsv1.Deployment, exp map[string]want) {
	t.Helper()
	pod := d.Spec.Template.Spec
	c := container(t, d)
	env := EnvOf(c)
	for n := range exp {
		if !contains(SecurityEnvNames, n) {
			t.Fatalf("test bug: %s is not in SecurityEnvNames", n)
		}
	}
	var got, wantNames []string
	for _, n := range SecurityEnvNames {
		if _, ok := env[n]; ok {
			got = append(got, n)
		}
		if _, ok := exp[n]; ok {
			wantNames = append(wantNames, n)
		}
	}
	if g, w := strings.Join(got, " "), strings.Join(wantNames, " "); g != w {
		t.Errorf("%s: security variables\n  got  %s\n  want %s", d.Name, g, w)
	}
	neededVolumes := map[string]bool{}
	for name, w := range exp {
		e, ok := env[name]
		if !ok {
			continue
		}
		switch {
		case w.secret != "":
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: %s is not a secretKeyRef: %+v", d.Name, name, e)
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r.Name != w.secret || r.Key != w.key || (r.Optional != nil && *r.Optional) {
				t.Errorf("%s: %s from Secret %s key %s (optional %v), want %s key %s", d.Name, name, r.Name, r.Key, r.Optional, w.secret, w.key)
			}
		case w.file != "":
			if e.ValueFrom != nil || !strings.HasPrefix(e.Value, TLSRoot) {
				t.Errorf("%s: %s=%q is not a path under %s", d.Name, name, e.Value, TLSRoot)
				continue
			}
			secret, key, err := ResolveSecretFile(pod, c, e.Value)
			if err != nil {
				t.Errorf("%s: %s=%s: %v", d.Name, name, e.Value, err)
				continue
			}
			if secret != w.file || key != w.entry {
				t.Errorf("%s: %s=%s is key %s of Secret %s, want key %s of %s", d.Name, name, e.Value, key, secret, w.entry, w.file)
			}
			for _, vm := range c.VolumeMounts {
				if vm.MountPath == filepath.Dir(e.Value) {
					neededVolumes[vm.Name] = true
				}
			}
		default:
			if e.ValueFrom != nil || e.Value != w.value {
				t.Errorf("%s: %s=%q (valueFrom %v), want %q", d.Name, name, e.Value, e.ValueFrom != nil, w.value)
			}
		}
	}

	// Volumes: /tmp and exactly the Secrets the files need.
	for _, v := range pod.Volumes {
		switch {
		case v.Name == "tmp" && v.EmptyDir != nil:
		case v.Secret != nil && neededVolumes[v.Name]:
			if m := v.Secret.DefaultMode; m == nil || (*m != 0o440 && *m != 0o400) {
				t.Errorf("%s: Secret volume %s defaultMode %s, want 0440 or 0400", d.Name, v.Name, fmtMode(m))
			}
		default:
			t.Errorf("%s: volume %s is not needed by any variable", d.Name, v.Name)
		}
	}
	for _, vm := range c.VolumeMounts {
		if vm.Name == "tmp" && vm.MountPath == "/tmp" {
			continue
		}
		if !neededVolumes[vm.Name] || !vm.ReadOnly {
			t.Errorf("%s: mount %s at %s (readOnly %v) is not a needed read-only Secret", d.Name, vm.Name, vm.MountPath, vm.ReadOnly)
		}
	}
}

func merged(maps ...map[string]want) map[string]want {
	out := map[string]want{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// The default values are plaintext: no security variable, no Secret volume,
// nothing under /etc/onex/tls, on any service.
func TestChartSecurityDefaults(t *testing.T) {
	m, out := render(t)
	deps := perService(t, m, Services, true, true)
	for _, s := range Services {
		if d := deps[s]; d != nil {
			checkSecurity(t, d, nil)
		}
	}
	for _, s := range []string{TLSRoot, "defaultMode", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_", "KAFKA_SSL_", "POSTGRES_SSL_", "CONSUL_HTTP_SSL", "ONEX_GRPC_TLS"} {
		if strings.Contains(out, s) {
			t.Errorf("the default rendering contains %q", s)
		}
	}
	checkNoSecretValues(t, out)
}

// Everything on: each service gets exactly its transports' variables, the
// files are read-only Secret mounts at the paths the variables name, the
// credentials are secretKeyRefs, and the probes are unchanged.
func TestChartSecurityEverything(t *testing.T) {
	m, out := render(t, "-f", secureValues)
	deps := perService(t, m, Services, true, true)
	kafka := map[string]want{
		"KAFKA_SECURITY_PROTOCOL": lit("SASL_SSL"),
		"KAFKA_SASL_MECHANISM":    lit("SCRAM-SHA-512"),
		"KAFKA_SASL_USERNAME":     lit("onex-fleet"),
		"KAFKA_SASL_PASSWORD":     ref("onex-kafka-user", "password"),
		"KAFKA_SSL_CA_FILE":       file("onex-kafka-ca", "ca.crt"),
		"KAFKA_SSL_CERT_FILE":     file("onex-kafka-client", "tls.crt"),
		"KAFKA_SSL_KEY_FILE":      file("onex-kafka-client", "tls.key"),
	}
	exp := map[string]map[string]want{
		"registration-orchestrator": kafka,
		"reducer":                   kafka,
		"projector-effect": merged(kafka, map[string]want{
			"POSTGRES_SSL_MODE":        lit("verify-full"),
			"POSTGRES_SSL_CA_FILE":     file("onex-postgres-ca", "ca.crt"),
			"ONEX_GRPC_TLS_CERT_FILE":  file("onex-registry-tls", "tls.crt"),
			"ONEX_GRPC_TLS_KEY_FILE":   file("onex-registry-tls", "tls.key"),
			"ONEX_GRPC_CLIENT_CA_FILE": file("onex-registry-tls", "ca.crt"),
			"ONEX_GRPC_ADMIN_TOKEN":    ref("onex-registry-admin", "token"),
			"ONEX_GRPC_ADMIN_SUBJECTS": lit("onexctl-admin,spiffe://onex/ns/ops/sa/operator"),
		}),
		"consul-effect": merged(kafka, map[string]want{
			"CONSUL_HTTP_TOKEN":      ref("onex-consul-acl", "CONSUL_HTTP_TOKEN"),
			"CONSUL_HTTP_SSL":        lit("true"),
			"CONSUL_HTTP_SSL_VERIFY": lit("true"),
			"CONSUL_TLS_SERVER_NAME": lit("consul.onex.internal"),
			"CONSUL_CACERT":          file("onex-consul-ca", "ca.pem"),
			"CONSUL_CLIENT_CERT":     file("onex-consul-client", "client.pem"),
			"CONSUL_CLIENT_KEY":      file("onex-consul-client", "client-key.pem"),
		}),
	}
	for _, s := range Services {
		d := deps[s]
		if d == nil {
			continue
		}
		checkSecurity(t, d, exp[s])
		// gRPC TLS does not touch the probes: HTTP on the http port.
		checkProbes(t, d)
		checkGrace(t, d, 30)
	}
	if d := deps["projector-effect"]; d != nil {
		if EnvOf(container(t, d))["ONEX_GRPC_ADDR"].Value != ":8086" {
			t.Error("projector-effect: ONEX_GRPC_ADDR changed with TLS")
		}
	}
	grpc := 0
	for _, s := range m.Services {
		if strings.HasSuffix(s.Name, "-grpc") {
			grpc++
		}
	}
	if grpc != 1 {
		t.Errorf("%d gRPC Services, want 1", grpc)
	}
	checkNoSecretValues(t, out)
	// Only the Secrets' names and keys are in the output, never a value:
	// every credential the rendering carries is a secretKeyRef (Check also
	// refuses literal values for secret-looking names).
	for _, d := range m.Deployments {
		for _, e := range container(t, d).Env {
			if SecretEnvName.MatchString(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: %s is not a secretKeyRef", d.Name, e.Name)
			}
		}
	}
}

func TestChartSecurityVariants(t *testing.T) {
	deps := func(t *testing.T, args ...string) map[string]*appsv1.Deployment {
		t.Helper()
		m, out := render(t, args...)
		checkNoSecretValues(t, out)
		g := m.Group()
		out2 := map[string]*appsv1.Deployment{}
		for s, ds := range g.Deployments {
			out2[s] = ds[0]
		}
		return out2
	}
	kafkaOnly := func(t *testing.T, d map[string]*appsv1.Deployment, kafka map[string]want) {
		t.Helper()
		for _, s := range Services {
			if d[s] != nil {
				checkSecurity(t, d[s], kafka)
			}
		}
	}

	t.Run("oauthbearer over SASL_SSL, system roots", func(t *testing.T) {
		d := deps(t, "--set", "security.kafka.securityProtocol=SASL_SSL", "--set", "security.kafka.saslMechanism=OAUTHBEARER",
			"--set", "security.kafka.oauthbearer.tokenEndpointUrl=https://idp.example/oauth2/token",
			"--set", "security.kafka.oauthbearer.credentialsSecret.name=onex-kafka-oauth")
		kafkaOnly(t, d, map[string]want{
			"KAFKA_SECURITY_PROTOCOL":                   lit("SASL_SSL"),
			"KAFKA_SASL_MECHANISM":                      lit("OAUTHBEARER"),
			"KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL": lit("https://idp.example/oauth2/token"),
			"KAFKA_SASL_OAUTHBEARER_CLIENT_ID":          ref("onex-kafka-oauth", "KAFKA_SASL_OAUTHBEARER_CLIENT_ID"),
			"KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET":      ref("onex-kafka-oauth", "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"),
		})
	})
	t.Run("PLAIN over SASL_PLAINTEXT", func(t *testing.T) {
		d := deps(t, "--set", "security.kafka.securityProtocol=SASL_PLAINTEXT", "--set", "security.kafka.saslMechanism=PLAIN",
			"--set", "security.kafka.username=fleet", "--set", "security.kafka.passwordSecret.name=kafka-user")
		kafkaOnly(t, d, map[string]want{
			"KAFKA_SECURITY_PROTOCOL": lit("SASL_PLAINTEXT"),
			"KAFKA_SASL_MECHANISM":    lit("PLAIN"),
			"KAFKA_SASL_USERNAME":     lit("fleet"),
			"KAFKA_SASL_PASSWORD":     ref("kafka-user", "KAFKA_SASL_PASSWORD"),
		})
	})
	t.Run("SSL with a client certificate only", func(t *testing.T) {
		d := deps(t, "--set", "security.kafka.securityProtocol=SSL", "--set", "security.kafka.tls.clientCertSecret.name=kafka-client")
		kafkaOnly(t, d, map[string]want{
			"KAFKA_SECURITY_PROTOCOL": lit("SSL"),
			"KAFKA_SSL_CERT_FILE":     file("kafka-client", "tls.crt"),
			"KAFKA_SSL_KEY_FILE":      file("kafka-client", "tls.key"),
		})
	})
	t.Run("credentials from Infisical or extraEnv", func(t *testing.T) {
		// credentialsSource=external: the chart sets no credential, so one
		// service may take its own from its extraEnv.
		d := deps(t, "--set", "security.kafka.securityProtocol=SASL_SSL", "--set", "security.kafka.saslMechanism=SCRAM-SHA-256",
			"--set", "security.kafka.credentialsSource=external",
			"--set", "services.reducer.env.KAFKA_SASL_USERNAME=reducer",
			"--set", "services.reducer.extraEnv[0].name=KAFKA_SASL_PASSWORD",
			"--set", "services.reducer.extraEnv[0].valueFrom.secretKeyRef.name=kafka-reducer",
			"--set", "services.reducer.extraEnv[0].valueFrom.secretKeyRef.key=password")
		base := map[string]want{"KAFKA_SECURITY_PROTOCOL": lit("SASL_SSL"), "KAFKA_SASL_MECHANISM": lit("SCRAM-SHA-256")}
		for _, s := range Services {
			if s == "reducer" {
				checkSecurity(t, d[s], merged(base, map[string]want{
					"KAFKA_SASL_USERNAME": lit("reducer"), "KAFKA_SASL_PASSWORD": ref("kafka-reducer", "password")}))
			} else {
				checkSecurity(t, d[s], base)
			}
		}
	})
	t.Run("postgres only", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			exp  map[string]want
		}{
			{[]string{"--set", "security.postgres.sslMode=require"}, map[string]want{"POSTGRES_SSL_MODE": lit("require")}},
			{[]string{"--set", "security.postgres.sslMode=verify-full", "--set", "security.postgres.systemRoots=true"},
				map[string]want{"POSTGRES_SSL_MODE": lit("verify-full"), "POSTGRES_SSL_CA_FILE": lit("system")}},
			{[]string{"--set", "security.postgres.caSecret.name=pg-ca", "--set", "security.postgres.caSecret.key=root.pem"},
				map[string]want{"POSTGRES_SSL_CA_FILE": file("pg-ca", "root.pem")}},
		} {
			d := deps(t, c.args...)
			for _, s := range Services {
				if s == "projector-effect" {
					checkSecurity(t, d[s], c.exp)
				} else {
					checkSecurity(t, d[s], nil)
				}
			}
		}
	})
	t.Run("consul only", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			exp  map[string]want
		}{
			{[]string{"--set", "security.consul.tls.enabled=true"},
				map[string]want{"CONSUL_HTTP_SSL": lit("true"), "CONSUL_HTTP_SSL_VERIFY": lit("true")}},
			{[]string{"--set", "security.consul.tls.enabled=true", "--set", "security.consul.tls.verify=false", "--set", "consul.tokenSecret.name=acl"},
				map[string]want{"CONSUL_HTTP_SSL": lit("true"), "CONSUL_HTTP_SSL_VERIFY": lit("false"), "CONSUL_HTTP_TOKEN": ref("acl", "CONSUL_HTTP_TOKEN")}},
			{[]string{"--set", "security.consul.tls.enabled=true", "--set", "security.consul.tls.caSecret.name=consul-ca"},
				map[string]want{"CONSUL_HTTP_SSL": lit("true"), "CONSUL_HTTP_SSL_VERIFY": lit("true"), "CONSUL_CACERT": file("consul-ca", "ca.crt")}},
		} {
			d := deps(t, c.args...)
			for _, s := range Services {
				if s == "consul-effect" {
					checkSecurity(t, d[s], c.exp)
				} else {
					checkSecurity(t, d[s], nil)
				}
			}
		}
	})
	t.Run("grpc TLS without client certificates", func(t *testing.T) {
		d := deps(t, "--set", "security.grpc.tls.serverCertSecret.name=registry-tls", "--set", "security.grpc.adminTokenSecret.name=registry-admin")
		for _, s := range Services {
			if s == "projector-effect" {
				checkSecurity(t, d[s], map[string]want{
					"ONEX_GRPC_TLS_CERT_FILE": file("registry-tls", "tls.crt"),
					"ONEX_GRPC_TLS_KEY_FILE":  file("registry-tls", "tls.key"),
					"ONEX_GRPC_ADMIN_TOKEN":   ref("registry-admin", "ONEX_GRPC_ADMIN_TOKEN"),
				})
				checkProbes(t, d[s])
			} else {
				checkSecurity(t, d[s], nil)
			}
		}
	})
	t.Run("projector disabled", func(t *testing.T) {
		// The projector's transports go nowhere else.
		m, _ := render(t, "-f", secureValues, "--set", "services.projector-effect.enabled=false")
		for _, d := range m.Deployments {
			env := EnvOf(container(t, d))
			for _, n := range []string{"POSTGRES_SSL_MODE", "POSTGRES_SSL_CA_FILE", "ONEX_GRPC_TLS_CERT_FILE", "ONEX_GRPC_ADMIN_TOKEN", "ONEX_GRPC_ADMIN_SUBJECTS"} {
				if _, ok := env[n]; ok {
					t.Errorf("%s: %s set", d.Name, n)
				}
			}
			if _, ok := env["KAFKA_SASL_PASSWORD"]; !ok {
				t.Errorf("%s: no KAFKA_SASL_PASSWORD", d.Name)
			}
		}
	})
}

// Bad security values are refused, by the schema first.
func TestChartSecurityRejects(t *testing.T) {
	sasl := []string{"--set", "security.kafka.securityProtocol=SASL_SSL"}
	cases := []struct {
		want string
		args []string
	}{
		// Kafka.
		{"securityProtocol", []string{"--set", "security.kafka.securityProtocol=TLS"}},
		{"securityProtocol", []string{"--set", "security.kafka.securityProtocol=sasl_ssl"}},
		{"'securityProtocl'", []string{"--set", "security.kafka.securityProtocl=SSL"}},
		{"saslMechanism", []string{"--set", "security.kafka.saslMechanism=PLAIN"}},
		{"saslMechanism", sasl},
		{"saslMechanism", append([]string{"--set", "security.kafka.saslMechanism=GSSAPI"}, sasl...)},
		{"username", append([]string{"--set", "security.kafka.saslMechanism=SCRAM-SHA-512", "--set", "security.kafka.passwordSecret.name=k"}, sasl...)},
		{"passwordSecret", append([]string{"--set", "security.kafka.saslMechanism=SCRAM-SHA-512", "--set", "security.kafka.username=u"}, sasl...)},
		{"tokenEndpointUrl", append([]string{"--set", "security.kafka.saslMechanism=OAUTHBEARER", "--set", "security.kafka.oauthbearer.credentialsSecret.name=o"}, sasl...)},
		{"tokenEndpointUrl", append([]string{"--set", "security.kafka.saslMechanism=OAUTHBEARER", "--set", "security.kafka.oauthbearer.credentialsSecret.name=o",
			"--set", "security.kafka.oauthbearer.tokenEndpointUrl=ftp://idp/token"}, sasl...)},
		{"credentialsSecret", append([]string{"--set", "security.kafka.saslMechanism=OAUTHBEARER", "--set", "security.kafka.oauthbearer.tokenEndpointUrl=https://idp/token"}, sasl...)},
		{"passwordSecret", append([]string{"--set", "security.kafka.saslMechanism=OAUTHBEARER", "--set", "security.kafka.credentialsSource=external",
			"--set", "security.kafka.passwordSecret.name=k"}, sasl...)},
		{"passwordSecret", append([]string{"--set", "security.kafka.saslMechanism=PLAIN", "--set", "security.kafka.credentialsSource=external",
			"--set", "security.kafka.passwordSecret.name=k"}, sasl...)},
		{"credentialsSource", append([]string{"--set", "security.kafka.saslMechanism=PLAIN", "--set", "security.kafka.credentialsSource=infisical"}, sasl...)},
		{"caSecret", []string{"--set", "security.kafka.tls.caSecret.name=ca"}},
		{"clientCertSecret", []string{"--set", "security.kafka.securityProtocol=SASL_PLAINTEXT", "--set", "security.kafka.saslMechanism=PLAIN",
			"--set", "security.kafka.username=u", "--set", "security.kafka.passwordSecret.name=k", "--set", "security.kafka.tls.clientCertSecret.name=c"}},
		{"keyKey", []string{"--set", "security.kafka.securityProtocol=SSL", "--set", "security.kafka.tls.clientCertSecret.name=c", "--set", "security.kafka.tls.clientCertSecret.keyKey="}},
		// A secret value has no key to go to.
		{"'password'", append([]string{"--set", "security.kafka.saslMechanism=PLAIN", "--set", "security.kafka.username=u", "--set", "security.kafka.password=hunter2"}, sasl...)},
		{"'value'", []string{"--set", "security.grpc.adminTokenSecret.value=hunter2"}},
		{"Bad_Name", []string{"--set", "security.grpc.adminTokenSecret.name=Bad_Name"}},
		// PostgreSQL.
		{"sslMode", []string{"--set", "security.postgres.sslMode=strict"}},
		{"'sslmode'", []string{"--set", "security.postgres.sslmode=require"}},
		{"caSecret", []string{"--set", "security.postgres.sslMode=verify-full"}},
		{"caSecret", []string{"--set", "security.postgres.systemRoots=true", "--set", "security.postgres.caSecret.name=pg-ca"}},
		{"caSecret", []string{"--set", "security.postgres.sslMode=disable", "--set", "security.postgres.caSecret.name=pg-ca"}},
		// Consul.
		{"caSecret", []string{"--set", "security.consul.tls.caSecret.name=consul-ca"}},
		{"verify", []string{"--set", "security.consul.tls.verify=false"}},
		{"serverName", []string{"--set", "security.consul.tls.enabled=true", "--set", "security.consul.tls.serverName=not a host"}},
		{"'tokenSecret'", []string{"--set", "security.consul.tokenSecret.name=acl"}},
		// gRPC.
		{"serverCertSecret", []string{"--set", "security.grpc.tls.clientCASecret.name=ca"}},
		{"clientCASecret", []string{"--set", "security.grpc.tls.serverCertSecret.name=s", "--set", "security.grpc.adminSubjects[0]=admin"}},
		{"adminSubjects", []string{"--set", "security.grpc.tls.serverCertSecret.name=s", "--set", "security.grpc.tls.clientCASecret.name=ca",
			"--set", "security.grpc.adminSubjects[0]=CN=admin\\,O=onex"}},
		{"'adminSubject'", []string{"--set", "security.grpc.adminSubject[0]=admin"}},
		// The same variable from security and from env is ambiguous.
		{"comes from the values under `security`", []string{"--set", "security.kafka.securityProtocol=SSL", "--set", "config.env.KAFKA_SECURITY_PROTOCOL=SSL"}},
		{"comes from the values under `security`", []string{"--set", "security.consul.tls.enabled=true", "--set", "services.consul-effect.env.CONSUL_HTTP_SSL=false"}},
		{"looks like a secret", []string{"--set", "config.env.KAFKA_SASL_PASSWORD=hunter2"}},
		{"looks like a secret", []string{"--set", "services.projector-effect.env.ONEX_GRPC_ADMIN_TOKEN=hunter2"}},
		{"looks like a secret", []string{"--set", "config.env.KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET=hunter2"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) { renderFails(t, c.want, c.args...) })
	}
}

// The templates refuse the same mistakes in words when the schema is
// skipped (helm --skip-schema-validation).
func TestChartSecurityTemplateGuards(t *testing.T) {
	skip := "--skip-schema-validation"
	for _, c := range []struct {
		want string
		args []string
	}{
		{"want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", []string{"--set", "security.kafka.securityProtocol=TLS"}},
		{"need securityProtocol SASL_PLAINTEXT or SASL_SSL", []string{"--set", "security.kafka.saslMechanism=PLAIN"}},
		{"SASL_SSL needs PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", []string{"--set", "security.kafka.securityProtocol=SASL_SSL"}},
		{"security.kafka.passwordSecret.name is required with SCRAM-SHA-512", []string{"--set", "security.kafka.securityProtocol=SASL_SSL",
			"--set", "security.kafka.saslMechanism=SCRAM-SHA-512", "--set", "security.kafka.username=u"}},
		{"security.kafka.oauthbearer.tokenEndpointUrl is required", []string{"--set", "security.kafka.securityProtocol=SASL_SSL", "--set", "security.kafka.saslMechanism=OAUTHBEARER"}},
		{"security.kafka.tls needs securityProtocol SSL or SASL_SSL", []string{"--set", "security.kafka.tls.caSecret.name=ca"}},
		{"verify-full needs caSecret.name or systemRoots", []string{"--set", "security.postgres.sslMode=verify-full"}},
		{"need security.consul.tls.enabled=true", []string{"--set", "security.consul.tls.caSecret.name=ca"}},
		{"needs security.grpc.tls.serverCertSecret", []string{"--set", "security.grpc.tls.clientCASecret.name=ca"}},
		{"they need security.grpc.tls.clientCASecret", []string{"--set", "security.grpc.adminSubjects[0]=admin"}},
	} {
		t.Run(c.want, func(t *testing.T) { renderFails(t, c.want, append([]string{skip}, c.args...)...) })
	}
}
