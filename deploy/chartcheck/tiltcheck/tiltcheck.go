// Package tiltcheck executes the repository's Tiltfile with go.starlark.net
// against stub Tilt builtins and records every call, so tests can check what
// `tilt up` would declare without Tilt (which cannot be installed here).
//
// The stubs accept exactly the parameters of the real builtins (an unknown or
// misspelt keyword fails, as in Tilt) and check the rules Tilt enforces at
// load time that matter here: unique resource names, one action per probe,
// a readiness probe only with a serve_cmd, and config flags that were
// defined. Tilt's own dialect options are used (top-level control flow,
// global reassignment, while, set, recursion).
package tiltcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Call is one call of a Tilt builtin, its arguments by parameter name.
type Call struct {
	Fn   string
	Args map[string]any // Go values: string, int64, bool, nil, []any, map[string]any, *Value
	Pos  string         // Tiltfile position of the call
}

// Value is what a stub returned (probe, http_get_action, link, ...).
type Value struct {
	Kind string
	Args map[string]any
}

// Str returns a string argument ("" when absent or not a string).
func (c Call) Str(name string) string { s, _ := c.Args[name].(string); return s }

// List returns a list-of-strings argument; a single string counts as a
// one-element list (Tilt accepts both for deps and resource_deps).
func (c Call) List(name string) []string { return asStrings(c.Args[name]) }

// Obj returns a Value argument (e.g. readiness_probe), or nil.
func (c Call) Obj(name string) *Value { v, _ := c.Args[name].(*Value); return v }

func asStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Recording is everything one execution of the Tiltfile declared.
type Recording struct {
	Calls []Call
}

// Of returns the calls of one builtin, in order.
func (r *Recording) Of(fn string) []Call {
	var out []Call
	for _, c := range r.Calls {
		if c.Fn == fn {
			out = append(out, c)
		}
	}
	return out
}

// Options are the inputs of one execution.
type Options struct {
	Root       string            // repository root: cwd of the Tiltfile
	Args       map[string]string // flags after `tilt up --`, e.g. {"mode": "k8s"}
	K8sContext string            // what k8s_context() returns ("" = no cluster)
	Env        map[string]string // what os.getenv sees (nothing else leaks in)
	// Helm renders helm(...) calls; nil returns an empty YAML blob.
	Helm func(chart, name, namespace string, values, set []string) (string, error)
}

// Builtin signatures, from Tilt's API reference. A trailing "?" marks an
// optional parameter.
var signatures = map[string][]string{
	"local_resource": {"name", "cmd?", "deps?", "trigger_mode?", "resource_deps?", "ignore?", "auto_init?",
		"serve_cmd?", "cmd_bat?", "serve_cmd_bat?", "allow_parallel?", "links?", "tags?", "env?", "serve_env?",
		"readiness_probe?", "dir?", "serve_dir?", "labels?", "stdin_mode?", "serve_stdin_mode?"},
	"probe": {"initial_delay_secs?", "timeout_secs?", "period_secs?", "success_threshold?", "failure_threshold?",
		"exec?", "http_get?", "tcp_socket?"},
	"http_get_action":   {"port", "host?", "scheme?", "path?"},
	"tcp_socket_action": {"port", "host?"},
	"exec_action":       {"command"},
	"link":              {"url", "name?"},
	"port_forward":      {"local_port", "container_port?", "name?", "link_path?", "host?"},
	"docker_build": {"ref", "context", "build_args?", "dockerfile?", "dockerfile_contents?", "live_update?",
		"match_in_env_vars?", "ignore?", "only?", "entrypoint?", "target?", "ssh?", "network?", "secret?",
		"extra_tag?", "container_args?", "cache_from?", "pull?", "platform?", "env_vars?"},
	"k8s_yaml": {"yaml", "allow_duplicates?"},
	"helm":     {"paths", "name?", "namespace?", "values?", "set?", "kube_version?", "skip_crds?"},
	"k8s_resource": {"workload?", "new_name?", "port_forwards?", "extra_pod_selectors?", "trigger_mode?",
		"resource_deps?", "objects?", "auto_init?", "pod_readiness?", "links?", "labels?", "discovery_strategy?"},
	"allow_k8s_contexts":        {"contexts"},
	"k8s_context":               {},
	"local":                     {"command", "quiet?", "command_bat?", "echo_off?", "env?", "dir?", "stdin?"},
	"read_file":                 {"file_path", "default?"},
	"watch_file":                {"file_path"},
	"update_settings":           {"max_parallel_updates?", "k8s_upsert_timeout_secs?", "suppress_unused_image_warnings?"},
	"config.define_string":      {"name", "args?", "usage?"},
	"config.define_bool":        {"name", "args?", "usage?"},
	"config.define_string_list": {"name", "args?", "usage?"},
	"config.parse":              {},
	"os.getenv":                 {"key", "default?"},
	"os.getcwd":                 {},
	"os.path.exists":            {"path"},
	"os.path.join":              nil, // variadic
}

