package chartcheck

// The Dockerfiles cannot be built here: no Docker engine exists on the
// development or CI machines. These tests check them statically and then
// replay their build step: the context .dockerignore leaves is copied to a
// temporary directory and each service is built there exactly as the
// Dockerfile's RUN line does (workspace mode, CGO_ENABLED=0), and the result
// must be a static binary, which the distroless final stage needs.

import (
	"bufio"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const finalImage = "gcr.io/distroless/static-debian12:nonroot"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
	line int
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if cur.Len() == 0 && (trim == "" || strings.HasPrefix(trim, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasPrefix(trim, "#") { // comment inside a continued instruction
			continue
		}
		if strings.HasSuffix(trim, "\\") {
			cur.WriteString(strings.TrimSuffix(trim, "\\") + " ")
			continue
		}
		cur.WriteString(trim)
		fields := strings.SplitN(cur.String(), " ", 2)
		ins := instruction{cmd: strings.ToUpper(fields[0]), line: start}
		if len(fields) == 2 {
			ins.args = strings.Join(strings.Fields(fields[1]), " ")
		}
		out = append(out, ins)
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() != 0 {
		t.Fatalf("%s ends inside a continued instruction", path)
	}
	return out
}

// workspaceModules returns the `use` directories of go.work and its go
// version.
func workspaceModules(t *testing.T, root string) (dirs []string, goVersion string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	inUse := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "go "):
			goVersion = strings.TrimSpace(strings.TrimPrefix(line, "go "))
		case line == "use (":
			inUse = true
		case inUse && line == ")":
			inUse = false
		case inUse && line != "" && !strings.HasPrefix(line, "//"):
			dirs = append(dirs, filepath.Clean(line))
		case strings.HasPrefix(line, "use ") && !strings.HasSuffix(line, "("):
			dirs = append(dirs, filepath.Clean(strings.TrimSpace(strings.TrimPrefix(line, "use "))))
		}
	}
	if len(dirs) == 0 || goVersion == "" {
		t.Fatalf("cannot read go.work: use %v, go %q", dirs, goVersion)
	}
	return dirs, goVersion
}

func dockerIgnore(t *testing.T, root string) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore at the repository root: %v", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func ignored(t *testing.T, pm *patternmatcher.PatternMatcher, rel string) bool {
	t.Helper()
	m, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDockerfiles(t *testing.T) {
	root := RepoRoot(t)
	_, goVersion := workspaceModules(t, root)
	normalized := map[string]string{}
	for _, svc := range Services {
		t.Run(svc, func(t *testing.T) {
			path := filepath.Join(root, "deploy", "docker", svc+".Dockerfile")
			ins := parseDockerfile(t, path)
			var froms []instruction
			stageOf := make([]int, len(ins)) // stage index of each instruction
			for i, in := range ins {
				if in.cmd == "FROM" {
					froms = append(froms, in)
				}
				stageOf[i] = len(froms) - 1
			}
			if len(froms) < 2 {
				t.Fatalf("want a multi-stage build, got %d FROM", len(froms))
			}
			// Builder: golang at the workspace's Go version.
			argGo := ""
			for _, in := range ins {
				if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") {
					argGo = strings.TrimPrefix(in.args, "GO_VERSION=")
				}
			}
			if argGo != goVersion {
				t.Errorf("ARG GO_VERSION=%q, go.work says go %s", argGo, goVersion)
			}
			if !regexp.MustCompile(`^golang:\$\{GO_VERSION\}(-[a-z0-9]+)? AS build$`).MatchString(froms[0].args) {
				t.Errorf("first stage %q, want golang:${GO_VERSION}[-variant] AS build", froms[0].args)
			}
			last := len(froms) - 1
			if froms[last].args != finalImage {
				t.Errorf("final stage FROM %q, want %s", froms[last].args, finalImage)
			}

			var build, entry, user string
			var copies []string
			cgo, exposes := false, ""
			for i, in := range ins {
				switch {
				case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
					build = in.args
					cgo = cgo || strings.Contains(in.args, "CGO_ENABLED=0")
				case in.cmd == "ENV" && stageOf[i] == 0:
					cgo = cgo || strings.Contains(in.args, "CGO_ENABLED=0")
				case in.cmd == "RUN" && stageOf[i] == last:
					t.Errorf("line %d: RUN in the distroless stage (it has no shell)", in.line)
				case in.cmd == "COPY" && stageOf[i] == last:
					copies = append(copies, in.args)
				case in.cmd == "ENTRYPOINT" && stageOf[i] == last:
					entry = in.args
				case in.cmd == "USER" && stageOf[i] == last:
					user = in.args
				case in.cmd == "EXPOSE":
					exposes += " " + in.args + " "
				}
			}
			if !cgo {
				t.Error("the build does not set CGO_ENABLED=0 (the final image has no libc)")
			}
			m := regexp.MustCompile(`go build .*-o (\S+) (\./services/\S+)$`).FindStringSubmatch(build)
			if m == nil {
				t.Fatalf("no `go build ... -o OUT ./services/...` RUN line (got %q)", build)
			}
			out, pkg := m[1], m[2]
			if want := "./services/" + svc + "/cmd/" + svc; pkg != want {
				t.Errorf("builds %s, want %s", pkg, want)
			}
			if !isMainPackage(t, filepath.Join(root, filepath.FromSlash(pkg))) {
				t.Errorf("%s is not a directory with a main package", pkg)
			}
			bin := "/usr/local/bin/" + svc
			foundCopy := false
			for _, c := range copies {
				foundCopy = foundCopy || c == "--from=build "+out+" "+bin
			}
			if !foundCopy {
				t.Errorf("final stage does not COPY --from=build %s %s (copies: %q)", out, bin, copies)
			}
			if entry != `["`+bin+`"]` {
				t.Errorf("ENTRYPOINT %s, want [%q] (exec form)", entry, bin)
			}
			if user != "nonroot:nonroot" && user != "65532:65532" && user != "nonroot" {
				t.Errorf("USER %q, want nonroot", user)
			}
			if !strings.Contains(exposes, " 8085 ") {
				t.Errorf("EXPOSE%s lacks the HTTP port 8085", exposes)
			}
			if svc == "projector-effect" && !strings.Contains(exposes, " 8086 ") {
				t.Errorf("EXPOSE%s lacks the gRPC port 8086", exposes)
			}

			// The four files may differ only in the service name and ports.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var keep []string
			for _, line := range strings.Split(strings.ReplaceAll(string(b), svc, "SERVICE"), "\n") {
				if !strings.HasPrefix(line, "EXPOSE ") && !strings.HasPrefix(line, "# HTTP:") {
					keep = append(keep, line)
				}
			}
			normalized[svc] = strings.Join(keep, "\n")
		})
	}
	for _, svc := range Services[1:] {
		if normalized[svc] != "" && normalized[Services[0]] != "" && normalized[svc] != normalized[Services[0]] {
			t.Errorf("deploy/docker/%s.Dockerfile drifted from %s.Dockerfile (beyond the service name and ports)", svc, Services[0])
		}
	}
}

