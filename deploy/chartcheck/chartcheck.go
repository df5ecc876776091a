// Package chartcheck validates what deploy/ ships without a Kubernetes
// cluster, a Docker engine or Tilt, none of which exist on the machines this
// repository is developed and tested on:
//
//   - the Helm chart deploy/helm/onex-fleet: `helm lint`, then `helm template`
//     with several value sets; every rendered document is decoded strictly
//     (unknown fields are errors) into the typed Kubernetes API structs
//     (apps/v1, core/v1, autoscaling/v2, policy/v1) and checked for what the
//     API server and the fleet's operation need (images, probes, resources,
//     grace period longer than the drain, selectors that select, no secret
//     values). Kubernetes JSON schemas cannot be downloaded here, so the Go
//     types are the schema.
//   - the Dockerfiles in deploy/docker: static checks, and a `go build` of
//     each service from a copy of the build context that .dockerignore leaves.
//   - the Tiltfile (package tiltcheck): executed with go.starlark.net against
//     stub Tilt builtins.
//
// The helm binary comes from HELM_BIN, else $ONEX_CACHE_DIR/bin/helm
// (scripts/tools/helm.sh installs it there). Without it the chart tests skip,
// unless ONEX_REQUIRE_INFRA=1, where they fail.
package chartcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// Services are the four deployables, in the order the chart renders them.
var Services = []string{"registration-orchestrator", "reducer", "projector-effect", "consul-effect"}

// ChartDir is the chart's path relative to the repository root.
const ChartDir = "deploy/helm/onex-fleet"

// RepoRoot returns the repository root (the directory holding go.work),
// searching upwards from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory: run the tests inside the repository")
		}
		dir = parent
	}
}

// HelmBin returns the helm binary to use: HELM_BIN, else
// $ONEX_CACHE_DIR/bin/helm (ONEX_CACHE_DIR defaults to ~/.cache/onex-fleet).
// When there is none it skips the test, or fails it under
// ONEX_REQUIRE_INFRA=1 (CI installs helm first: make helm-tools).
func HelmBin(t testing.TB) string {
	t.Helper()
	path, err := FindHelm()
	if err == nil {
		return path
	}
	if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
		t.Fatalf("%v (ONEX_REQUIRE_INFRA=1: run scripts/tools/helm.sh or `make helm-tools`)", err)
	}
	t.Skipf("%v: run scripts/tools/helm.sh (or set HELM_BIN) to run the chart checks", err)
	return ""
}

// FindHelm locates the helm binary without a testing.TB.
func FindHelm() (string, error) {
	if p := os.Getenv("HELM_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("HELM_BIN=%s is not an executable file", p)
	}
	cache := os.Getenv("ONEX_CACHE_DIR")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no ONEX_CACHE_DIR and no home directory: %w", err)
		}
		cache = filepath.Join(home, ".cache", "onex-fleet")
	}
	p := filepath.Join(cache, "bin", "helm")
	if isExecutable(p) {
		return p, nil
	}
	return "", fmt.Errorf("no helm binary at %s and HELM_BIN unset", p)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// RunHelm runs helm with args in dir and returns stdout; the error carries
// stderr.
func RunHelm(helm, dir string, args ...string) (string, error) {
	cmd := exec.Command(helm, args...)
	cmd.Dir = dir
	// No cluster is involved: keep helm away from any kubeconfig and from
	// the user's repositories and caches.
	tmp, err := os.MkdirTemp("", "chartcheck-helm-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+filepath.Join(tmp, "kubeconfig-none"),
		"HELM_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"HELM_DATA_HOME="+filepath.Join(tmp, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// Doc is one rendered YAML document.
type Doc struct {
	Source     string // the "# Source:" comment helm writes, if any
	APIVersion string
	Kind       string
	Name       string
	JSON       []byte // the document as JSON
}

var (
	docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceLine   = regexp.MustCompile(`(?m)^# Source: (.+)$`)
)

// SplitDocs splits helm's multi-document output and converts every non-empty
// document to JSON. Duplicate keys are errors (YAMLToJSONStrict): the API
// server would silently keep one of them.
func SplitDocs(out string) ([]Doc, error) {
	var docs []Doc
	for i, part := range docSeparator.Split(out, -1) {
		if isBlankYAML(part) {
			continue
		}
		src := ""
		if m := sourceLine.FindStringSubmatch(part); m != nil {
			src = m[1]
		}
		js, err := yaml.YAMLToJSONStrict([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %v", i, src, err)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(js, &meta); err != nil {
			return nil, fmt.Errorf("document %d (%s) is not an object: %v", i, src, err)
		}
		if meta.APIVersion == "" || meta.Kind == "" {
			return nil, fmt.Errorf("document %d (%s) has no apiVersion/kind", i, src)
		}
		docs = append(docs, Doc{Source: src, APIVersion: meta.APIVersion, Kind: meta.Kind, Name: meta.Metadata.Name, JSON: js})
	}
	return docs, nil
}

func isBlankYAML(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// DecodeStrict decodes js into v and fails on any field v's type does not
// have, and on trailing data.
func DecodeStrict(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	return nil
}