type runner struct {
	opt      Options
	rec      *Recording
	defined  map[string]string // config flag -> kind
	parsed   bool
	resource map[string]string // resource name -> declaring builtin
}

// Run executes the Tiltfile at path with opt and returns what it declared.
func Run(path string, opt Options) (*Recording, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &runner{opt: opt, rec: &Recording{}, defined: map[string]string{}, resource: map[string]string{}}
	thread := &starlark.Thread{
		Name:  "Tiltfile",
		Print: func(_ *starlark.Thread, msg string) {},
		Load: func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
			return nil, fmt.Errorf("load(%q): extensions are not available in this check; keep the Tiltfile self-contained", module)
		},
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	_, err = starlark.ExecFileOptions(opts, thread, path, src, r.predeclared())
	if err != nil {
		if ee, ok := err.(*starlark.EvalError); ok {
			return r.rec, fmt.Errorf("%s", ee.Backtrace())
		}
		return r.rec, err
	}
	if len(r.defined) > 0 && !r.parsed {
		return r.rec, fmt.Errorf("config flags defined but config.parse() never called")
	}
	return r.rec, nil
}

func (r *runner) predeclared() starlark.StringDict {
	d := starlark.StringDict{
		"struct":              starlark.NewBuiltin("struct", starlarkstruct.Make),
		"TRIGGER_MODE_AUTO":   starlark.MakeInt(0),
		"TRIGGER_MODE_MANUAL": starlark.MakeInt(1),
	}
	for _, fn := range []string{"local_resource", "probe", "http_get_action", "tcp_socket_action", "exec_action",
		"link", "port_forward", "docker_build", "k8s_yaml", "helm", "k8s_resource", "allow_k8s_contexts",
		"k8s_context", "local", "read_file", "watch_file", "update_settings"} {
		d[fn] = r.builtin(fn)
	}
	d["config"] = &starlarkstruct.Module{Name: "config", Members: starlark.StringDict{
		"define_string":      r.builtin("config.define_string"),
		"define_bool":        r.builtin("config.define_bool"),
		"define_string_list": r.builtin("config.define_string_list"),
		"parse":              r.builtin("config.parse"),
		"main_dir":           starlark.String(r.opt.Root),
		"tilt_subcommand":    starlark.String("up"),
	}}
	d["os"] = &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{
		"getenv": r.builtin("os.getenv"),
		"getcwd": r.builtin("os.getcwd"),
		"path": &starlarkstruct.Module{Name: "os.path", Members: starlark.StringDict{
			"exists": r.builtin("os.path.exists"),
			"join":   r.builtin("os.path.join"),
		}},
	}}
	return d
}

