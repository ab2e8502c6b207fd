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
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

// MaxSpecSize bounds the input; a 10,000-step spec is about 2 MiB.
const MaxSpecSize = 16 << 20

// ReadError says a spec file could not be read: missing, not a regular file,
// too big, or unreadable. It is the user's input that is wrong, not gpipe.
type ReadError struct {
	Path string
	Err  error
}

func (e *ReadError) Error() string { return fmt.Sprintf("read spec %s: %v", e.Path, e.Err) }
func (e *ReadError) Unwrap() error { return e.Err }

// Loader loads specs. It compiles the embedded schema on first use and keeps
// it, so a program that loads many specs (validate a.yaml b.yaml ...) compiles
// it once. The zero value is not usable; use NewLoader.
type Loader struct {
	schema func() (*compiledSchema, error)
	opts   Options
}

// NewLoader returns a Loader that knows what o adds to the spec language.
func NewLoader(o Options) *Loader {
	return &Loader{schema: sync.OnceValues(compileSchema), opts: o}
}

// Load reads and loads the spec at path.
func (l *Loader) Load(path string) (*Spec, error) { return l.LoadContext(context.Background(), path) }

// Parse loads a spec from src; file names it in error messages.
func (l *Loader) Parse(file string, src []byte) (*Spec, error) {
	return l.ParseContext(context.Background(), file, src)
}

// LoadContext reads and loads the spec at path. Only a regular file is read,
// and at most MaxSpecSize bytes of it: a spec given as /dev/zero, a FIFO or a
// directory is refused at once rather than read forever.
func (l *Loader) LoadContext(ctx context.Context, path string) (*Spec, error) {
	src, err := readSpec(path)
	if err != nil {
		return nil, &ReadError{Path: path, Err: err}
	}
	return l.ParseContext(ctx, path, src)
}

func readSpec(path string) ([]byte, error) {
	// Stat before opening: opening a FIFO blocks until a writer comes.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Stat the open file again: the path may have been swapped meanwhile.
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fileKind(fi.Mode()))
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxSpecSize {
		return nil, fmt.Errorf("more than the %d bytes (16 MiB) a spec may have", MaxSpecSize)
	}
	return src, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// utf8BOM is the byte order mark some Windows editors put first in a file.
var utf8BOM = []byte("\xef\xbb\xbf")

// Warm starts compiling the schema in the background, for a caller that
// parses a spec only after other work: resume reads the run's state and
// opens its store first, and on a second core the compile (about a tenth of
// a 1,000-step resume's CPU) then costs it no time.
func (l *Loader) Warm() { go l.schema() }

// ParseContext loads a spec from src; file names it in error messages. On
// failure the error is an Errors holding every problem found, sorted by
// position, or ctx's error when ctx ends first.
func (l *Loader) ParseContext(ctx context.Context, file string, src []byte) (*Spec, error) {
	// The first load compiles the schema (about 7 ms of CPU) while the YAML
	// is parsed: the two are independent, and on a second core the compile
	// costs a big spec no time. l.schema is called again below, which waits
	// for it; its error still comes before any error of the spec.
	go l.schema()
	// A leading BOM is not part of the text; without this the first key would
	// be "\ufeffversion".
	src = bytes.TrimPrefix(src, utf8BOM)
	s := newSource(file, src)
	errs := &errList{src: s}
	if len(src) > MaxSpecSize {
		if _, err := l.schema(); err != nil {
			return nil, err
		}
		errs.add(Pos{Line: 1, Col: 1}, "spec is %d bytes, more than the %d a spec may have", len(src), MaxSpecSize)
		return nil, errs.result()
	}
	root, err := parseYAML(ctx, src, s, errs)
	cs, schemaErr := l.schema()
	if schemaErr != nil {
		return nil, schemaErr
	}
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, errs.result()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cs.validate(&l.opts, root, errs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	spec := decode(root)
	spec.File = file
	spec.Source = src
	if root.kind == mapNode {
		if err := check(ctx, &l.opts, root, spec, errs); err != nil {
			return nil, err
		}
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
