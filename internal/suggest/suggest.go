// Package suggest finds the known name a user probably meant, for the
// "did you mean" hints of the spec checker and the command line alike.
package suggest

import (
	"fmt"
	"slices"
)

// maxCandidates keeps huge inputs fast: beyond it no suggestion is made and
// the error's position or list says enough.
const maxCandidates = 1000

// Closest returns the candidate nearest to name by edit distance, or "" when
// none is near enough. Short names are close to everything, so for a name of
// four bytes or fewer only one edit is allowed, otherwise two. Ties go to the
// candidate that sorts first, so the answer does not depend on input order.
func Closest(name string, candidates []string) string {
	if len(candidates) > maxCandidates {
		return ""
	}
	sorted := slices.Clone(candidates)
	slices.Sort(sorted)
	best, bestD := "", 3
	if len(name) <= 4 {
		bestD = 2
	}
	for _, c := range sorted {
		if c == name {
			continue
		}
		if d := Distance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// DidYouMean is Closest as the tail of an error message:
// ` (did you mean "run"?)`, or "" when nothing is near.
func DidYouMean(name string, candidates []string) string {
	best := Closest(name, candidates)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// Distance is the optimal string alignment distance between a and b in
// bytes: insertions, deletions, substitutions and swaps of two neighbours each
// cost one, so the typo "rnu" is one edit from "run". Names longer than 64
// bytes are never near anything (and cost nothing to compare).
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	// Three rows: the swap looks two rows back.
	pp := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}
