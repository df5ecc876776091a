package chartcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const release = "onex-fleet"
const namespace = "onex"

// render runs `helm template` with args, decodes every document strictly,
// runs the generic checks and fails the test on any finding.
func render(t *testing.T, args ...string) (*Manifest, string) {
	t.Helper()
	root := RepoRoot(t)
	helm := HelmBin(t)
	full := append([]string{"template", release, ChartDir, "--namespace", namespace}, args...)
	out, err := RunHelm(helm, root, full...)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := SplitDocs(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("helm template rendered nothing")
	}
	m, errs := Decode(docs)
	errs = append(errs, m.Check()...)
	for _, e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	return m, out
}

// renderFails runs `helm template` and expects it to fail with an error
// mentioning want.
func renderFails(t *testing.T, want string, args ...string) {
	t.Helper()
	root := RepoRoot(t)
	helm := HelmBin(t)
	full := append([]string{"template", release, ChartDir, "--namespace", namespace}, args...)
	out, err := RunHelm(helm, root, full...)
	if err == nil {
		t.Fatalf("helm template %v succeeded, want an error about %q; output:\n%.2000s", args, want, out)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("helm template %v failed, but not about %q:\n%v", args, want, err)
	}
}

func container(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", d.Name, n)
	}
	return d.Spec.Template.Spec.Containers[0]
}

// perService checks one Deployment, HPA (when autoscaled), PDB and metrics
// Service per service, and returns the Deployments by service.
func perService(t *testing.T, m *Manifest, services []string, wantHPA, wantPDB bool) map[string]*appsv1.Deployment {
	t.Helper()
	g := m.Group()
	deps := map[string]*appsv1.Deployment{}
	for _, s := range services {
		if n := len(g.Deployments[s]); n != 1 {
			t.Errorf("%s: %d Deployments, want 1", s, n)
			continue
		}
		deps[s] = g.Deployments[s][0]
		if got, want := deps[s].Name, release+"-"+s; got != want {
			t.Errorf("%s: Deployment named %q, want %q", s, got, want)
		}
		if c := container(t, deps[s]); c.Name != s {
			t.Errorf("%s: container named %q", s, c.Name)
		}
		if n := len(g.HPAs[s]); wantHPA && n != 1 || !wantHPA && n != 0 {
			t.Errorf("%s: %d HPAs (autoscaling %v)", s, n, wantHPA)
		}
		if n := len(g.PDBs[s]); wantPDB && n != 1 || !wantPDB && n != 0 {
			t.Errorf("%s: %d PDBs (pdb %v)", s, n, wantPDB)
		}
		metrics := 0
		for _, svc := range g.Services[s] {
			if strings.HasSuffix(svc.Name, "-metrics") {
				metrics++
				checkMetricsService(t, svc)
			}
		}
		if metrics != 1 {
			t.Errorf("%s: %d metrics Services, want 1", s, metrics)
		}
	}
	for comp := range g.Deployments {
		if !contains(Services, comp) {
			t.Errorf("Deployment for unknown component %q", comp)
		}
	}
	return deps
}

