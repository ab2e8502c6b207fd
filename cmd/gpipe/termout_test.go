package main

import (
	"bytes"
	"fmt"
	"testing"
)

// TestRoutedWriter: while routed (the live view is up), gpipe's stderr
// messages go to the view; before and after, to stderr.
func TestRoutedWriter(t *testing.T) {
	var real, view bytes.Buffer
	w := &routedWriter{w: &real}
	fmt.Fprint(w, "before\n")
	restore := w.route(&view)
	fmt.Fprint(w, "during\n")
	restore()
	fmt.Fprint(w, "after\n")
	if real.String() != "before\nafter\n" || view.String() != "during\n" {
		t.Errorf("stderr %q, view %q", real.String(), view.String())
	}
}
