package state

import (
	"fmt"
	"slices"
)

// encoder turns a Run into its JSON document without re-encoding every step
// on every save: step documents are cached and only steps marked dirty are
// encoded again. A run of 10,000 steps would otherwise spend its time
// encoding unchanged steps, once per save, which grows with the square of
// the run's size.
type encoder struct {
	steps map[string][]byte
	// dirty lists the steps touched since the last record or encode, in
	// any order and repeated; a slice, since a map cleared after a
	// snapshot keeps the size of the run, and ranging over it on every
	// record cost time that grew with the run.
	dirty    []string
	allDirty bool
	// scratch is where a step is encoded before it is copied to its cache
	// entry; ids is room to sort step ids; head is the size of the run's
	// own fields when last encoded, to size the next record.
	scratch []byte
	ids     []string
	head    int
}

// stepSlack is room left after a step's cached encoding, so that it is
// overwritten in place when the step grows a little (an attempt ends).
const stepSlack = 128

func newEncoder() *encoder {
	return &encoder{steps: map[string][]byte{}, allDirty: true}
}

// touch marks one step, or with id "" every step, for re-encoding.
func (e *encoder) touch(id string) {
	switch {
	case id == "":
		e.allDirty = true
	case !e.allDirty:
		e.dirty = append(e.dirty, id)
	}
}

// refresh re-encodes the touched steps into the cache and leaves their ids
// in dirty, sorted and without repeats; record and encode clear the marks.
func (e *encoder) refresh(r *Run) error {
	if e.allDirty {
		for id := range e.steps {
			if _, ok := r.Steps[id]; !ok {
				delete(e.steps, id)
			}
		}
		for id, s := range r.Steps {
			if err := e.encodeStep(id, s); err != nil {
				return err
			}
		}
		e.allDirty = false
		clear(e.dirty)
		e.dirty = e.dirty[:0]
		return nil
	}
	slices.Sort(e.dirty)
	e.dirty = slices.Compact(e.dirty)
	for _, id := range e.dirty {
		s, ok := r.Steps[id]
		if !ok {
			delete(e.steps, id)
			continue
		}
		if err := e.encodeStep(id, s); err != nil {
			return err
		}
	}
	return nil
}

// encodeStep caches s's encoding, in the old entry's memory when it fits:
// cached bytes are only ever copied into a document.
func (e *encoder) encodeStep(id string, s *Step) error {
	b, err := s.appendJSON(e.scratch[:0])
	if err != nil {
		return fmt.Errorf("encode step %s: %w", id, err)
	}
	e.scratch = b
	old := e.steps[id]
	if cap(old) < len(b) {
		old = make([]byte, 0, len(b)+stepSlack)
	}
	e.steps[id] = append(old[:0], b...)
	return nil
}

// record returns a journal record (see Appender) of the steps touched since
// the last encode or record and of the run's own fields: what
// json.Marshal(&record{...}) gives, steps in key order, without its
// reflection and copies. The caller holds the lock that guards r and has
// checked that no whole-run change is pending (allDirty): a record cannot
// carry one.
func (e *encoder) record(r *Run) ([]byte, error) {
	if e.allDirty {
		return nil, fmt.Errorf("encode record of run %s: whole-run change pending", r.ID)
	}
	if err := e.refresh(r); err != nil {
		return nil, err
	}
	ids := e.dirty // sorted by refresh
	size := e.head + len(`{"run":,"steps":{}}`)
	for _, id := range ids {
		size += len(id) + len(`"":null,`) + len(e.steps[id])
	}

	header := *r
	header.Steps, header.Order = nil, nil
	out := make([]byte, 0, size+size/8) // slack for escapes and a longer header
	out = append(out, `{"run":`...)
	out, err := header.appendJSON(out)
	if err != nil {
		return nil, err
	}
	e.head = len(out) - len(`{"run":`)
	out = append(out, `,"steps":{`...)
	for k, id := range ids {
		if k > 0 {
			out = append(out, ',')
		}
		out = appendString(out, id)
		out = append(out, ':')
		if b, ok := e.steps[id]; ok {
			out = append(out, b...)
		} else {
			out = append(out, "null"...)
		}
	}
	clear(ids)
	e.dirty = ids[:0]
	return append(out, "}}"...), nil
}

// encode returns r's document, what json.Marshal(r) gives, from the cached
// step encodings. The caller holds the lock that guards r.
func (e *encoder) encode(r *Run) ([]byte, error) {
	if err := e.refresh(r); err != nil {
		return nil, err
	}
	clear(e.dirty)
	e.dirty = e.dirty[:0]
	ids := e.ids[:0]
	size := e.head + 256
	for id, b := range e.steps {
		if _, ok := r.Steps[id]; !ok {
			delete(e.steps, id)
			continue
		}
		ids = append(ids, id)
		size += len(id) + len(`"":,`) + len(b)
	}
	slices.Sort(ids)
	for _, id := range r.Order {
		size += len(id) + len(`"",`)
	}
	out := make([]byte, 0, size+size/16)
	out, err := r.appendJSONWith(out, func(dst []byte) []byte {
		if r.Steps == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, '{')
		for k, id := range ids {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
			dst = append(dst, ':')
			dst = append(dst, e.steps[id]...)
		}
		return append(dst, '}')
	})
	clear(ids)
	e.ids = ids[:0]
	return out, err
}
