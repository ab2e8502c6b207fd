package host

import "github.com/gpipe/gpipe/internal/shell"

// Quote returns s as one bash word that expands to exactly s (see
// shell.Quote). Every value that comes from a spec goes through Quote before
// it reaches a rendered script, so a parameter can never inject shell syntax;
// step types find it here, next to the executors that run their scripts.
func Quote(s string) string { return shell.Quote(s) }
