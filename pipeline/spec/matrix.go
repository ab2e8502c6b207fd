package spec

import (
	"fmt"
	"strings"
)

// Instance is one copy of a step after matrix expansion.
type Instance struct {
	ID     string
	Matrix []KV // axis name → value, in the order the axes were written
}

// MaxMatrixCopies bounds one step's matrix: a typo like 1000 values on three
// axes must fail at load time, not fork a billion steps.
const MaxMatrixCopies = 1000

// MaxIDLength is the longest step id, the schema's maxLength for "id"; a
// matrix copy's id must fit it too, as it names the copy everywhere a step id
// does (state, logs, expressions).
const MaxIDLength = 64

// Expand returns the copies of a step. A step without a matrix is one
// Instance whose ID is the step's id. With a matrix, the copies are every
// combination of values, the first axis varying slowest, and each copy's id is
// the step id followed by "-<axis>-<value>" for every axis in the order
// written: train with matrix {fold: [0, 1]} gives train-fold-0, train-fold-1.
// Characters of a value other than letters, digits, "_" and "-" become "_"
// (lr 0.001 gives train-lr-0_001), so that copy ids stay usable in
// ${{ steps.<id>.outputs.<key> }}.
func Expand(st *Step) ([]Instance, error) {
	if len(st.Matrix) == 0 {
		return []Instance{{ID: st.ID}}, nil
	}
	total := 1
	for _, ax := range st.Matrix {
		if len(ax.Values) == 0 {
			return nil, fmt.Errorf("step %q: matrix axis %q has no values", st.ID, ax.Name)
		}
		// total <= MaxMatrixCopies here, so the product cannot overflow.
		if total*len(ax.Values) > MaxMatrixCopies {
			return nil, fmt.Errorf("step %q: matrix makes more than %d copies", st.ID, MaxMatrixCopies)
		}
		total *= len(ax.Values)
	}
	out := make([]Instance, 0, total)
	idx := make([]int, len(st.Matrix))
	for {
		var id strings.Builder
		id.WriteString(st.ID)
		kv := make([]KV, len(st.Matrix))
		for i, ax := range st.Matrix {
			v := scalarString(ax.Values[idx[i]])
			kv[i] = KV{Key: ax.Name, Value: v}
			id.WriteByte('-')
			id.WriteString(ax.Name)
			id.WriteByte('-')
			id.WriteString(idPart(v))
		}
		out = append(out, Instance{ID: id.String(), Matrix: kv})
		// Odometer increment, last axis fastest.
		i := len(idx) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(st.Matrix[i].Values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return out, nil
		}
	}
}

func idPart(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, v)
}