func (r *runner) builtin(fn string) *starlark.Builtin {
	short := fn[strings.LastIndex(fn, ".")+1:]
	return starlark.NewBuiltin(short, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if fn == "os.path.join" {
			parts := make([]string, len(args))
			for i, a := range args {
				s, ok := starlark.AsString(a)
				if !ok {
					return nil, fmt.Errorf("os.path.join: argument %d is not a string", i)
				}
				parts[i] = s
			}
			return starlark.String(filepath.Join(parts...)), nil
		}
		named, err := bind(fn, signatures[fn], args, kwargs)
		if err != nil {
			return nil, err
		}
		goArgs := map[string]any{}
		for k, v := range named {
			gv, err := toGo(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %v", fn, k, err)
			}
			goArgs[k] = gv
		}
		call := Call{Fn: fn, Args: goArgs, Pos: thread.CallFrame(1).Pos.String()}
		if err := r.check(call); err != nil {
			return nil, fmt.Errorf("%s: %v", fn, err)
		}
		r.rec.Calls = append(r.rec.Calls, call)
		return r.result(call, named)
	})
}

// bind maps positional and keyword arguments to parameter names the way
// Starlark/Tilt builtins do.
func bind(fn string, params []string, args starlark.Tuple, kwargs []starlark.Tuple) (map[string]starlark.Value, error) {
	names := make([]string, len(params))
	required := map[string]bool{}
	for i, p := range params {
		names[i] = strings.TrimSuffix(p, "?")
		if !strings.HasSuffix(p, "?") {
			required[names[i]] = true
		}
	}
	if len(args) > len(names) {
		return nil, fmt.Errorf("%s: got %d positional arguments, want at most %d", fn, len(args), len(names))
	}
	out := map[string]starlark.Value{}
	for i, a := range args {
		out[names[i]] = a
	}
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		known := false
		for _, n := range names {
			known = known || n == k
		}
		if !known {
			return nil, fmt.Errorf("%s: unexpected keyword argument %q", fn, k)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: got multiple values for %q", fn, k)
		}
		out[k] = kv[1]
	}
	for n := range required {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s: missing argument %q", fn, n)
		}
	}
	return out, nil
}

func toGo(v starlark.Value) (any, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		return string(v), nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf("integer out of range")
		}
		return n, nil
	case *starlark.List:
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			x, err := toGo(v.Index(i))
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case starlark.Tuple:
		out := []any{}
		for _, x := range v {
			g, err := toGo(x)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	case *starlark.Dict:
		out := map[string]any{}
		for _, item := range v.Items() {
			k, ok := starlark.AsString(item[0])
			if !ok {
				return nil, fmt.Errorf("dict key %s is not a string", item[0])
			}
			g, err := toGo(item[1])
			if err != nil {
				return nil, err
			}
			out[k] = g
		}
		return out, nil
	case *tiltValue:
		return v.v, nil
	}
	return nil, fmt.Errorf("unsupported value %s (%s)", v, v.Type())
}

// tiltValue is an opaque value returned by a stub (a probe, a link, ...).
type tiltValue struct{ v *Value }