func checkMetricsService(t *testing.T, s *corev1.Service) {
	t.Helper()
	a := s.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != "8085" {
		t.Errorf("Service %s: prometheus annotations %v", s.Name, a)
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8085 || s.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("Service %s: ports %+v, want 8085 -> http", s.Name, s.Spec.Ports)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func drainOf(t *testing.T, c corev1.Container) int {
	t.Helper()
	e, ok := EnvOf(c)["ONEX_DRAIN_TIMEOUT"]
	if !ok {
		t.Fatalf("container %s: no ONEX_DRAIN_TIMEOUT", c.Name)
	}
	n, err := strconv.Atoi(e.Value)
	if err != nil {
		t.Fatalf("container %s: ONEX_DRAIN_TIMEOUT=%q", c.Name, e.Value)
	}
	return n
}

// checkGrace asserts the grace period is drain + 15, strictly more than the
// drain the service is told.
func checkGrace(t *testing.T, d *appsv1.Deployment, wantDrain int) {
	t.Helper()
	c := container(t, d)
	drain := drainOf(t, c)
	if drain != wantDrain {
		t.Errorf("%s: ONEX_DRAIN_TIMEOUT=%d, want %d", d.Name, drain, wantDrain)
	}
	g := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if g == nil {
		t.Fatalf("%s: no terminationGracePeriodSeconds", d.Name)
	}
	if *g <= int64(drain) {
		t.Errorf("%s: terminationGracePeriodSeconds %d not greater than the drain %d", d.Name, *g, drain)
	}
	if *g != int64(drain+15) {
		t.Errorf("%s: terminationGracePeriodSeconds %d, want drain+15 = %d", d.Name, *g, drain+15)
	}
}

func checkProbes(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	c := container(t, d)
	for _, p := range []struct {
		kind string
		path string
		got  *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
		if p.got == nil || p.got.HTTPGet == nil {
			t.Errorf("%s: no %s httpGet probe", d.Name, p.kind)
			continue
		}
		if p.got.HTTPGet.Path != p.path || p.got.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s: %s probe %s on %s, want %s on http", d.Name, p.kind, p.got.HTTPGet.Path, p.got.HTTPGet.Port.String(), p.path)
		}
	}
	if e := EnvOf(c)["ONEX_HTTP_PORT"]; e.Value != "8085" {
		t.Errorf("%s: ONEX_HTTP_PORT=%q, the probes use 8085", d.Name, e.Value)
	}
}

func secretRef(t *testing.T, c corev1.Container, name string) (secret, key string) {
	t.Helper()
	e, ok := EnvOf(c)[name]
	if !ok {
		return "", ""
	}
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("container %s: %s is not a secretKeyRef", c.Name, name)
		return "", ""
	}
	return e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key
}

func TestHelmLint(t *testing.T) {
	root := RepoRoot(t)
	helm := HelmBin(t)
	if v, err := RunHelm(helm, root, "version", "--template", "{{.Version}}"); err != nil || !strings.HasPrefix(v, "v3.") {
		t.Fatalf("helm version %q (%v): the chart is checked with helm v3", v, err)
	}
	for _, args := range [][]string{
		nil,
		replicasArgs(3),
		{"--set", "infisical.enabled=false", "--set", "database.existingSecret=onex-db"},
		// NOTES.txt's branch for replicas beyond the 6 partitions.
		{"--set", "services.reducer.autoscaling.maxReplicas=8", "--set", "infisical.projectId=p-1"},
		// Every secured transport, and NOTES.txt's security warnings.
		{"-f", secureValues},
		{"--set", "security.kafka.securityProtocol=SASL_PLAINTEXT", "--set", "security.kafka.saslMechanism=PLAIN",
			"--set", "security.kafka.credentialsSource=external", "--set", "security.consul.tls.enabled=true",
			"--set", "security.consul.tls.verify=false", "--set", "security.grpc.adminTokenSecret.name=admin"},
	} {
		out, err := RunHelm(helm, root, append([]string{"lint", "--strict", ChartDir, "--namespace", namespace}, args...)...)
		if err != nil {
			t.Errorf("helm lint --strict %v: %v", args, err)
		} else if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint %v:\n%s", args, out)
		}
	}
}

