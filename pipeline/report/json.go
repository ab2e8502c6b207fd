package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/gpipe/gpipe/pipeline/state"
)

// JSON writes the run's Summary as indented JSON, for `gpipe report --format
// json` and `gpipe status --json`. The field names are stable: scripts read them.
// The Mermaid text of the graph is included so that other CI systems can
// render it without gpipe.
func JSON(w io.Writer, run *state.Run, opt Options) error {
	s := Build(run, opt)
	var g jsonGraph
	var mb strings.Builder
	if err := Mermaid(&mb, s); err != nil {
		return err
	}
	g.Mermaid = mb.String()
	doc := struct {
		*Summary
		Graph jsonGraph `json:"graph"`
	}{s, g}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write json summary: %w", err)
	}
	return nil
}

type jsonGraph struct {
	Mermaid string `json:"mermaid"`
}
