package pyjson

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrSyntax is wrapped by every error that reports input which is not
// well-formed JSON (including truncated input). The underlying
// *encoding/json.SyntaxError is wrapped too, so errors.As finds it.
var ErrSyntax = errors.New("invalid JSON")

// FieldError reports a value that is missing, has the wrong JSON type, or
// breaks a model constraint. Field is the JSON path of the value
// ("correlation_id", "metadata.trace_id", "event_bus.publish_topics[0].topic");
// an empty Field means the document as a whole. Model names the model being
// decoded ("envelope", "ModelNodeIntrospectionEvent"). Err, when non-nil, is
// the underlying cause and is returned by Unwrap.
type FieldError struct {
	Model  string
	Field  string
	Reason string
	Err    error
}

// Error renders `<model>: field "<path>": <reason>`, or `<model>: <reason>`
// when Field is empty.
func (e *FieldError) Error() string {
	model := e.Model
	if model == "" {
		model = "json"
	}
	if e.Field == "" {
		return model + ": " + e.Reason
	}
	return fmt.Sprintf("%s: field %q: %s", model, e.Field, e.Reason)
}

// Unwrap returns the underlying cause, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a *FieldError for path with a formatted reason.
func Errorf(path, format string, args ...any) *FieldError {
	return &FieldError{Field: path, Reason: fmt.Sprintf(format, args...)}
}

// At relocates err under the object key key: a *FieldError gets key
// prepended to its path (a copy is returned; err is not modified), any other
// non-nil error becomes a *FieldError at key wrapping it. At(key, nil) is nil.
func At(key string, err error) error {
	return relocate(key, err)
}

// AtIndex is At for the array element at index i (path segment "[i]").
func AtIndex(i int, err error) error {
	return relocate("["+strconv.Itoa(i)+"]", err)
}

func relocate(seg string, err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := err.(*FieldError); ok {
		c := *fe
		c.Field = joinPath(seg, fe.Field)
		return &c
	}
	return &FieldError{Field: seg, Reason: err.Error(), Err: err}
}

func joinPath(parent, child string) string {
	switch {
	case child == "":
		return parent
	case parent == "":
		return child
	case child[0] == '[':
		return parent + child
	default:
		return parent + "." + child
	}
}

// WithModel stamps model on a *FieldError whose Model is empty (returning a
// copy); other errors, and nil, are returned unchanged.
func WithModel(model string, err error) error {
	if fe, ok := err.(*FieldError); ok && fe.Model == "" {
		c := *fe
		c.Model = model
		return &c
	}
	return err
}
