package main

import (
	"errors"

	"github.com/gpipe/gpipe/pipeline/plan"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// holdsDeadlock plans a spec that declares resources, with placeholders for
// the params no one gave (as `gpipe plan` shows it), to find a resource
// limit the run could never live with (plan.HoldsDeadlockError). Any other
// planning error is left to run and plan, which know the params.
func holdsDeadlock(sp *spec.Spec) error {
	if len(sp.Resources) == 0 {
		return nil
	}
	given := secretPlaceholders(sp, map[string]string{})
	for _, prm := range sp.Params {
		if _, ok := given[prm.Name]; !ok && prm.Default == nil && prm.Type == "string" {
			given[prm.Name] = "<" + prm.Name + ">"
		}
	}
	_, err := plan.New(sp, given)
	var de *plan.HoldsDeadlockError
	if errors.As(err, &de) {
		return de
	}
	return nil
}
