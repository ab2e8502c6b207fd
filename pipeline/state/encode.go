package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// encoder turns a Run into its JSON document without re-encoding every step
// on every save: step documents are cached and only steps marked dirty are
// encoded again. A run of 10,000 steps would otherwise spend its time
// encoding unchanged steps, once per save, which grows with the square of
// the run's size.
type encoder struct {
	steps    map[string][]byte
	dirty    map[string]bool
	allDirty bool
}

func newEncoder() *encoder {
	return &encoder{steps: map[string][]byte{}, dirty: map[string]bool{}, allDirty: true}
}

// touch marks one step, or with id "" every step, for re-encoding.
func (e *encoder) touch(id string) {
	if id == "" {
		e.allDirty = true
		return
	}
	e.dirty[id] = true
}

// refresh re-encodes the dirty steps into the cache and clears the marks.
func (e *encoder) refresh(r *Run) error {
	if e.allDirty {
		clear(e.steps)
		for id := range r.Steps {
			e.dirty[id] = true
		}
		e.allDirty = false
	}
	for id := range e.dirty {
		s, ok := r.Steps[id]
		if !ok {
			delete(e.steps, id)
			continue
		}
		b, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("encode step %s: %w", id, err)
		}
		e.steps[id] = b
	}
	return nil
}

// record returns a journal record (see Appender) of the steps touched since
// the last encode or record and of the run's own fields. The caller holds
// the lock that guards r and has checked that no whole-run change is pending
// (allDirty): a record cannot carry one.
func (e *encoder) record(r *Run) ([]byte, error) {
	if e.allDirty {
		return nil, fmt.Errorf("encode record of run %s: whole-run change pending", r.ID)
	}
	if err := e.refresh(r); err != nil {
		return nil, err
	}
	x := record{Steps: make(map[string]json.RawMessage, len(e.dirty))}
	for id := range e.dirty {
		if b, ok := e.steps[id]; ok {
			x.Steps[id] = b
		} else {
			x.Steps[id] = json.RawMessage("null")
		}
	}
	clear(e.dirty)
	header := *r
	header.Steps, header.Order = nil, nil
	var err error
	if x.Run, err = json.Marshal(&header); err != nil {
		return nil, err
	}
	return json.Marshal(&x)
}

// encode returns r's document. The caller holds the lock that guards r.
func (e *encoder) encode(r *Run) ([]byte, error) {
	if err := e.refresh(r); err != nil {
		return nil, err
	}
	clear(e.dirty)
	for id := range e.steps {
		if _, ok := r.Steps[id]; !ok {
			delete(e.steps, id)
		}
	}

	header := *r
	header.Steps = nil
	head, err := json.Marshal(&header)
	if err != nil {
		return nil, err
	}
	// The header encodes the nil map as "steps":null; splice the cached step
	// documents in its place. Keys and strings are escaped by encoding/json,
	// so this byte sequence can only be the field itself.
	const hole = `"steps":null`
	i := bytes.Index(head, []byte(hole))
	if i < 0 {
		return nil, fmt.Errorf("encode run %s: no steps field in header", r.ID)
	}
	ids := make([]string, 0, len(e.steps))
	size := len(head)
	for id, b := range e.steps {
		ids = append(ids, id)
		size += len(b) + len(id) + 8
	}
	sort.Strings(ids)
	out := make([]byte, 0, size)
	out = append(out, head[:i]...)
	out = append(out, `"steps":{`...)
	for k, id := range ids {
		if k > 0 {
			out = append(out, ',')
		}
		key, _ := json.Marshal(id)
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, e.steps[id]...)
	}
	out = append(out, '}')
	out = append(out, head[i+len(hole):]...)
	return out, nil
}