func (t *tiltValue) String() string        { return t.v.Kind + "(...)" }
func (t *tiltValue) Type() string          { return t.v.Kind }
func (t *tiltValue) Freeze()               {}
func (t *tiltValue) Truth() starlark.Bool  { return true }
func (t *tiltValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", t.v.Kind) }

func (r *runner) check(c Call) error {
	resourceName := func(name string) error {
		if name == "" {
			return fmt.Errorf("empty resource name")
		}
		if prev, dup := r.resource[name]; dup {
			return fmt.Errorf("resource %q already declared by %s", name, prev)
		}
		r.resource[name] = c.Fn
		return nil
	}
	switch c.Fn {
	case "local_resource":
		hasCmd, hasServe := nonEmpty(c.List("cmd")), nonEmpty(c.List("serve_cmd"))
		if !hasCmd && !hasServe {
			return fmt.Errorf("%q has neither cmd nor serve_cmd", c.Str("name"))
		}
		if c.Args["readiness_probe"] != nil {
			p := c.Obj("readiness_probe")
			if p == nil || p.Kind != "probe" {
				return fmt.Errorf("readiness_probe must be a probe()")
			}
			if !hasServe {
				// Tilt only warns and drops the probe: a silent no-op here.
				return fmt.Errorf("%q: readiness_probe applies only to a serve_cmd (Tilt ignores it)", c.Str("name"))
			}
		}
		return resourceName(c.Str("name"))
	case "k8s_resource":
		switch c.Str("pod_readiness") {
		case "", "wait", "ignore":
		default:
			return fmt.Errorf("pod_readiness %q must be wait or ignore", c.Str("pod_readiness"))
		}
		name := c.Str("new_name")
		if name == "" {
			name = c.Str("workload")
		}
		return resourceName(name)
	case "probe":
		n := 0
		for _, k := range []string{"exec", "http_get", "tcp_socket"} {
			if v, ok := c.Args[k].(*Value); ok && v != nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("a probe needs exactly one of exec, http_get, tcp_socket (got %d)", n)
		}
	case "http_get_action", "tcp_socket_action":
		if p, ok := c.Args["port"].(int64); !ok || p < 1 || p > 65535 {
			return fmt.Errorf("port %v is not a port number", c.Args["port"])
		}
	case "exec_action":
		if len(c.List("command")) == 0 {
			return fmt.Errorf("command must be a non-empty list of strings")
		}
	case "config.define_string", "config.define_bool", "config.define_string_list":
		if r.parsed {
			return fmt.Errorf("flag %q defined after config.parse()", c.Str("name"))
		}
		r.defined[c.Str("name")] = c.Fn
	case "config.parse":
		for k := range r.opt.Args {
			if _, ok := r.defined[k]; !ok {
				return fmt.Errorf("flag --%s is not defined (config.define_*)", k)
			}
		}
		r.parsed = true
	}
	return nil
}

func (r *runner) result(c Call, named map[string]starlark.Value) (starlark.Value, error) {
	switch c.Fn {
	case "probe", "http_get_action", "tcp_socket_action", "exec_action", "link", "port_forward":
		return &tiltValue{&Value{Kind: c.Fn, Args: c.Args}}, nil
	case "k8s_context":
		return starlark.String(r.opt.K8sContext), nil
	case "config.parse":
		d := starlark.NewDict(len(r.opt.Args))
		keys := make([]string, 0, len(r.opt.Args))
		for k := range r.opt.Args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := d.SetKey(starlark.String(k), starlark.String(r.opt.Args[k])); err != nil {
				return nil, err
			}
		}
		return d, nil
	case "os.getenv":
		if v, ok := r.opt.Env[c.Str("key")]; ok {
			return starlark.String(v), nil
		}
		if d, ok := named["default"]; ok {
			return d, nil
		}
		return starlark.None, nil
	case "os.getcwd":
		return starlark.String(r.opt.Root), nil
	case "os.path.exists":
		_, err := os.Stat(r.abs(c.Str("path")))
		return starlark.Bool(err == nil), nil
	case "read_file":
		b, err := os.ReadFile(r.abs(c.Str("file_path")))
		if err != nil {
			if d, ok := named["default"]; ok {
				return d, nil
			}
			return nil, err
		}
		return starlark.String(b), nil
	case "local":
		return starlark.String(""), nil
	case "helm":
		if r.opt.Helm == nil {
			return starlark.String(""), nil
		}
		out, err := r.opt.Helm(firstString(c.Args["paths"]), c.Str("name"), c.Str("namespace"), c.List("values"), c.List("set"))
		if err != nil {
			return nil, err
		}
		return starlark.String(out), nil
	}
	return starlark.None, nil
}

func nonEmpty(list []string) bool {
	for _, s := range list {
		if strings.TrimSpace(s) != "" {
			return true
		}
	}
	return false
}

func firstString(v any) string {
	if s := asStrings(v); len(s) > 0 {
		return s[0]
	}
	return ""
}

func (r *runner) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.opt.Root, p)
}