func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && regexp.MustCompile(`(?m)^package main\b`).Match(b) {
			return true
		}
	}
	return false
}

// The build context keeps what the workspace build needs and drops the rest.
func TestDockerignore(t *testing.T) {
	root := RepoRoot(t)
	pm := dockerIgnore(t, root)
	mods, _ := workspaceModules(t, root)
	need := []string{"go.work", "go.work.sum"}
	for _, m := range mods {
		need = append(need, filepath.Join(m, "go.mod"))
	}
	for _, s := range Services {
		need = append(need, filepath.Join("services", s, "cmd", s, "main.go"))
	}
	for _, p := range need {
		if ignored(t, pm, p) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", p)
		}
	}
	for _, p := range []string{".git/HEAD", "bin/reducer", ".state/coverage.out", "deploy/helm/onex-fleet/values.yaml"} {
		if !ignored(t, pm, p) {
			t.Errorf(".dockerignore keeps %s in the build context", p)
		}
	}
}

// Each service builds from the context .dockerignore leaves, the way its
// Dockerfile's build stage does, into a static binary.
func TestDockerBuildStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the four services (-short)")
	}
	root := RepoRoot(t)
	pm := dockerIgnore(t, root)
	ctx := t.TempDir()
	if err := copyContext(root, ctx, pm); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := t.TempDir()
	for _, svc := range Services {
		t.Run(svc, func(t *testing.T) {
			build := func(dir, bin string) ([]byte, error) {
				cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./services/"+svc+"/cmd/"+svc)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false",
					"GOWORK="+filepath.Join(dir, "go.work"), "GOTOOLCHAIN=local")
				return cmd.CombinedOutput()
			}
			// A service that does not build in the repository itself is
			// `make build`'s failure to report, not the Dockerfile's.
			if b, err := build(root, filepath.Join(out, svc+".repo")); err != nil {
				t.Skipf("%s does not build in the repository either, so its image cannot be checked: %v\n%s", svc, err, b)
			}
			bin := filepath.Join(out, svc)
			if b, err := build(ctx, bin); err != nil {
				t.Fatalf("builds in the repository but not in the Docker build context (.dockerignore or Dockerfile COPY): %v\n%s", err, b)
			}
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("binary has an ELF interpreter: not static, it cannot run on distroless/static")
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("binary links %v: not static", libs)
			}
		})
	}
}

// copyContext copies root to dst, leaving out what pm excludes (as the
// Docker CLI does when it sends the build context).
func copyContext(root, dst string, pm *patternmatcher.PatternMatcher) error {
	return filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		skip, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if skip {
			if info.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			if !info.IsDir() {
				return nil
			}
		}
		target := filepath.Join(dst, rel)
		switch {
		case info.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode())
		default: // symlinks, sockets: not needed by the build
			return nil
		}
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
