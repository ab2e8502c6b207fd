package spec

import (
	"encoding/json"
	"strconv"
)

// shape is what decides whether a step is valid: the step without its id
// and needs, when the id is a valid identifier and needs a list of strings.
// Nothing in the step schema looks at either beyond that (a test checks), so
// steps of one shape are all valid once one is, and big generated specs,
// whose steps differ mostly in id and needs, validate each shape once. ok is
// false for a step that must be validated on its own, and then it is: its
// errors come from the full schema, as for any step.
func (cs *compiledSchema) shape(step any) (key string, ok bool) {
	m, isMap := step.(map[string]any)
	if !isMap || cs.ident.Validate(m["id"]) != nil {
		return "", false
	}
	if needs, has := m["needs"]; has {
		list, isList := needs.([]any)
		if !isList {
			return "", false
		}
		for _, n := range list {
			if _, isStr := n.(string); !isStr {
				return "", false
			}
		}
	}
	rest := make(map[string]any, len(m))
	for k, v := range m {
		if k != "id" && k != "needs" {
			rest[k] = v
		}
	}
	_, hasNeeds := m["needs"]
	b, err := json.Marshal(rest) // sorted keys: one text per shape
	if err != nil {
		return "", false
	}
	return strconv.FormatBool(hasNeeds) + string(b), true
}
