package spec

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	suggestpkg "github.com/gpipe/gpipe/internal/suggest"
)

// patternPhrase says what a pattern wants. The patterns of the schema's
// shared $defs, and those the options give words to, get words; any other
// pattern is shown as is.
func (o *Options) patternPhrase(pat any, absLoc string, got string) string {
	p, _ := pat.(string)
	var want string
	phrase, domain := o.defPhrase(absLoc)
	switch {
	case strings.Contains(absLoc, "/$defs/identifier/"):
		want = `must be a name (a letter or "_", then letters, digits, "_" or "-")`
	case strings.Contains(absLoc, "/$defs/duration/"):
		want = `must be a duration such as "90s", "90m" or "1h30m"`
	case strings.Contains(absLoc, "/$defs/env/"):
		want = `must be letters, digits and "_", not starting with a digit`
	case strings.HasSuffix(absLoc, "#/properties/name/pattern"):
		want = `must be letters, digits, ".", "_" or "-", starting with a letter or digit`
	case domain:
		want = phrase
	case strings.HasPrefix(p, "^s3://"):
		want = "must be an s3:// URL"
	case strings.HasSuffix(absLoc, "/$defs/param/properties/from/pattern") && len(o.SecretSources) > 0:
		want = "must be " + o.secretUsage()
	case p == "^[0-9a-fA-F]{32}$":
		want = "must be 32 hexadecimal digits"
	default:
		want = "must match " + p
	}
	if got != "" && len(got) <= 80 {
		return want + ", not " + strconv.Quote(got)
	}
	return want
}

func typeWords(t any) string {
	words := map[string]string{
		"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
		"object": "a mapping", "array": "a list", "null": "null",
	}
	var ts []string
	switch t := t.(type) {
	case string:
		ts = []string{t}
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok {
				ts = append(ts, s)
			}
		}
	}
	var out []string
	for _, s := range ts {
		out = append(out, words[s])
	}
	return strings.Join(out, " or ")
}

func describeValue(n *ynode) string {
	switch n.kind {
	case mapNode:
		return "a mapping"
	case seqNode:
		return "a list"
	}
	switch v := n.val.(type) {
	case nil:
		return "empty"
	case string:
		return strconv.Quote(v)
	}
	return scalarString(n.val)
}

func joinValues(v any, quote bool) string {
	list, _ := v.([]any)
	parts := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok && !quote {
			parts = append(parts, s)
			continue
		}
		parts = append(parts, jsonText(x))
	}
	return strings.Join(parts, ", ")
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func plural(n, word string) string {
	if n == "1" {
		return word
	}
	return word + "s"
}

// suggest proposes the closest known field for a misspelt one.
func suggest(name string, props map[string]any) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	return suggestpkg.DidYouMean(name, keys)
}

func matchesAny(name string, patterns map[string]any) bool {
	for p := range patterns {
		if re, err := regexp.Compile(p); err == nil && re.MatchString(name) {
			return true
		}
	}
	return false
}
