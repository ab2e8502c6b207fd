package plan

import "github.com/gpipe/gpipe/pipeline/spec"

// PairedCopies returns the copies of spec step target that step s pairs
// with, by the rule needs follow: those that agree on every matrix axis they
// share with s, or all copies when none does.
func (p *Plan) PairedCopies(s *Step, target string) []string {
	ids := p.instances[target]
	var out []string
	for _, id := range ids {
		if sameSharedAxes(s.Matrix, p.byID[id].Matrix) {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return ids
	}
	return out
}

// PairedCopy returns the one copy of the matrix step specID that a step
// with matrix values m pairs with (it agrees on every axis they share), so
// that `steps.provision.outputs.host` in train-fold-2 reads
// provision-fold-2. ok is false when specID names no matrix step or the
// pairing is not to exactly one copy.
func (p *Plan) PairedCopy(specID string, m []spec.KV) (id string, ok bool) {
	ids := p.instances[specID]
	if len(ids) == 0 || len(p.byID[ids[0]].Matrix) == 0 {
		return "", false
	}
	for _, c := range ids {
		if sameSharedAxes(m, p.byID[c].Matrix) {
			if id != "" {
				return "", false
			}
			id = c
		}
	}
	return id, id != ""
}
