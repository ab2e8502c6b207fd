// Package secret keeps the values of `secret: true` params out of everything
// gpipe stores or prints, and finds those values again when a run resumes
// without them.
//
// A Masker replaces every occurrence of a secret value with "***", as GitHub
// Actions does with registered secrets; a Writer does so on a stream, line by
// line, so a value split across two writes is still masked. Gather fills in
// secret params from -p, the environment (GPIPE_SECRET_<NAME>) and a spec's
// `from:` reference, read through a Resolver (the AWS one lives in steps/aws:
// nothing under pipeline imports the AWS SDK).
package secret

import (
	"encoding/json"
	"sort"
	"strings"
)

// Mask is what a secret value is replaced with.
const Mask = "***"

// minLineLen is the shortest line of a multi-line value that is masked on its
// own: masking each line of a PEM key is what keeps it out of a log that
// prints it line by line, but a line of "}" or "--" would mask half the log.
const minLineLen = 4

// Masker replaces secret values in text. The zero value and nil mask nothing.
type Masker struct {
	values []string // longest first, so a value that contains another wins
	repl   *strings.Replacer
	maxLen int
}

// NewMasker returns a Masker for values. Besides each value it masks the
// value as JSON would escape it (a report or an output that quotes it) and,
// for a multi-line value, each of its lines of at least minLineLen bytes,
// since logs are masked line by line. Empty values are ignored.
func NewMasker(values ...string) *Masker {
	seen := map[string]bool{}
	var vs []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		add(v)
		if b, err := json.Marshal(v); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if len(strings.TrimSpace(line)) >= minLineLen {
					add(line)
				}
			}
		}
	}
	if len(vs) == 0 {
		return &Masker{}
	}
	sort.SliceStable(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, Mask)
	}
	return &Masker{values: vs, repl: strings.NewReplacer(pairs...), maxLen: len(vs[0])}
}

// Empty reports whether m masks nothing.
func (m *Masker) Empty() bool { return m == nil || len(m.values) == 0 }

// String returns s with every secret value replaced by Mask.
func (m *Masker) String(s string) string {
	if m.Empty() {
		return s
	}
	return m.repl.Replace(s)
}

// Map returns a copy of kv with the values masked (keys too: an output named
// after a secret is as telling as its value). A nil map stays nil.
func (m *Masker) Map(kv map[string]string) map[string]string {
	if m.Empty() || kv == nil {
		return kv
	}
	out := make(map[string]string, len(kv))
	for k, v := range kv {
		out[m.String(k)] = m.String(v)
	}
	return out
}

// Error returns err with its message masked. The result still unwraps to err,
// so errors.Is and errors.As see through it; only its text changes. nil stays
// nil, and an error whose text holds no secret is returned as it is.
func (m *Masker) Error(err error) error {
	if err == nil || m.Empty() {
		return err
	}
	msg := err.Error()
	if masked := m.String(msg); masked != msg {
		return &maskedError{msg: masked, err: err}
	}
	return err
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// safeCut returns how much of buf can be masked and released now, when more
// may follow: nothing that could be the start of a secret completed by the
// next write. Any occurrence starting before len(buf)-(maxLen-1) ends inside
// buf; one that starts there but runs past the cut moves the cut back to its
// start.
func (m *Masker) safeCut(buf string) int {
	cut := len(buf) - (m.maxLen - 1)
	if cut <= 0 {
		return 0
	}
	for moved := true; moved; {
		moved = false
		for _, v := range m.values {
			// The only occurrences that straddle the cut start in
			// [cut-len(v)+1, cut).
			from := max(0, cut-len(v)+1)
			if i := strings.Index(buf[from:min(len(buf), cut+len(v)-1)], v); i >= 0 && from+i < cut {
				cut = from + i
				moved = true
			}
		}
	}
	return cut
}
