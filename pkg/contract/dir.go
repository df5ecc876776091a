package contract

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// ValidateDir checks every <dir>/<service>/contract.yaml: each on its own,
// each against expects[service] when the map has it (a service in expects
// without a contract is a problem), and the contracts together:
//
//   - every emitted intent type has a route in some contract's
//     intent_routing, and no two contracts route it differently;
//   - every route reaches a contract that subscribes to the route's topic
//     and lists the intent type in handled_intents;
//   - every handled intent type is routed to a topic its handler subscribes.
//
// It returns every problem, sorted by file and line; none means the
// directory is good. The error is for a directory that cannot be read.
func ValidateDir(dir string, expects map[string]Expect) ([]Problem, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", FileName))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("contracts directory: %w", err)
	}
	sort.Strings(files)
	var out []Problem
	var good []*Contract
	found := map[string]bool{}
	for _, f := range files {
		service := filepath.Base(filepath.Dir(f))
		found[service] = true
		c, err := ReadFile(f)
		var cerr *Error
		if errors.As(err, &cerr) {
			out = append(out, cerr.Problems...)
			continue
		}
		ps := &problems{c: c}
		validate(c, ps)
		if e, ok := expects[service]; ok {
			expect(c, e, ps)
		}
		out = append(out, ps.list...)
		good = append(good, c)
	}
	for _, s := range sortedKeys(expects) {
		if !found[s] {
			out = append(out, Problem{File: Path(dir, s), Msg: "missing: service " + s + " has no contract"})
		}
	}
	out = append(out, crossCheck(good)...)
	sortProblems(out)
	return out, nil
}

// crossCheck finds problems that span contracts.
func crossCheck(cs []*Contract) []Problem {
	var out []Problem
	at := func(c *Contract, path, format string, args ...any) {
		out = append(out, Problem{File: c.File, Path: path, Line: c.lineOf(path), Msg: fmt.Sprintf(format, args...)})
	}
	type route struct {
		c     *Contract
		topic string
	}
	routes := map[string][]route{}
	for _, c := range cs {
		for it, t := range c.IntentRouting {
			routes[it] = append(routes[it], route{c, t})
		}
	}
	for _, rs := range routes {
		sort.Slice(rs, func(i, j int) bool { return rs[i].c.File < rs[j].c.File })
	}
	for _, c := range cs {
		for i, it := range c.EmittedIntents {
			rs := routes[it]
			path := fmt.Sprintf("emitted_intents[%d]", i)
			if len(rs) == 0 {
				at(c, path, "intent type %q has no route in any contract's intent_routing", it)
			}
			for _, r := range rs[min(1, len(rs)):] {
				if r.topic != rs[0].topic {
					at(c, path, "intent type %q is routed to %q by %s and to %q by %s", it, rs[0].topic, rs[0].c.File, r.topic, r.c.File)
				}
			}
		}
	}
	for _, c := range cs {
		for _, it := range sortedKeys(c.IntentRouting) {
			t := c.IntentRouting[it]
			ok := slices.ContainsFunc(cs, func(h *Contract) bool {
				return slices.Contains(h.Subscribe(), t) && slices.Contains(h.HandledIntents, it)
			})
			if !ok {
				at(c, "intent_routing["+it+"]", "no contract subscribes to %q and handles %q", t, it)
			}
		}
		for i, it := range c.HandledIntents {
			ok := slices.ContainsFunc(routes[it], func(r route) bool { return slices.Contains(c.Subscribe(), r.topic) })
			if !ok {
				at(c, fmt.Sprintf("handled_intents[%d]", i), "no contract routes %q to a topic this service subscribes to", it)
			}
		}
	}
	return out
}
