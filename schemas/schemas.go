// Package schemas holds the JSON Schema (2020-12) of a gpipe pipeline spec.
// It is embedded so that the binary validates specs, prints the schema
// (`gpipe schema`) and generates docs/spec.md without reading files at run
// time.
package schemas

import _ "embed"

//go:generate go test -run TestReferenceUpToDate -update .

//go:embed pipeline.schema.json
var pipeline []byte

// Pipeline returns a copy of the pipeline spec schema, so callers cannot
// alter the embedded bytes.
func Pipeline() []byte {
	return append([]byte(nil), pipeline...)
}