// (a) The default values: one replica of each service.
func TestChartDefaults(t *testing.T) {
	m, out := render(t)
	deps := perService(t, m, Services, true, true)
	if len(m.ServiceAccounts) != 1 {
		t.Errorf("%d ServiceAccounts, want 1", len(m.ServiceAccounts))
	}
	for _, s := range Services {
		d := deps[s]
		if d == nil {
			continue
		}
		if *d.Spec.Replicas != 1 {
			t.Errorf("%s: replicas %d, want 1", s, *d.Spec.Replicas)
		}
		checkProbes(t, d)
		checkGrace(t, d, 30)
		c := container(t, d)
		env := EnvOf(c)
		for name, want := range map[string]string{
			"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
			"ONEX_ENVIRONMENT":        "prod",
			"ONEX_LOG_LEVEL":          "INFO",
			"CONSUL_HTTP_ADDR":        "consul-server:8500",
			"INFISICAL_ADDR":          "http://infisical.infisical.svc.cluster.local:8080",
			"INFISICAL_PROJECT_ID":    "REPLACE_WITH_INFISICAL_PROJECT_ID",
			"INFISICAL_ENVIRONMENT":   "prod",
		} {
			if env[name].Value != want {
				t.Errorf("%s: %s=%q, want %q", s, name, env[name].Value, want)
			}
		}
		for _, name := range []string{"INFISICAL_CLIENT_ID", "INFISICAL_CLIENT_SECRET"} {
			if sec, key := secretRef(t, c, name); sec != "onex-fleet-infisical" || key != name {
				t.Errorf("%s: %s from secret %q key %q", s, name, sec, key)
			}
		}
		if _, ok := env["OMNIBASE_INFRA_DB_URL"]; ok {
			t.Errorf("%s: OMNIBASE_INFRA_DB_URL set without database.existingSecret", s)
		}
		if c.Image != "ghcr.io/omninode/onex-fleet/"+s+":0.1.0" {
			t.Errorf("%s: image %q", s, c.Image)
		}
		// Default autoscaling stays within the 6 partitions of the topics.
		for _, h := range m.Group().HPAs[s] {
			if *h.Spec.MinReplicas != 1 || h.Spec.MaxReplicas > 6 {
				t.Errorf("%s: HPA %d..%d, want 1..<=6", s, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
			if h.Spec.ScaleTargetRef.Name != d.Name {
				t.Errorf("%s: HPA targets %q", s, h.Spec.ScaleTargetRef.Name)
			}
		}
	}

	// The projector: gRPC port, ONEX_GRPC_ADDR and its own Service.
	if d := deps["projector-effect"]; d != nil {
		c := container(t, d)
		if EnvOf(c)["ONEX_GRPC_ADDR"].Value != ":8086" {
			t.Errorf("projector-effect: ONEX_GRPC_ADDR=%q", EnvOf(c)["ONEX_GRPC_ADDR"].Value)
		}
	}
	var grpc []*corev1.Service
	for _, s := range m.Services {
		for _, p := range s.Spec.Ports {
			if p.Name == "grpc" {
				grpc = append(grpc, s)
			}
		}
	}
	if len(grpc) != 1 || Component(grpc[0].Labels) != "projector-effect" || grpc[0].Spec.Ports[0].Port != 8086 {
		t.Errorf("want exactly one gRPC Service, for projector-effect on 8086; got %d", len(grpc))
	}
	for _, s := range Services {
		if s == "projector-effect" {
			continue
		}
		if _, ok := EnvOf(container(t, deps[s]))["ONEX_GRPC_ADDR"]; ok {
			t.Errorf("%s: ONEX_GRPC_ADDR set", s)
		}
	}
	checkNoSecretValues(t, out)
}

func replicasArgs(n int) []string {
	var args []string
	for _, s := range Services {
		args = append(args, "--set", fmt.Sprintf("services.%s.replicas=%d", s, n))
	}
	return args
}

// (b) N replicas of every service.
func TestChartReplicas(t *testing.T) {
	for _, n := range []int{3, 6} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			m, out := render(t, replicasArgs(n)...)
			deps := perService(t, m, Services, true, true)
			g := m.Group()
			for _, s := range Services {
				if d := deps[s]; d != nil && *d.Spec.Replicas != int32(n) {
					t.Errorf("%s: replicas %d, want %d", s, *d.Spec.Replicas, n)
				}
				for _, h := range g.HPAs[s] {
					// The HPA's floor follows the requested replicas.
					if *h.Spec.MinReplicas != int32(n) || h.Spec.MaxReplicas != 6 {
						t.Errorf("%s: HPA %d..%d, want %d..6", s, *h.Spec.MinReplicas, h.Spec.MaxReplicas, n)
					}
				}
				for _, p := range g.PDBs[s] {
					if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
						t.Errorf("%s: PDB maxUnavailable %v, want 1", s, p.Spec.MaxUnavailable)
					}
				}
				checkGrace(t, deps[s], 30)
			}
			checkNoSecretValues(t, out)
		})
	}
	// Replicas per service are independent of each other.
	m, _ := render(t, "--set", "services.reducer.replicas=4", "--set", "services.consul-effect.replicas=2",
		"--set", "services.consul-effect.autoscaling.maxReplicas=3")
	want := map[string]int32{"registration-orchestrator": 1, "reducer": 4, "projector-effect": 1, "consul-effect": 2}
	g := m.Group()
	for s, n := range want {
		if got := *g.Deployments[s][0].Spec.Replicas; got != n {
			t.Errorf("%s: replicas %d, want %d", s, got, n)
		}
		if got := *g.HPAs[s][0].Spec.MinReplicas; got != n {
			t.Errorf("%s: HPA minReplicas %d, want %d", s, got, n)
		}
	}
	if got := g.HPAs["consul-effect"][0].Spec.MaxReplicas; got != 3 {
		t.Errorf("consul-effect: HPA maxReplicas %d, want 3", got)
	}
}

