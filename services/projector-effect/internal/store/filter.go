package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Filter selects rows for List. Zero fields match everything; the fields
// combine with AND, and a list matches the nodes that carry every one of
// its values (capability_tags @> $n::text[]), so an empty list matches all.
//
// The field names in Validate's errors are the columns', which are also the
// registry API's request fields.
type Filter struct {
	State    string
	NodeType string
	// Capability matches a capability tag (capability_tags) or a capability
	// the node declares as true in its capabilities object.
	Capability     string
	CapabilityTags []string
	Protocols      []string
	IntentTypes    []string
	ContractType   string
}

// Bounds of a filter: a list of more values, or a longer value, is not a
// query anybody means, and would make one statement cost what a client
// chooses.
const (
	MaxFilterValues   = 32
	MaxFilterValueLen = 256
)

// ContractTypes are the values the table allows in contract_type
// (constraint valid_contract_type).
var ContractTypes = []string{"effect", "compute", "reducer", "orchestrator", "unknown"}

var registrationStates = []string{
	"pending_registration", "accepted", "awaiting_ack", "rejected",
	"ack_timed_out", "ack_received", "active", "liveness_expired",
}

// Validate reports the first value of f that List does not take, naming
// its field: an unknown state or contract type, an empty or over-long
// value, a list of more than MaxFilterValues.
func (f Filter) Validate() error {
	if f.State != "" && !slices.Contains(registrationStates, f.State) {
		return fmt.Errorf("state: %q is not a registration state", f.State)
	}
	for _, v := range []struct{ field, value string }{{"node_type", f.NodeType}, {"capability", f.Capability}} {
		if utf8.RuneCountInString(v.value) > MaxFilterValueLen {
			return fmt.Errorf("%s: longer than %d characters", v.field, MaxFilterValueLen)
		}
	}
	if f.ContractType != "" && !slices.Contains(ContractTypes, f.ContractType) {
		return fmt.Errorf("contract_type: %q is not one of %s", f.ContractType, strings.Join(ContractTypes, ", "))
	}
	for _, l := range []struct {
		field  string
		values []string
	}{{"capability_tags", f.CapabilityTags}, {"protocols", f.Protocols}, {"intent_types", f.IntentTypes}} {
		if len(l.values) > MaxFilterValues {
			return fmt.Errorf("%s: at most %d values, got %d", l.field, MaxFilterValues, len(l.values))
		}
		for i, v := range l.values {
			switch {
			case strings.TrimSpace(v) == "":
				return fmt.Errorf("%s[%d]: empty value", l.field, i)
			case utf8.RuneCountInString(v) > MaxFilterValueLen:
				return fmt.Errorf("%s[%d]: longer than %d characters", l.field, i, MaxFilterValueLen)
			}
		}
	}
	return nil
}

// Normalized returns f with every list sorted and without repeats: a filter
// that selects the same rows, in one canonical form.
func (f Filter) Normalized() Filter {
	norm := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		s = slices.Clone(s)
		slices.Sort(s)
		return slices.Compact(s)
	}
	f.CapabilityTags, f.Protocols, f.IntentTypes = norm(f.CapabilityTags), norm(f.Protocols), norm(f.IntentTypes)
	return f
}

// conditions returns the WHERE conditions of f's non-empty fields, their
// arguments appended to args. Only the fields that filter get a condition,
// so every condition is a plain indexable predicate (the GIN indexes on
// the arrays, the btree ones on state and contract type) even in a generic
// plan, where an "empty or contains" form ("cardinality($n) = 0 OR …")
// would hide the index.
func (f Filter) conditions(args []any) ([]string, []any) {
	var conds []string
	// add appends a condition whose "$?" placeholders take vs in order.
	add := func(cond string, vs ...any) {
		for _, v := range vs {
			args = append(args, v)
			cond = strings.Replace(cond, "$?", "$"+strconv.Itoa(len(args)), 1)
		}
		conds = append(conds, cond)
	}
	if f.State != "" {
		add("current_state = $?::registration_state", f.State)
	}
	if f.NodeType != "" {
		add("node_type = $?", f.NodeType)
	}
	if f.Capability != "" {
		// Both sides as parameters, so that each can use its GIN index
		// (jsonb_build_object of a parameter cannot).
		declared, _ := json.Marshal(map[string]bool{f.Capability: true})
		add("(capability_tags @> $?::text[] OR capabilities @> $?::jsonb)", []string{f.Capability}, string(declared))
	}
	if len(f.CapabilityTags) > 0 {
		add("capability_tags @> $?::text[]", f.CapabilityTags)
	}
	if len(f.Protocols) > 0 {
		add("protocols @> $?::text[]", f.Protocols)
	}
	if len(f.IntentTypes) > 0 {
		add("intent_types @> $?::text[]", f.IntentTypes)
	}
	if f.ContractType != "" {
		add("contract_type = $?", f.ContractType)
	}
	return conds, args
}
