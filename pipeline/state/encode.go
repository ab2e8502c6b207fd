package state

import (
	"fmt"
	"slices"
)

// encoder turns a Run into its JSON document, or a journal record, without
// re-encoding every step on every save: only steps marked dirty are encoded
// again, the others are copied from where they were last encoded. A run of
// 10,000 steps would otherwise spend its time encoding unchanged steps, once
// per snapshot.
//
// The cache holds no copies: a step's entry is a slice of the last record
// or snapshot that carried it. Documents are never written to once made
// (stores only read them), so sharing them is safe, and a record costs one
// allocation however many steps it carries. What the cache keeps alive is
// bounded by the journal's compaction: the last snapshot and the records
// after it.
type encoder struct {
	steps map[string][]byte
	// dirty lists the steps touched since the last record or encode, in
	// any order and repeated; a slice, since a map cleared after a
	// snapshot keeps the size of the run, and ranging over it on every
	// record cost time that grew with the run.
	dirty    []string
	allDirty bool
	// ids and spans are room for a document's step ids and where each
	// step's encoding lies in it; head is the size of the run's own
	// fields when last encoded and stepSize a step's in the last
	// snapshot, to size the next document.
	ids            []string
	spans          []int
	head, stepSize int
}

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

// takeDirty returns the touched steps' ids sorted and without repeats.
func (e *encoder) takeDirty() []string {
	slices.Sort(e.dirty)
	e.dirty = slices.Compact(e.dirty)
	return e.dirty
}

// clearDirty forgets the marks once a document carries them.
func (e *encoder) clearDirty() {
	clear(e.dirty)
	e.dirty = e.dirty[:0]
	e.allDirty = false
}

// appendStep appends step id of r (null when r has none) and notes where
// its encoding lies in dst.
func (e *encoder) appendStep(dst []byte, r *Run, id string) ([]byte, error) {
	start := len(dst)
	s, ok := r.Steps[id]
	if !ok {
		dst = append(dst, "null"...)
	} else {
		var err error
		if dst, err = s.appendJSON(dst); err != nil {
			return nil, fmt.Errorf("encode step %s: %w", id, err)
		}
	}
	e.spans = append(e.spans, start, len(dst))
	return dst, nil
}

// remember points the cache of steps ids at their encodings in doc (see
// appendStep); a step gone from r leaves the cache.
func (e *encoder) remember(r *Run, ids []string, doc []byte) {
	for i, id := range ids {
		if _, ok := r.Steps[id]; !ok {
			delete(e.steps, id)
			continue
		}
		// A full slice expression: nothing can append into doc.
		from, to := e.spans[2*i], e.spans[2*i+1]
		e.steps[id] = doc[from:to:to]
	}
	e.spans = e.spans[:0]
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
	ids := e.takeDirty()
	size := e.head + len(`{"run":,"steps":{}}`)
	for _, id := range ids {
		size += len(id) + len(`"":,`) + len(e.steps[id]) + 256 // the step grew
	}
	header := *r
	header.Steps, header.Order = nil, nil
	out := make([]byte, 0, size)
	out = append(out, `{"run":`...)
	out, err := header.appendJSON(out)
	if err != nil {
		return nil, err
	}
	e.head = len(out) - len(`{"run":`)
	out = append(out, `,"steps":{`...)
	e.spans = e.spans[:0]
	for k, id := range ids {
		if k > 0 {
			out = append(out, ',')
		}
		out = appendString(out, id)
		out = append(out, ':')
		if out, err = e.appendStep(out, r, id); err != nil {
			return nil, err
		}
	}
	out = append(out, "}}"...)
	e.remember(r, ids, out)
	e.clearDirty()
	return out, nil
}

// encode returns r's document, what json.Marshal(r) gives, copying the steps
// not touched since they were last encoded. The caller holds the lock that
// guards r.
func (e *encoder) encode(r *Run) ([]byte, error) {
	dirty := e.takeDirty()
	if e.allDirty {
		clear(e.steps)
	}
	// Size the document from the cache, guessing the size of a step
	// encoded afresh from the last snapshot's.
	fresh := max(e.stepSize, 200) + 128
	ids := e.ids[:0]
	size := e.head + 512
	for id := range r.Steps {
		ids = append(ids, id)
		size += len(id) + len(`"":,`)
		if b, ok := e.steps[id]; ok && !e.allDirty {
			size += len(b)
		} else {
			size += fresh
		}
	}
	slices.Sort(ids)
	size += len(dirty) * fresh
	for _, id := range r.Order {
		size += len(id) + len(`"",`)
	}
	e.spans = e.spans[:0]
	out, err := r.appendJSONWith(make([]byte, 0, size), func(dst []byte) ([]byte, error) {
		if r.Steps == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '{')
		var err error
		for k, id := range ids {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
			dst = append(dst, ':')
			// Both lists are sorted: dirty's head is the next touched step.
			for len(dirty) > 0 && dirty[0] < id {
				dirty = dirty[1:]
			}
			cached, ok := e.steps[id]
			if !ok || len(dirty) > 0 && dirty[0] == id {
				if dst, err = e.appendStep(dst, r, id); err != nil {
					return nil, err
				}
				continue
			}
			e.spans = append(e.spans, len(dst), len(dst)+len(cached))
			dst = append(dst, cached...)
		}
		return append(dst, '}'), nil
	})
	if err != nil {
		return nil, err
	}
	if r.Steps != nil {
		// Point the cache at this document, so that older ones can go.
		e.remember(r, ids, out)
	}
	if len(ids) > 0 {
		e.stepSize = (len(out) - e.head) / len(ids)
	}
	if len(e.steps) != len(ids) {
		for id := range e.steps {
			if _, ok := r.Steps[id]; !ok {
				delete(e.steps, id)
			}
		}
	}
	clear(ids)
	e.ids = ids[:0]
	e.clearDirty()
	return out, nil
}