func TestChartVariants(t *testing.T) {
	t.Run("drain timeout", func(t *testing.T) {
		m, _ := render(t, "--set", "drainTimeoutSeconds=120", "--set", "services.reducer.drainTimeoutSeconds=5")
		g := m.Group()
		for _, s := range Services {
			want := 120
			if s == "reducer" {
				want = 5
			}
			checkGrace(t, g.Deployments[s][0], want)
		}
	})
	t.Run("infisical disabled", func(t *testing.T) {
		m, _ := render(t, "--set", "infisical.enabled=false")
		for _, d := range m.Deployments {
			for name := range EnvOf(container(t, d)) {
				if strings.HasPrefix(name, "INFISICAL_") || name == "RUNTIME_PROFILE" {
					t.Errorf("%s: %s set with infisical.enabled=false", d.Name, name)
				}
			}
		}
	})
	t.Run("infisical settings", func(t *testing.T) {
		m, _ := render(t, "--set", "infisical.addr=https://vault.example:8443", "--set", "infisical.projectId=p-123",
			"--set", "infisical.environment=staging", "--set", "infisical.required=false",
			"--set", "infisical.secretPolicy=best_effort", "--set", "infisical.credentialsSecret.name=machine-id",
			"--set", "infisical.credentialsSecret.clientIdKey=id", "--set", "infisical.credentialsSecret.clientSecretKey=secret")
		for _, d := range m.Deployments {
			c := container(t, d)
			env := EnvOf(c)
			for k, v := range map[string]string{"INFISICAL_ADDR": "https://vault.example:8443", "INFISICAL_PROJECT_ID": "p-123",
				"INFISICAL_ENVIRONMENT": "staging", "INFISICAL_REQUIRED": "false", "ONEX_SECRET_POLICY": "best_effort"} {
				if env[k].Value != v {
					t.Errorf("%s: %s=%q, want %q", d.Name, k, env[k].Value, v)
				}
			}
			if s, k := secretRef(t, c, "INFISICAL_CLIENT_ID"); s != "machine-id" || k != "id" {
				t.Errorf("%s: INFISICAL_CLIENT_ID from %s/%s", d.Name, s, k)
			}
			if s, k := secretRef(t, c, "INFISICAL_CLIENT_SECRET"); s != "machine-id" || k != "secret" {
				t.Errorf("%s: INFISICAL_CLIENT_SECRET from %s/%s", d.Name, s, k)
			}
		}
	})
	t.Run("database and consul secrets", func(t *testing.T) {
		m, out := render(t, "--set", "database.existingSecret=onex-db", "--set", "consul.tokenSecret.name=consul-acl")
		for _, d := range m.Deployments {
			c := container(t, d)
			s, k := secretRef(t, c, "OMNIBASE_INFRA_DB_URL")
			if comp := Component(d.Labels); comp == "projector-effect" {
				if s != "onex-db" || k != "OMNIBASE_INFRA_DB_URL" {
					t.Errorf("projector-effect: OMNIBASE_INFRA_DB_URL from %q/%q", s, k)
				}
			} else if s != "" {
				t.Errorf("%s: gets OMNIBASE_INFRA_DB_URL; only the projector needs PostgreSQL", comp)
			}
			s, k = secretRef(t, c, "CONSUL_HTTP_TOKEN")
			if comp := Component(d.Labels); comp == "consul-effect" {
				if s != "consul-acl" || k != "CONSUL_HTTP_TOKEN" {
					t.Errorf("consul-effect: CONSUL_HTTP_TOKEN from %q/%q", s, k)
				}
			} else if s != "" {
				t.Errorf("%s: gets CONSUL_HTTP_TOKEN", comp)
			}
		}
		checkNoSecretValues(t, out)
	})
	t.Run("consul registration mode", func(t *testing.T) {
		for want, args := range map[string][]string{"catalog": nil, "agent": {"--set", "consul.registrationMode=agent"}} {
			m, _ := render(t, args...)
			for _, d := range m.Deployments {
				env := EnvOf(container(t, d))
				mode, ok := env["ONEX_CONSUL_REGISTRATION_MODE"]
				if comp := Component(d.Labels); comp == "consul-effect" {
					if mode.Value != want {
						t.Errorf("consul-effect: ONEX_CONSUL_REGISTRATION_MODE=%q, want %q", mode.Value, want)
					}
				} else if ok {
					t.Errorf("%s: gets ONEX_CONSUL_REGISTRATION_MODE", comp)
				}
			}
		}
	})
	t.Run("autoscaling and pdb off per service", func(t *testing.T) {
		m, _ := render(t, "--set", "services.reducer.autoscaling.enabled=false", "--set", "services.consul-effect.pdb.enabled=false")
		g := m.Group()
		if len(g.HPAs["reducer"]) != 0 || len(m.HPAs) != 3 {
			t.Errorf("HPAs: %d in all, %d for reducer", len(m.HPAs), len(g.HPAs["reducer"]))
		}
		if len(g.PDBs["consul-effect"]) != 0 || len(m.PDBs) != 3 {
			t.Errorf("PDBs: %d in all, %d for consul-effect", len(m.PDBs), len(g.PDBs["consul-effect"]))
		}
	})
	t.Run("pdb minAvailable", func(t *testing.T) {
		m, _ := render(t, "--set", "services.reducer.pdb.minAvailable=50%")
		p := m.Group().PDBs["reducer"][0]
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.StrVal != "50%" || p.Spec.MaxUnavailable != nil {
			t.Errorf("reducer PDB: min %v max %v", p.Spec.MinAvailable, p.Spec.MaxUnavailable)
		}
	})
	t.Run("service disabled", func(t *testing.T) {
		m, _ := render(t, "--set", "services.consul-effect.enabled=false")
		perService(t, m, []string{"registration-orchestrator", "reducer", "projector-effect"}, true, true)
		g := m.Group()
		if n := len(g.Deployments["consul-effect"]) + len(g.HPAs["consul-effect"]) + len(g.PDBs["consul-effect"]) + len(g.Services["consul-effect"]); n != 0 {
			t.Errorf("consul-effect disabled but %d objects rendered", n)
		}
	})
	t.Run("long release name", func(t *testing.T) {
		root := RepoRoot(t)
		out, err := RunHelm(HelmBin(t), root, "template", "a-very-long-release-name-for-the-registration-fleet", ChartDir, "-n", namespace)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := SplitDocs(out)
		if err != nil {
			t.Fatal(err)
		}
		m, errs := Decode(docs)
		for _, e := range append(errs, m.Check()...) {
			t.Error(e) // includes the 63-char limit of Service names
		}
		if len(m.Deployments) != 4 {
			t.Errorf("%d Deployments", len(m.Deployments))
		}
	})
	t.Run("plain env and extraEnv", func(t *testing.T) {
		m, _ := render(t, "--set", "config.env.KAFKA_ACKS=all", "--set", "services.reducer.env.ONEX_LIVENESS_INTERVAL_SECONDS=30",
			"--set", "services.reducer.extraEnv[0].name=VALKEY_PASSWORD",
			"--set", "services.reducer.extraEnv[0].valueFrom.secretKeyRef.name=valkey",
			"--set", "services.reducer.extraEnv[0].valueFrom.secretKeyRef.key=password")
		for _, d := range m.Deployments {
			env := EnvOf(container(t, d))
			if env["KAFKA_ACKS"].Value != "all" {
				t.Errorf("%s: KAFKA_ACKS=%q", d.Name, env["KAFKA_ACKS"].Value)
			}
			if Component(d.Labels) == "reducer" {
				if env["ONEX_LIVENESS_INTERVAL_SECONDS"].Value != "30" {
					t.Errorf("reducer: ONEX_LIVENESS_INTERVAL_SECONDS=%q", env["ONEX_LIVENESS_INTERVAL_SECONDS"].Value)
				}
				if v := env["VALKEY_PASSWORD"].ValueFrom; v == nil || v.SecretKeyRef == nil || v.SecretKeyRef.Name != "valkey" {
					t.Errorf("reducer: VALKEY_PASSWORD %+v", env["VALKEY_PASSWORD"])
				}
			} else if _, ok := env["VALKEY_PASSWORD"]; ok {
				t.Errorf("%s: gets the reducer's extraEnv", d.Name)
			}
		}
	})
}

