package contract

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one defect of a contract.
type Problem struct {
	// File is the contract file ("" when parsed from bytes).
	File string
	// Path is the field path, e.g. error_handling.retry_policy.max_attempts,
	// intent_routing[consul.register] or state_machine.transitions[2]; ""
	// for the document as a whole.
	Path string
	// Line is the line of Path in the file, 0 when unknown (a missing field).
	Line int
	// Msg says what is wrong.
	Msg string
}

// String renders the problem as "file:line: path: msg" (parts that are
// unknown are left out).
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is returned for a contract with problems. Its message holds every
// problem on one line (the services log it as one line).
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	if len(parts) == 1 {
		return "invalid contract: " + parts[0]
	}
	return fmt.Sprintf("invalid contract (%d problems): %s", len(parts), strings.Join(parts, "; "))
}

// problems collects the problems of one contract.
type problems struct {
	c    *Contract
	list []Problem
}

// add records a problem at path; its line comes from the file's index (the
// nearest enclosing path that is present).
func (ps *problems) add(path, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.c.File, Path: path, Line: ps.c.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path, or of its nearest enclosing path present
// in the file, or 0.
func (c *Contract) lineOf(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := c.index[p]; ok {
			return l
		}
	}
	return 0
}

// parent strips the last element of a field path: "a.b[3]" -> "a.b",
// "a.b" -> "a", "a[k.x]" -> "a".
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// sortProblems orders problems by file, then line, then path, so output is
// stable and reads top to bottom.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Path < b.Path
	})
}
