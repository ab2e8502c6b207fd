// Package param decodes a step's `with:` map: the one decoder every step type
// uses, so that types coerce values, apply defaults and report mistakes alike.
//
// Values arrive after expression evaluation, so a number or a boolean may be
// a string ("${{ matrix.fold }}" → "3"): every getter accepts both. A key
// that is absent, null or the empty string is not given and gets its
// default, so an expression that evaluates to nothing means "the default".
//
// Every bad value is an *Error whose message is `<type>: with.<key>: <what
// is wrong>` and which is pipeline.Permanent: a retry would fail the same
// way. Errors accumulate, so a user sees all of them at once, and Err
// reports keys no getter asked for as unknown.
//
// The Reader also records what each getter declared (kind, default, bounds,
// allowed values): steps/params_test.go compares that with the schema, so
// the two cannot drift apart.
package param

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Error is a `with:` value a step cannot use. The schema catches most of
// these before a run starts; values that arrive through ${{ }} expressions
// are only known at run time, so the steps check again.
type Error struct {
	Type string // step type
	Key  string // with key, such as "hpus" or "move[2]"
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: with.%s: %s", e.Type, e.Key, e.Msg) }

// Permanent (pipeline.Permanent): the engine never retries a bad parameter.
func (e *Error) Permanent() bool { return true }

// Kind is the type of a parameter's value.
type Kind string

// Kinds of parameters; the names are the schema's types.
const (
	String   Kind = "string"
	Integer  Kind = "integer"
	Number   Kind = "number"
	Boolean  Kind = "boolean"
	Duration Kind = "duration" // a string such as "90m"
	List     Kind = "array"    // of strings
	Map      Kind = "object"   // of strings
)

// Decl is what a getter declared about one parameter.
type Decl struct {
	Key      string
	Kind     Kind
	Required bool
	// Default is the value used when the key is not given (a Duration's is
	// a time.Duration); nil when there is none.
	Default any
	// Min and Max are inclusive bounds; ExclusiveMin excludes Min itself.
	Min, Max     *float64
	ExclusiveMin bool
	Enum         []string // allowed values of a string
}

// Reader decodes one step's with map. It is not safe for concurrent use.
type Reader struct {
	typ   string
	with  map[string]any
	used  map[string]bool
	errs  []error
	decls []Decl
}

// New returns a Reader of a step type's with map.
func New(stepType string, with map[string]any) *Reader {
	return &Reader{typ: stepType, with: with, used: map[string]bool{}}
}

// Decode runs decode over with and returns its result, or every error.
func Decode[T any](stepType string, with map[string]any, decode func(*Reader) T) (T, error) {
	r := New(stepType, with)
	v := decode(r)
	if err := r.Err(); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Describe runs decode over with and returns what its getters declared and
// the errors Decode would return.
func Describe[T any](stepType string, with map[string]any, decode func(*Reader) T) ([]Decl, error) {
	r := New(stepType, with)
	decode(r)
	return r.Decls(), r.Err()
}

// Fail records a bad value of key.
func (r *Reader) Fail(key, format string, args ...any) {
	r.errs = append(r.errs, &Error{Type: r.typ, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Err reports keys no getter asked for, then returns every error joined
// (nil when there are none).
func (r *Reader) Err() error {
	var unknown []string
	for k := range r.with {
		if !r.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		r.Fail(k, "unknown parameter")
		r.used[k] = true // once, however often Err is called
	}
	return errors.Join(r.errs...)
}

// Decls returns the declarations of the getters called so far, in order.
func (r *Reader) Decls() []Decl { return slices.Clone(r.decls) }

func (r *Reader) declare(d Decl) *Decl {
	for i := range r.decls {
		if r.decls[i].Key == d.Key {
			r.decls[i] = d // a decoder that reads a key twice declares it once
			return &r.decls[i]
		}
	}
	r.decls = append(r.decls, d)
	return &r.decls[len(r.decls)-1]
}

// get returns key's value, or false when it is not given.
func (r *Reader) get(key string) (any, bool) {
	r.used[key] = true
	v, ok := r.with[key]
	if !ok || v == nil || v == "" {
		return nil, false
	}
	return v, true
}

// Has reports whether key is given (present, not null, not empty), for a
// decoder whose rule depends on whether a value was given or defaulted.
func (r *Reader) Has(key string) bool {
	v, ok := r.with[key]
	return ok && v != nil && v != ""
}