// Values that would break the fleet or leak a secret are refused at render
// time, with a message that names the problem.
func TestChartRejects(t *testing.T) {
	for _, c := range []struct {
		want string
		args []string
	}{
		{"drainTimeoutSeconds", []string{"--set", "drainTimeoutSeconds=0"}},
		{"drainTimeoutSeconds", []string{"--set", "drainTimeoutSeconds=301"}},
		{"drainTimeoutSeconds", []string{"--set", "services.reducer.drainTimeoutSeconds=400"}},
		{"below the floor", []string{"--set", "services.reducer.replicas=5", "--set", "services.reducer.autoscaling.maxReplicas=4"}},
		{"looks like a secret", []string{"--set", "services.reducer.env.VALKEY_PASSWORD=hunter2"}},
		{"looks like a secret", []string{"--set", "config.env.OMNIBASE_INFRA_DB_URL=postgresql://u:p@h/db"}},
		{"looks like a secret", []string{"--set", "config.env.CONSUL_HTTP_TOKEN=abc"}},
		{"registrationMode", []string{"--set", "consul.registrationMode=esm"}},
		{"replica", []string{"--set", "services.reducer.replica=3"}},
		{"foo", []string{"--set", "services.foo.enabled=true"}},
		{"kafkaBootstrapServers", []string{"--set", "config.kafkaBootstrapServers="}},
		{"credentialsSecret", []string{"--set", "infisical.credentialsSecret.name="}},
		{"projectId", []string{"--set", "infisical.projectId="}},
		{"secretPolicy", []string{"--set", "infisical.secretPolicy=sometimes"}},
		{"targetCPUUtilizationPercentage", []string{"--set", "services.reducer.autoscaling.targetCPUUtilizationPercentage=null"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) { renderFails(t, c.want, c.args...) })
	}
}

