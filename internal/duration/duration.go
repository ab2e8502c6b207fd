// Package duration writes a time span the one way gpipe shows it to people:
// in messages, tables, summaries, the console and the job summary.
package duration

import (
	"strings"
	"time"
)

// Format writes d at the precision a person wants: milliseconds below a
// second, tenths below ten seconds, whole seconds above, without the zero
// units Go's String adds (2m, not 2m0s; 1h30m, not 1h30m0s). A span that
// was written in a spec (a timeout of 90m) reads back as the same length
// (1h30m). None or less is 0s.
func Format(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
