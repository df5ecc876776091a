package proto

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code of every .proto under
// this directory, as `make proto` does, into a temporary directory and
// fails when a committed file differs, is missing, or has no .proto left.
// Generated code edited by hand, or a .proto changed without `make proto`,
// would otherwise ship unnoticed: the compiler cannot tell.
//
// It needs protoc of the version the committed files name and the plugins
// the Makefile pins (taken from bin/tools when they are that version,
// installed from the module proxy otherwise). Without them it fails under
// CI=true or ONEX_REQUIRE_INFRA=1 and skips elsewhere.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates code with protoc (-short)")
	}
	protos, committed := sources(t)
	if len(protos) == 0 {
		t.Fatal("no .proto files found")
	}

	protoc, err := exec.LookPath("protoc")
	if err != nil {
		unavailable(t, "protoc not found (apt-get install -y protobuf-compiler)")
	}
	want := protocVersionOf(t, committed)
	if got := protocVersion(t, protoc); want != "" && got != want {
		unavailable(t, fmt.Sprintf("protoc is %s, the committed code was generated with %s", got, want))
	}
	tools := plugins(t)

	out := t.TempDir()
	args := []string{"-I", ".",
		"--plugin=protoc-gen-go=" + filepath.Join(tools, "protoc-gen-go"),
		"--plugin=protoc-gen-go-grpc=" + filepath.Join(tools, "protoc-gen-go-grpc"),
		"--go_out=" + out, "--go_opt=paths=source_relative",
		// The gRPC plugin writes nothing for a file without a service
		// (onex/fleet/v1), which is what the Makefile's split amounts to.
		"--go-grpc_out=" + out, "--go-grpc_opt=paths=source_relative",
	}
	cmd := exec.Command(protoc, append(args, protos...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}

	generated := map[string]bool{}
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(out, path)
		if err != nil {
			return err
		}
		generated[rel] = true
		fresh, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		old, err := os.ReadFile(rel)
		switch {
		case os.IsNotExist(err):
			t.Errorf("%s is not committed: run `make proto`", rel)
		case err != nil:
			return err
		case !bytes.Equal(old, fresh):
			t.Errorf("%s differs from what its .proto generates (%s): run `make proto`", rel, firstDiff(old, fresh))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protos {
		if pb := strings.TrimSuffix(p, ".proto") + ".pb.go"; !generated[pb] {
			t.Errorf("%s generated no %s", p, pb)
		}
	}
	for _, c := range committed {
		if !generated[c] {
			t.Errorf("%s is generated code no .proto generates any more: delete it", c)
		}
	}
}

// sources lists the .proto files and the committed generated files, paths
// relative to this directory.
func sources(t *testing.T) (protos, generated []string) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
			return err
		case strings.HasSuffix(path, ".proto"):
			protos = append(protos, path)
		case strings.HasSuffix(path, ".pb.go"):
			generated = append(generated, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(protos)
	return protos, generated
}

// unavailable fails the test where the tools must be present (CI, `make
// test`) and skips it elsewhere.
func unavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
		t.Fatalf("cannot check the generated code: %s", why)
	}
	t.Skipf("cannot check the generated code: %s (set CI=true or ONEX_REQUIRE_INFRA=1 to make this a failure)", why)
}

var generatedProtoc = regexp.MustCompile(`(?m)^//\s+-?\s*protoc\s+(v\S+)$`)

// protocVersionOf is the protoc version the committed files were generated
// with ("" when none says): the generators write it into every file, so
// another protoc fails the comparison on every file, which says nothing
// useful.
func protocVersionOf(t *testing.T, files []string) string {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := generatedProtoc.FindSubmatch(b); m != nil {
			return string(m[1])
		}
	}
	return ""
}

// protocVersion is "v3.21.12" for protoc printing "libprotoc 3.21.12".
func protocVersion(t *testing.T, protoc string) string {
	t.Helper()
	b, err := exec.Command(protoc, "--version").Output()
	if err != nil {
		unavailable(t, fmt.Sprintf("protoc --version: %v", err))
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		unavailable(t, "protoc --version printed nothing")
	}
	return "v" + f[len(f)-1]
}

// plugins returns a directory holding protoc-gen-go and protoc-gen-go-grpc
// at the versions the Makefile pins.
func plugins(t *testing.T) string {
	t.Helper()
	goVersion, grpcVersion := pinned(t)
	local, err := filepath.Abs(filepath.Join("..", "bin", "tools"))
	if err != nil {
		t.Fatal(err)
	}
	// `protoc-gen-go --version` prints "protoc-gen-go v1.36.12",
	// protoc-gen-go-grpc "protoc-gen-go-grpc 1.6.2".
	if pluginVersion(filepath.Join(local, "protoc-gen-go")) == goVersion &&
		"v"+pluginVersion(filepath.Join(local, "protoc-gen-go-grpc")) == grpcVersion {
		return local
	}
	dir := t.TempDir()
	for _, pkg := range []string{
		"google.golang.org/protobuf/cmd/protoc-gen-go@" + goVersion,
		"google.golang.org/grpc/cmd/protoc-gen-go-grpc@" + grpcVersion,
	} {
		cmd := exec.Command("go", "install", pkg)
		// GOFLAGS cleared as the Makefile does: `go install pkg@version`
		// refuses some flags a developer may have set.
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			unavailable(t, fmt.Sprintf("go install %s: %v\n%s", pkg, err, b))
		}
	}
	return dir
}

func pluginVersion(path string) string {
	b, err := exec.Command(path, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

var pin = regexp.MustCompile(`(?m)^(PROTOC_GEN_GO_VERSION|PROTOC_GEN_GO_GRPC_VERSION)\s*\??=\s*(\S+)`)

// pinned reads the plugin versions from the Makefile, so the test and
// `make proto` cannot disagree.
func pinned(t *testing.T) (goVersion, grpcVersion string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatalf("the Makefile pins the plugin versions: %v", err)
	}
	for _, m := range pin.FindAllSubmatch(b, -1) {
		switch string(m[1]) {
		case "PROTOC_GEN_GO_VERSION":
			goVersion = string(m[2])
		case "PROTOC_GEN_GO_GRPC_VERSION":
			grpcVersion = string(m[2])
		}
	}
	if goVersion == "" || grpcVersion == "" {
		t.Fatal("Makefile: PROTOC_GEN_GO_VERSION or PROTOC_GEN_GO_GRPC_VERSION not found")
	}
	return goVersion, grpcVersion
}

// firstDiff names the first line that differs.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("committed %d lines, generated %d", len(al), len(bl))
}