var (
	secretKind    = regexp.MustCompile(`(?m)^kind:\s*Secret\s*$`)
	secretPayload = regexp.MustCompile(`(?m)^\s*(stringData|data):`)
)

// checkNoSecretValues scans the rendered text: no Secret objects, no data
// payloads, no credentials in URLs. Env names that look like secrets are
// checked in Check (they must use secretKeyRef).
func checkNoSecretValues(t *testing.T, out string) {
	t.Helper()
	if secretKind.MatchString(out) {
		t.Error("the chart renders a Secret: it must only reference existing ones")
	}
	if secretPayload.MatchString(out) {
		t.Error("rendered output has a data/stringData payload")
	}
	if m := urlWithPassword.FindString(out); m != "" {
		t.Errorf("rendered output holds a URL with credentials: %q", m)
	}
}

// The chart's own files carry no secret either (the values and templates
// are public).
func TestChartFilesHoldNoSecrets(t *testing.T) {
	root := filepath.Join(RepoRoot(t), ChartDir)
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		if secretKind.MatchString(s) {
			t.Errorf("%s defines a Secret", p)
		}
		if m := urlWithPassword.FindString(s); m != "" {
			t.Errorf("%s holds a URL with credentials: %q", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The chart refuses secret-looking names in services.<svc>.env with the same
// pattern Check uses for literal env values.
func TestSecretPatternInSync(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), ChartDir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)define "onex-fleet.secretNamePattern" -\}\}\s*(.*?)\s*\{\{- end`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no onex-fleet.secretNamePattern in _helpers.tpl")
	}
	if got, want := "(?i)"+string(m[1]), SecretEnvName.String(); got != want {
		t.Errorf("chart pattern %s, Go pattern %s: keep them equal", got, want)
	}
}
