package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"
)

// Digest is the sha256 (hex) of the bytes the spec was loaded from.
func (s *Spec) Digest() string {
	sum := sha256.Sum256(s.Source)
	return hex.EncodeToString(sum[:])
}

// stepDef is what StepDigest hashes: the step's meaning, without positions,
// with needs sorted and env as a map, so that reordering or reformatting the
// YAML does not count as a change.
type stepDef struct {
	ID      string            `json:"id"`
	Type    string            `json:"type"`
	Needs   []string          `json:"needs"`
	With    map[string]any    `json:"with"`
	If      string            `json:"if"`
	Retry   Retry             `json:"retry"`
	Timeout time.Duration     `json:"timeout"`
	Env     map[string]string `json:"env"`
	Matrix  []MatrixAxis      `json:"matrix"`
	Host    string            `json:"host"`
}

// StepDigest returns the sha256 (hex) of a step's definition. It is stable
// across key order and formatting, and changes when anything that affects
// what the step does changes, so that resume --spec knows which steps to
// rerun. It covers the step only: a change of the pipeline's env or of a
// host declaration is not seen here.
func StepDigest(st *Step) string {
	d := stepDef{
		ID: st.ID, Type: st.Type, With: st.With, If: st.If, Retry: st.Retry,
		Timeout: st.Timeout, Matrix: st.Matrix, Host: st.Host,
		Needs: append([]string(nil), st.Needs...),
		Env:   make(map[string]string, len(st.Env)),
	}
	sort.Strings(d.Needs)
	for _, kv := range st.Env {
		d.Env[kv.Key] = kv.Value
	}
	b, err := json.Marshal(d)
	if err != nil {
		// With holds only what the YAML decoder produced (maps, slices,
		// scalars), which always marshals; fall back to a digest that still
		// changes with the id rather than failing a resume.
		b = []byte(st.ID + "\x00" + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
