// Package spec loads gpipe pipeline specs: YAML parsed with positions,
// validated against the embedded JSON Schema, then checked for what a schema
// cannot say (ids, needs, cycles, expressions, matrix copies, hosts). Every
// problem is reported at once, each as FILE:LINE:COL: message with the source
// line and a caret, so a user fixes a spec in one round.
//
// The loader works on its own YAML tree (ynode) rather than decoding into
// structs: the tree keeps a position for every key and value, which is how a
// schema error's JSON pointer is mapped back to the text the user wrote.
package spec

import (
	"fmt"
	"os"
	"sync"
)

// MaxSpecSize bounds the input; a 10,000-step spec is about 1 MiB.
const MaxSpecSize = 32 << 20

// Loader loads specs. It compiles the embedded schema on first use and keeps
// it, so a program that loads many specs (validate a.yaml b.yaml ...) compiles
// it once. The zero value is not usable; use NewLoader.
type Loader struct {
	schema func() (*compiledSchema, error)
}

// NewLoader returns a Loader.
func NewLoader() *Loader {
	return &Loader{schema: sync.OnceValues(compileSchema)}
}

// Load reads and loads the spec at path.
func Load(path string) (*Spec, error) { return NewLoader().Load(path) }

// Parse loads a spec from src; file names it in error messages.
func Parse(file string, src []byte) (*Spec, error) { return NewLoader().Parse(file, src) }

// Load reads and loads the spec at path.
func (l *Loader) Load(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if fi.Size() > MaxSpecSize {
		return nil, fmt.Errorf("read spec %s: %d bytes is more than the %d a spec may have", path, fi.Size(), MaxSpecSize)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	return l.Parse(path, src)
}

// Parse loads a spec from src; file names it in error messages. On failure
// the error is an Errors holding every problem found, sorted by position.
func (l *Loader) Parse(file string, src []byte) (*Spec, error) {
	cs, err := l.schema()
	if err != nil {
		return nil, err
	}
	s := newSource(file, src)
	errs := &errList{src: s}
	if len(src) > MaxSpecSize {
		errs.add(Pos{Line: 1, Col: 1}, "spec is %d bytes, more than the %d a spec may have", len(src), MaxSpecSize)
		return nil, errs.result()
	}
	root := parseYAML(src, s, errs)
	if root == nil {
		return nil, errs.result()
	}
	cs.validate(root, errs)
	spec := decode(root)
	spec.File = file
	spec.Source = src
	if root.kind == mapNode {
		check(root, spec, errs)
	}
	for i := range spec.Params {
		spec.Params[i].Pos.File = file
	}
	for i := range spec.Hosts {
		spec.Hosts[i].Pos.File = file
	}
	for i := range spec.Steps {
		st := &spec.Steps[i]
		st.Pos.File = file
		for k, p := range st.FieldPos {
			p.File = file
			st.FieldPos[k] = p
		}
	}
	if err := errs.result(); err != nil {
		return nil, err
	}
	return spec, nil
}
