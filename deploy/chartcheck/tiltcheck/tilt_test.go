package tiltcheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/omninode/onex-fleet/deploy/chartcheck"
)

// The ports each service serves /healthz, /readyz and /metrics on in the
// local dev loop (distinct: the four run side by side).
var localPorts = map[string]int64{
	"registration-orchestrator": 8085,
	"reducer":                   8087,
	"projector-effect":          8088,
	"consul-effect":             8089,
}

const projectorGRPCPort = 8086

func run(t *testing.T, opt Options) *Recording {
	t.Helper()
	root := chartcheck.RepoRoot(t)
	opt.Root = root
	rec, err := Run(filepath.Join(root, "Tiltfile"), opt)
	if err != nil {
		t.Fatalf("executing the Tiltfile with %v: %v", opt.Args, err)
	}
	return rec
}

func exists(t *testing.T, rel string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(chartcheck.RepoRoot(t), rel))
	return err == nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resources returns the declared resources by name (local_resource and
// k8s_resource) and fails on references to undeclared ones.
func resources(t *testing.T, rec *Recording) map[string]Call {
	t.Helper()
	out := map[string]Call{}
	for _, c := range rec.Of("local_resource") {
		out[c.Str("name")] = c
	}
	for _, c := range rec.Of("k8s_resource") {
		name := c.Str("new_name")
		if name == "" {
			name = c.Str("workload")
		}
		out[name] = c
	}
	for name, c := range out {
		for _, d := range c.List("resource_deps") {
			if _, ok := out[d]; !ok {
				t.Errorf("resource %q depends on %q, which is not declared", name, d)
			}
		}
	}
	return out
}

func checkDepsExist(t *testing.T, c Call) {
	t.Helper()
	for _, d := range c.List("deps") {
		if !exists(t, d) {
			t.Errorf("%s %q: deps path %q does not exist", c.Fn, c.Str("name"), d)
		}
	}
}

func TestTiltfileLocalMode(t *testing.T) {
	for _, args := range []map[string]string{nil, {"mode": "local"}} {
		rec := run(t, Options{Args: args})
		res := resources(t, rec)

		if n := len(rec.Of("k8s_yaml")) + len(rec.Of("docker_build")) + len(rec.Of("k8s_resource")); n != 0 {
			t.Errorf("local mode declares %d Kubernetes objects/images", n)
		}

		infra, ok := res["infra"]
		if !ok {
			t.Fatal("no infra resource")
		}
		if !strings.Contains(infra.Str("cmd"), "scripts/infra/up.sh") || !exists(t, "scripts/infra/up.sh") {
			t.Errorf("infra runs %q, want scripts/infra/up.sh (which must exist)", infra.Str("cmd"))
		}
		if p := infra.Obj("readiness_probe"); p == nil {
			t.Error("infra has no readiness probe")
		} else if e, _ := p.Args["exec"].(*Value); e == nil {
			t.Error("infra's readiness probe is not an exec probe")
		} else {
			for _, m := range regexp.MustCompile(`scripts/infra/\S+\.sh`).FindAllString(strings.Join(asStrings(e.Args["command"]), " "), -1) {
				if !exists(t, m) {
					t.Errorf("infra's readiness probe runs %s, which does not exist", m)
				}
			}
		}
		checkDepsExist(t, infra)

		setup, ok := res["setup"]
		if !ok {
			t.Fatal("no setup resource (topics)")
		}
		if !strings.Contains(setup.Str("cmd"), "bin/onexctl topics provision") || !strings.Contains(setup.Str("cmd"), "./cmd/onexctl") {
			t.Errorf("setup runs %q, want it to build onexctl and provision the topics", setup.Str("cmd"))
		}
		if !has(setup.List("resource_deps"), "infra") {
			t.Errorf("setup does not wait for infra: %v", setup.List("resource_deps"))
		}
		checkDepsExist(t, setup)

		if !exists(t, "scripts/infra/env.sh") {
			t.Error("the services' serve_cmd evaluates scripts/infra/env.sh, which does not exist")
		}
		seenPorts := map[int64]string{}
		for _, svc := range chartcheck.Services {
			c, ok := res[svc]
			if !ok {
				t.Errorf("%s: not declared", svc)
				continue
			}
			if c.Fn != "local_resource" {
				t.Errorf("%s: declared by %s, want local_resource", svc, c.Fn)
			}
			pkg := "./services/" + svc + "/cmd/" + svc
			if want := "go build -o bin/" + svc + " " + pkg; !strings.Contains(c.Str("cmd"), want) {
				t.Errorf("%s: cmd %q does not contain %q", svc, c.Str("cmd"), want)
			}
			if !strings.Contains(c.Str("cmd"), "CGO_ENABLED=0") {
				t.Errorf("%s: cmd %q: build like `make build` (CGO_ENABLED=0)", svc, c.Str("cmd"))
			}
			if !exists(t, pkg) {
				t.Errorf("%s: %s does not exist", svc, pkg)
			}
			serve := c.Str("serve_cmd")
			if !strings.Contains(serve, `eval "$(scripts/infra/env.sh)"`) || !strings.HasSuffix(serve, "exec bin/"+svc) {
				t.Errorf("%s: serve_cmd %q: want the env of scripts/infra/env.sh, then exec bin/%s", svc, serve, svc)
			}
			deps := c.List("deps")
			for _, want := range []string{"services/" + svc, "pkg", "go.work"} {
				if !has(deps, want) {
					t.Errorf("%s: deps %v lack %s (no rebuild when it changes)", svc, deps, want)
				}
			}
			checkDepsExist(t, c)
			if !has(c.List("ignore"), "**/*_test.go") {
				t.Errorf("%s: a test file change would restart it (ignore %v)", svc, c.List("ignore"))
			}
			rdeps := c.List("resource_deps")
			if !has(rdeps, "infra") || !has(rdeps, "setup") {
				t.Errorf("%s: resource_deps %v, want infra and setup", svc, rdeps)
			}

			// Readiness: GET /readyz on the port the service is told to use.
			p := c.Obj("readiness_probe")
			if p == nil {
				t.Errorf("%s: no readiness probe", svc)
				continue
			}
			hg, _ := p.Args["http_get"].(*Value)
			if hg == nil {
				t.Errorf("%s: readiness probe is not an http_get", svc)
				continue
			}
			port, _ := hg.Args["port"].(int64)
			if hg.Args["path"] != "/readyz" || port != localPorts[svc] {
				t.Errorf("%s: readiness GET %v on %d, want /readyz on %d", svc, hg.Args["path"], port, localPorts[svc])
			}
			env, _ := c.Args["serve_env"].(map[string]any)
			if env["ONEX_HTTP_PORT"] != strconv.FormatInt(localPorts[svc], 10) {
				t.Errorf("%s: serve_env ONEX_HTTP_PORT=%v, want %d", svc, env["ONEX_HTTP_PORT"], localPorts[svc])
			}
			if prev, dup := seenPorts[port]; dup {
				t.Errorf("%s and %s share port %d", svc, prev, port)
			}
			seenPorts[port] = svc
			if svc == "projector-effect" {
				if addr, _ := env["ONEX_GRPC_ADDR"].(string); !strings.HasSuffix(addr, ":"+strconv.Itoa(projectorGRPCPort)) {
					t.Errorf("projector-effect: ONEX_GRPC_ADDR=%q, want port %d", addr, projectorGRPCPort)
				}
			} else if _, ok := env["ONEX_GRPC_ADDR"]; ok {
				t.Errorf("%s: ONEX_GRPC_ADDR set", svc)
			}
			// The local dev loop is plaintext, like `make run`.
			for name := range env {
				if has(chartcheck.SecurityEnvNames, name) {
					t.Errorf("%s: serve_env sets %s; the local dev loop is plaintext", svc, name)
				}
			}
		}
		if _, clash := seenPorts[projectorGRPCPort]; clash {
			t.Errorf("an HTTP port collides with the projector's gRPC port %d", projectorGRPCPort)
		}
	}
}

func TestTiltfileK8sMode(t *testing.T) {
	root := chartcheck.RepoRoot(t)
	helm, helmErr := chartcheck.FindHelm()
	var rendered string
	opt := Options{Args: map[string]string{"mode": "k8s"}, K8sContext: "kind-onex"}
	if helmErr == nil {
		// Render the chart for real with the Tiltfile's arguments.
		opt.Helm = func(chart, name, ns string, values, set []string) (string, error) {
			args := []string{"template", name, chart, "--namespace", ns}
			for _, v := range values {
				args = append(args, "--values", v)
			}
			for _, s := range set {
				args = append(args, "--set", s)
			}
			out, err := chartcheck.RunHelm(helm, root, args...)
			rendered = out
			return out, err
		}
	} else if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
		t.Fatalf("%v (ONEX_REQUIRE_INFRA=1: run `make helm-tools`)", helmErr)
	} else {
		t.Logf("no helm (%v): the chart render of k8s mode is not checked", helmErr)
	}
	rec := run(t, opt)
	res := resources(t, rec)

	for _, name := range []string{"infra", "setup"} {
		if _, ok := res[name]; !ok {
			t.Errorf("k8s mode: no %s resource", name)
		}
	}
	if !has(res["setup"].List("resource_deps"), "infra") {
		t.Error("k8s mode: setup does not wait for infra")
	}
	if ctxs := rec.Of("allow_k8s_contexts"); len(ctxs) != 1 || ctxs[0].Str("contexts") != "kind-onex" {
		t.Errorf("allow_k8s_contexts calls %v, want the current context", ctxs)
	}

	// One image per service, from its Dockerfile, with a context that holds
	// every module of the workspace.
	mods := workspaceUses(t, root)
	images := map[string]bool{}
	for _, svc := range chartcheck.Services {
		var b *Call
		for _, c := range rec.Of("docker_build") {
			if c.Str("ref") == "onex-fleet/"+svc {
				c := c
				b = &c
			}
		}
		if b == nil {
			t.Errorf("%s: no docker_build onex-fleet/%s", svc, svc)
			continue
		}
		images[b.Str("ref")] = true
		if df := b.Str("dockerfile"); df != "deploy/docker/"+svc+".Dockerfile" || !exists(t, df) {
			t.Errorf("%s: dockerfile %q", svc, df)
		}
		if b.Str("context") != "." {
			t.Errorf("%s: context %q, want the repository root", svc, b.Str("context"))
		}
		only := b.List("only")
		for _, need := range append([]string{"go.work", "go.work.sum"}, mods...) {
			covered := false
			for _, o := range only {
				covered = covered || need == o || strings.HasPrefix(need, strings.TrimSuffix(o, "/")+"/")
			}
			if !covered {
				t.Errorf("%s: docker_build only=%v leaves out %s (the workspace build needs it)", svc, only, need)
			}
		}
	}
	if len(rec.Of("docker_build")) != len(chartcheck.Services) {
		t.Errorf("%d docker_build calls, want %d", len(rec.Of("docker_build")), len(chartcheck.Services))
	}

	hc := rec.Of("helm")
	if len(hc) != 1 || firstString(hc[0].Args["paths"]) != chartcheck.ChartDir {
		t.Fatalf("helm calls %v, want one of %s", hc, chartcheck.ChartDir)
	}
	if len(rec.Of("k8s_yaml")) != 1 {
		t.Errorf("%d k8s_yaml calls, want 1", len(rec.Of("k8s_yaml")))
	}

	seen := map[int64]string{}
	for _, svc := range chartcheck.Services {
		c, ok := res[svc]
		if !ok || c.Fn != "k8s_resource" {
			t.Errorf("%s: no k8s_resource", svc)
			continue
		}
		if c.Str("workload") != "onex-fleet-"+svc {
			t.Errorf("%s: workload %q, want the chart's Deployment onex-fleet-%s", svc, c.Str("workload"), svc)
		}
		rdeps := c.List("resource_deps")
		if !has(rdeps, "infra") || !has(rdeps, "setup") {
			t.Errorf("%s: resource_deps %v, want infra and setup", svc, rdeps)
		}
		if c.Str("pod_readiness") != "wait" {
			t.Errorf("%s: pod_readiness %q, want wait (the pods' readinessProbe is /readyz)", svc, c.Str("pod_readiness"))
		}
		pfs, _ := c.Args["port_forwards"].([]any)
		if len(pfs) == 0 {
			t.Errorf("%s: no port forward", svc)
		}
		for _, pf := range pfs {
			v, _ := pf.(*Value)
			if v == nil {
				t.Errorf("%s: port_forwards holds %v", svc, pf)
				continue
			}
			lp, _ := v.Args["local_port"].(int64)
			if prev, dup := seen[lp]; dup {
				t.Errorf("%s and %s forward the same local port %d", svc, prev, lp)
			}
			seen[lp] = svc
		}
	}

	if rendered == "" {
		return
	}
	// The chart as Tilt would apply it: valid, and its workloads are the
	// ones k8s_resource names, running the images docker_build builds, with
	// the readiness probe Tilt waits for.
	docs, err := chartcheck.SplitDocs(rendered)
	if err != nil {
		t.Fatal(err)
	}
	m, errs := chartcheck.Decode(docs)
	for _, e := range append(errs, m.Check()...) {
		t.Error(e)
	}
	deps := map[string]bool{}
	for _, d := range m.Deployments {
		deps[d.Name] = true
		for _, c := range d.Spec.Template.Spec.Containers {
			repo := c.Image
			if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
				repo = repo[:i]
			}
			if !images[repo] {
				t.Errorf("Deployment %s runs %s, which no docker_build builds (Tilt would not inject it)", d.Name, c.Image)
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("Deployment %s: no /readyz readiness probe", d.Name)
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "INFISICAL_") {
					t.Errorf("Deployment %s: %s set, but the dev cluster has no Infisical", d.Name, e.Name)
				}
				// The dev loop stays plaintext: no security values.
				if has(chartcheck.SecurityEnvNames, e.Name) {
					t.Errorf("Deployment %s: %s set, but Tilt's k8s mode is plaintext", d.Name, e.Name)
				}
			}
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Secret != nil {
					t.Errorf("Deployment %s: Secret volume %s in Tilt's k8s mode", d.Name, v.Name)
				}
			}
		}
	}
	for _, c := range rec.Of("k8s_resource") {
		if !deps[c.Str("workload")] {
			t.Errorf("k8s_resource workload %q is not a Deployment of the chart", c.Str("workload"))
		}
	}
}

