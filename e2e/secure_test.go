package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	consul "github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/e2e/harness"
	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// secureLiveness is the secured fleet's liveness window: short, so the
// expiry step is quick, and far above its 2 s heartbeats.
const secureLiveness = 10 * time.Second

// Suite 12 — the fleet on secured servers, started by the project's own
// scripts (ONEX_INFRA_SECURE=1): Kafka over SASL_SSL with SCRAM-SHA-512,
// PostgreSQL with verify-full TLS, Consul with ACLs (default deny) behind
// HTTPS with the least-policy token, and the projector's gRPC with mTLS
// and admin authorisation. Registration, heartbeats, expiry, the DLQ,
// `onexctl nodes list` and the gRPC read and admin paths work; a wrong
// Kafka password, an untrusted CA, a Consul token without write rights
// and a gRPC client without a certificate each fail with one clear line,
// without a hang or a crash loop; and no secret appears in anything the
// run wrote: logs, records on every topic, metrics, onexctl's output.
func TestSuite12_SecuredTransports(t *testing.T) {
	sp, ok := prov.(harness.SecureProvider)
	if !ok {
		t.Skipf("the %s provider runs no secured servers", prov.Name())
	}
	ctx := context.Background()
	start := time.Now()
	sec, err := sp.StartSecure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sp.StopSecure(context.Background()); err != nil {
			t.Errorf("stopping the secured servers: %v", err)
		}
	})
	t.Logf("secured servers up in %s", time.Since(start).Round(time.Millisecond))

	issue := func(name, cn, san, eku string) (string, string) {
		crt, key, err := sp.IssueCert(ctx, name, cn, san, eku)
		if err != nil {
			t.Fatal(err)
		}
		return crt, key
	}
	srvCrt, srvKey := issue("registry-server", "localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth")
	adminCrt, adminKey := issue("registry-admin", "onex-e2e-admin", "", "clientAuth")
	readerCrt, readerKey := issue("registry-reader", "onex-e2e-reader", "", "clientAuth")
	otherCA := writeOtherCA(t)
	adminToken := "adm-" + strings.ReplaceAll(uuid.NewString(), "-", "")
	wrongPassword := "wrong-" + strings.ReplaceAll(uuid.NewString(), "-", "")
	secrets := sec.Secrets()
	secrets["ONEX_GRPC_ADMIN_TOKEN"] = adminToken
	secrets["the wrong Kafka password"] = wrongPassword

	// The test's own Kafka clients (provisioning, nodes, recorders) take
	// the secured settings from the environment, as the services do.
	for k, v := range sec.Kafka {
		t.Setenv(k, v)
	}
	brokers := bus.ParseBrokers(sec.Kafka["KAFKA_BOOTSTRAP_SERVERS"])
	if err := harness.ProvisionTopics(ctx, brokers); err != nil {
		t.Fatal(err)
	}
	secServers := harness.Servers{KafkaBrokers: brokers, PostgresURL: sec.PostgresURL, ConsulAddr: sec.Consul["CONSUL_HTTP_ADDR"]}
	env := map[string]string{
		"ONEX_ENVIRONMENT":               "e2e-secure",
		"ONEX_NODE_HEARTBEAT_INTERVAL":   heartbeat.String(),
		"ONEX_LIVENESS_INTERVAL_SECONDS": fmt.Sprint(int(secureLiveness.Seconds())),
		"ONEX_LIVENESS_WINDOW_SECONDS":   fmt.Sprint(int(secureLiveness.Seconds())),
		"ONEX_CONSUL_RECONCILE_INTERVAL": "5",
		"ONEX_CONSUL_ORPHAN_GRACE":       "30",
		"ONEX_CONSUL_CB_RESET_TIMEOUT":   "3",
		"POSTGRES_SSL_MODE":              "verify-full",
		"POSTGRES_SSL_CA_FILE":           sec.CAFile,
		"ONEX_GRPC_TLS_CERT_FILE":        srvCrt,
		"ONEX_GRPC_TLS_KEY_FILE":         srvKey,
		"ONEX_GRPC_CLIENT_CA_FILE":       sec.CAFile,
		"ONEX_GRPC_ADMIN_SUBJECTS":       "onex-e2e-admin",
		"ONEX_GRPC_ADMIN_TOKEN":          adminToken,
	}
	for _, m := range []map[string]string{sec.Kafka, sec.Consul} {
		for k, v := range m {
			env[k] = v
		}
	}
	logDir := filepath.Join(os.TempDir(), "onex-e2e-secure-logs")
	_ = os.RemoveAll(logDir)
	sfl, err := harness.NewFleet(secServers, repoRoot, binDir, logDir, env)
	if err != nil {
		t.Fatal(err)
	}
	// bad runs single services with one setting wrong, next to the fleet.
	bad := func(name string, override map[string]string) *harness.Fleet {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range override {
			e[k] = v
		}
		f, err := harness.NewFleet(secServers, repoRoot, binDir, filepath.Join(logDir, name), e)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.StopAll() })
		return f
	}
	var scraped bytes.Buffer // every /metrics page the run served
	t.Cleanup(func() {
		_ = sfl.StopAll()
		if t.Failed() {
			t.Logf("secured fleet logs in %s", logDir)
		}
	})
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := sfl.StartAll(sctx); err != nil {
		t.Fatal(err)
	}

	pg, err := harness.OpenDB(ctx, sec.PostgresURL+"?sslmode=verify-full&sslrootcert="+sec.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	cc, err := consul.NewClient(&consul.Config{Address: sec.Consul["CONSUL_HTTP_ADDR"], Scheme: "https",
		Token: sec.ConsulReadOnlyToken, TLSConfig: consul.TLSConfig{CAFile: sec.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	// waitIn waits until every node is in want in PostgreSQL and, when
	// inConsul, passing in Consul (else absent from it).
	waitIn := func(timeout time.Duration, want string, inConsul bool, nodeIDs ...string) {
		t.Helper()
		err := harness.Eventually(ctx, timeout, func(ctx context.Context) error {
			rows, err := pg.Rows(ctx, nodeIDs...)
			if err != nil {
				return err
			}
			entries, err := harness.ConsulEntriesOf(cc)
			if err != nil {
				return err
			}
			for _, id := range nodeIDs {
				if st := rows[id].State; st != want {
					return fmt.Errorf("node %s: state %q, want %s", id, st, want)
				}
				e, ok := entries[id]
				switch {
				case inConsul && (!ok || e.Health != consul.HealthPassing || !e.External):
					return fmt.Errorf("node %s in Consul: %v %+v, want a passing external service", id, ok, e)
				case !inConsul && ok:
					return fmt.Errorf("node %s still in Consul", id)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// 1. Registration and heartbeats over SASL_SSL, TLS PostgreSQL, ACL Consul.
	kinds := []registration.NodeKind{registration.NodeKindEffect, registration.NodeKindCompute, registration.NodeKindReducer, registration.NodeKindOrchestrator}
	var live, leaving []node.Identity
	for i, k := range kinds {
		live = append(live, identity(k, fmt.Sprintf("e2e_secure_%d", i)))
	}
	leaving = append(leaving, identity(registration.NodeKindEffect, "e2e_secure_leaving_token"), identity(registration.NodeKindCompute, "e2e_secure_leaving_cert"))
	liveNodes, leavingNodes := startNodesOn(t, brokers, "e2e-secure", heartbeat), startNodesOn(t, brokers, "e2e-secure", heartbeat)
	for _, id := range live {
		liveNodes.add(id, node.Options{})
	}
	for _, id := range leaving {
		leavingNodes.add(id, node.Options{})
	}
	// Real Python nodes of the pinned package join the secured cluster
	// with the same KAFKA_* variables.
	py, err := harness.PythonVenv(ctx, repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	pyNodes, err := harness.StartPythonNodes(sctx, py, repoRoot, brokers, harness.PythonNodesOptions{
		Nodes: 2, Types: []string{"effect", "compute"}, HeartbeatInterval: heartbeat, NamePrefix: "e2e-secure-py",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pyNodes.Close()
	var pyIDs []string
	for _, n := range pyNodes.Nodes() {
		pyIDs = append(pyIDs, n.NodeID)
	}
	waitIn(90*time.Second, "active", true, append(append(ids(live...), ids(leaving...)...), pyIDs...)...)
	err = harness.Eventually(ctx, 3*heartbeat+5*time.Second, func(ctx context.Context) error {
		first, err := pg.Rows(ctx, ids(live...)...)
		if err != nil {
			return err
		}
		time.Sleep(heartbeat + time.Second)
		then, err := pg.Rows(ctx, ids(live...)...)
		if err != nil {
			return err
		}
		for _, id := range ids(live...) {
			a, b := first[id].LastHeartbeatAt, then[id].LastHeartbeatAt
			if a == nil || b == nil || !b.After(*a) {
				return fmt.Errorf("node %s: heartbeat not advancing (%v, %v)", id, a, b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// 2. The gRPC read path through onexctl with a client certificate.
	grpcEnv := []string{"ONEX_REGISTRY_ADDR=" + sfl.GRPCAddr, "ONEX_REGISTRY_CA_FILE=" + sec.CAFile}
	var cliOut bytes.Buffer
	cli := func(env []string, args ...string) (string, error) {
		t.Helper()
		out, err := runOnexctl(t, env, args...)
		fmt.Fprintln(&cliOut, out)
		return out, err
	}
	reader := append(slices.Clone(grpcEnv), "ONEX_REGISTRY_CERT_FILE="+readerCrt, "ONEX_REGISTRY_KEY_FILE="+readerKey)
	out, err := cli(reader, "nodes", "list", "-o", "json")
	if err != nil {
		t.Fatalf("onexctl nodes list with a client certificate: %v\n%s", err, out)
	}
	for _, id := range ids(live...) {
		if !strings.Contains(out, id) {
			t.Errorf("onexctl nodes list does not list %s:\n%s", id, out)
		}
	}

	// 3. Refused gRPC clients: one line each, exit 1, in seconds.
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want *regexp.Regexp
	}{
		{"no client certificate", grpcEnv, []string{"nodes", "list"}, regexp.MustCompile(`(?i)certificate`)},
		{"untrusted server CA", []string{grpcEnv[0], "ONEX_REGISTRY_CA_FILE=" + otherCA, "ONEX_REGISTRY_CERT_FILE=" + readerCrt, "ONEX_REGISTRY_KEY_FILE=" + readerKey}, []string{"nodes", "list"},
			regexp.MustCompile(`(?i)certificate`)},
		{"reader asks for an admin operation", reader, []string{"nodes", "deregister", uuid.NewString(), "--via", "grpc", "--reason", "e2e", "--as", "e2e"},
			regexp.MustCompile(`PermissionDenied`)},
		{"wrong admin token", append(slices.Clone(reader), "ONEX_REGISTRY_TOKEN=not-"+adminToken), []string{"nodes", "deregister", uuid.NewString(), "--via", "grpc", "--reason", "e2e", "--as", "e2e"},
			regexp.MustCompile(`PermissionDenied`)},
	} {
		began := time.Now()
		out, err := cli(c.env, c.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		switch {
		case err == nil:
			t.Errorf("%s: onexctl succeeded:\n%s", c.name, out)
		case len(lines) != 1 || !c.want.MatchString(lines[0]):
			t.Errorf("%s: want one line matching %s, got:\n%s", c.name, c.want, out)
		case time.Since(began) > 15*time.Second:
			t.Errorf("%s: took %s", c.name, time.Since(began))
		}
	}

	// 4. The gRPC admin path: a node deregistered by the admin token, one
	// by the admin certificate (the nodes are stopped first: a live Go
	// node re-announces itself at once).
	leavingNodes.stop()
	for i, env := range [][]string{
		append(slices.Clone(reader), "ONEX_REGISTRY_TOKEN="+adminToken),
		append(slices.Clone(grpcEnv), "ONEX_REGISTRY_CERT_FILE="+adminCrt, "ONEX_REGISTRY_KEY_FILE="+adminKey),
	} {
		id := leaving[i].NodeID.String()
		out, err := cli(env, "nodes", "deregister", id, "--via", "grpc", "--reason", "secured e2e", "--as", "e2e-secure")
		if err != nil {
			t.Fatalf("onexctl nodes deregister --via grpc (%s): %v\n%s", []string{"token", "certificate"}[i], err, out)
		}
	}
	waitIn(30*time.Second, "liveness_expired", false, ids(leaving...)...)

	// 5. The DLQ: a record that is no envelope is dead-lettered.
	dlq, err := harness.NewRecorder(brokers, sarama.OffsetOldest, dlqTopics...)
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	marker := uuid.NewString()
	produceTo(t, brokers, topics.NodeHeartbeat, "", fmt.Sprintf(`{"not_an_envelope": true, "marker": "%s"}`, marker))
	err = harness.Eventually(ctx, 30*time.Second, func(context.Context) error {
		for _, r := range dlq.Records("") {
			if strings.Contains(string(r.Value), marker) {
				return nil
			}
		}
		return fmt.Errorf("the malformed record is not dead-lettered")
	})
	if err != nil {
		t.Error(err)
	}

	// 6. Kafka refusals: a wrong password and a CA that did not sign the
	// broker. One clear line, the service alive and unready (it keeps
	// waiting for Kafka), no crash loop.
	for _, c := range []struct {
		name, svc string
		override  map[string]string
		want      string
	}{
		{"wrong-password", "reducer", map[string]string{"KAFKA_SASL_PASSWORD": wrongPassword}, "Kafka refused the SASL SCRAM-SHA-512 login"},
		{"untrusted-ca", "registration-orchestrator", map[string]string{"KAFKA_SSL_CA_FILE": otherCA}, "not signed by a trusted CA"},
	} {
		f := bad(c.name, c.override)
		if err := f.Start(c.svc); err != nil {
			t.Fatal(err)
		}
		err := harness.Eventually(ctx, 30*time.Second, func(context.Context) error {
			if n := linesWith(f.LogPath(c.svc), c.want); n == 0 {
				return fmt.Errorf("%s: no line %q in %s", c.name, c.want, f.LogPath(c.svc))
			}
			return nil
		})
		if err != nil {
			t.Error(err)
			continue
		}
		time.Sleep(3 * time.Second)
		if !f.Running(c.svc) {
			t.Errorf("%s: %s exited", c.name, c.svc)
		}
		if code := httpStatus(fmt.Sprintf("http://127.0.0.1:%d/readyz", f.HTTPPort[c.svc])); code == http.StatusOK {
			t.Errorf("%s: %s ready without Kafka", c.name, c.svc)
		}
		scrape(&scraped, f, c.svc)
		if err := f.Stop(c.svc); err != nil {
			t.Errorf("%s: stop: %v", c.name, err)
		}
	}

	// 7. A Consul token without write rights: the consul effect with the
	// read-only token refuses the next node with one clear line, opens its
	// breaker and keeps running; with the right token back, anti-entropy
	// puts the node into Consul: nothing is lost.
	if err := sfl.Stop("consul-effect"); err != nil {
		t.Fatal(err)
	}
	ro := bad("consul-read-only", map[string]string{"CONSUL_HTTP_TOKEN": sec.ConsulReadOnlyToken})
	if err := ro.Start("consul-effect"); err != nil {
		t.Fatal(err)
	}
	if err := ro.WaitReady(sctx, "consul-effect"); err != nil {
		t.Fatal(err)
	}
	late := identity(registration.NodeKindEffect, "e2e_secure_late")
	liveNodes.add(late, node.Options{})
	roLog := ro.LogPath("consul-effect")
	err = harness.Eventually(ctx, 60*time.Second, func(context.Context) error {
		if linesWith(roLog, "CONSUL_HTTP_TOKEN") == 0 {
			return fmt.Errorf("no line naming CONSUL_HTTP_TOKEN in %s", roLog)
		}
		m := metricsOf(ro, "consul-effect")
		if !strings.Contains(m, `onex_circuit_breaker_state{backend="consul"`) || !regexp.MustCompile(`onex_circuit_breaker_state\{backend="consul"[^}]*\} 2`).MatchString(m) {
			return fmt.Errorf("the consul effect's breaker is not open")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if !ro.Running("consul-effect") {
		t.Error("the consul effect with a read-only token exited")
	}
	scrape(&scraped, ro, "consul-effect")
	if err := ro.Stop("consul-effect"); err != nil {
		t.Error(err)
	}
	if err := sfl.Start("consul-effect"); err != nil {
		t.Fatal(err)
	}
	waitIn(60*time.Second, "active", true, append(ids(late, live[0]), pyIDs...)...)

	// 8. Expiry: the nodes stop; their rows expire and they leave Consul.
	liveNodes.stop()
	pyNodes.Close()
	waitIn(secureLiveness+30*time.Second, "liveness_expired", false, append(ids(live...), pyIDs...)...)

	// 9. No secret in anything the run wrote.
	for _, svc := range harness.Services {
		scrape(&scraped, sfl, svc)
	}
	if err := sfl.StopAll(); err != nil {
		t.Error(err)
	}
	var corpus []struct{ what, text string }
	add := func(what, text string) { corpus = append(corpus, struct{ what, text string }{what, text}) }
	add("onexctl output", cliOut.String())
	add("metrics", scraped.String())
	add("the Python nodes' output", pyNodes.Stderr(1<<22))
	_ = filepath.WalkDir(logDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			add(p, string(b))
		}
		return nil
	})
	recs := everyRecord(t, brokers)
	for _, r := range recs {
		add(fmt.Sprintf("record %s[%d]@%d", r.Topic, r.Partition, r.Offset), r.Key+"\n"+string(r.Value)+"\n"+strings.Join(r.Headers, "\n"))
	}
	for name, secret := range secrets {
		for _, c := range corpus {
			if strings.Contains(c.text, secret) {
				t.Errorf("%s appears in %s", name, c.what)
			}
		}
	}
	t.Logf("secured run: %d nodes, %d records, %d log files and %d bytes of metrics searched for %d secrets",
		len(live)+len(leaving)+1+len(pyIDs), len(recs), len(corpus)-3-len(recs), scraped.Len(), len(secrets))
}

// produceTo publishes one record to topic on brokers.
func produceTo(t *testing.T, brokers []string, topic, key, value string) {
	t.Helper()
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "e2e-producer"})
	if err != nil {
		t.Fatal(err)
	}
	harness.NamespaceProducers(cfg)
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m := &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)}
	if key != "" {
		m.Key = sarama.StringEncoder(key)
	}
	if _, _, err := p.SendMessage(m); err != nil {
		t.Fatal(err)
	}
}

// everyRecord reads every record of every topic of the run on brokers
// (those on harness.Namespace: everything the run's fleet, nodes and tests
// wrote) from the oldest, until no more arrive.
func everyRecord(t *testing.T, brokers []string) []harness.Record {
	t.Helper()
	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "e2e-secure-search"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	names, err := client.Topics()
	client.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, n := range names {
		// The run's topics: on its namespace (harness.Namespace).
		if strings.HasPrefix(n, harness.Namespace.Prefix()) {
			want = append(want, n)
		}
	}
	r, err := harness.NewRecorder(brokers, sarama.OffsetOldest, want...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	last := -1
	for range 60 {
		time.Sleep(time.Second)
		n := len(r.Records(""))
		if n > 0 && n == last {
			break
		}
		last = n
	}
	return r.Records("")
}

// linesWith counts the lines of the file at path that contain s.
func linesWith(path, s string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

func httpStatus(url string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metricsOf returns svc's /metrics page ("" when it does not answer).
func metricsOf(f *harness.Fleet, svc string) string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.HTTPPort[svc]))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func scrape(w *bytes.Buffer, f *harness.Fleet, svc string) {
	w.WriteString(metricsOf(f, svc))
}

// writeOtherCA writes the certificate of a CA that signed none of the
// servers and returns its path.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "not the ONEX test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
