// Package shell quotes text for bash and POSIX sh: the one quoter behind
// rendered step scripts (steps/host.Quote) and the commands gpipe prints for
// people to paste (the summary's resume command).
package shell

import "strings"

// Quote returns s as one bash word that expands to exactly s: single-quoted
// unless it is made only of characters that need no quoting. Every value that
// comes from a spec goes through Quote before it reaches a rendered script, so a
// parameter can never inject shell syntax.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%_+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