func TestTiltfileK8sModeOptions(t *testing.T) {
	// --values replaces the dev defaults; --kafka provisions topics.
	rec := run(t, Options{Args: map[string]string{"mode": "k8s", "values": "my-values.yaml", "kafka": "127.0.0.1:9092", "namespace": "dev"}, K8sContext: "kind-onex"})
	h := rec.Of("helm")[0]
	if !has(h.List("values"), "my-values.yaml") || h.Str("namespace") != "dev" {
		t.Errorf("helm values %v namespace %q", h.List("values"), h.Str("namespace"))
	}
	for _, s := range h.List("set") {
		if strings.HasPrefix(s, "infisical.") {
			t.Errorf("with --values the Tiltfile still overrides %s", s)
		}
	}
	for _, c := range rec.Of("local_resource") {
		if c.Str("name") == "setup" && !strings.Contains(c.Str("cmd"), "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 bin/onexctl topics provision") {
			t.Errorf("setup with --kafka runs %q", c.Str("cmd"))
		}
	}
}

func TestTiltfileRefusals(t *testing.T) {
	root := chartcheck.RepoRoot(t)
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{Args: map[string]string{"mode": "k8s"}}, "needs a Kubernetes cluster"},
		{Options{Args: map[string]string{"mode": "docker"}}, "--mode must be local or k8s"},
		{Options{Args: map[string]string{"bogus": "1"}}, "not defined"},
	} {
		c.opt.Root = root
		_, err := Run(filepath.Join(root, "Tiltfile"), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Tiltfile with %v: error %v, want %q", c.opt.Args, err, c.want)
		}
	}
}

// The stubs are strict: a misspelt keyword fails like it does in Tilt.
func TestStubsAreStrict(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ src, want string }{
		{`local_resource('x', cmd='true', resource_dep=['y'])`, `unexpected keyword argument "resource_dep"`},
		{`local_resource('x', cmd='true', readiness_probe=probe(http_get=http_get_action(port=1, path='/')))`, "only to a serve_cmd"},
		{`probe(http_get=http_get_action(port=1), exec=exec_action(['true']))`, "exactly one"},
		{`local_resource('x', cmd='a')` + "\n" + `local_resource('x', cmd='b')`, "already declared"},
		{`load('ext://restart_process', 'docker_build_with_restart')`, "extensions are not available"},
	} {
		p := filepath.Join(dir, "Tiltfile")
		if err := os.WriteFile(p, []byte(c.src+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Run(p, Options{Root: dir})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.src, err, c.want)
		}
	}
}

func workspaceUses(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "use (":
			in = true
		case in && line == ")":
			in = false
		case in && line != "":
			out = append(out, filepath.ToSlash(filepath.Clean(line)))
		}
	}
	return out
}
