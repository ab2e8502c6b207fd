package cfn

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

var notNameChar = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// StackName is the default stack name of a run's provision step:
// gpipe-<run-id>-<step-id>, made of the characters CloudFormation allows
// (a letter, then letters, digits and hyphens) and at most 128 of them. A
// name that had to be shortened ends in a hash of the full one, so two long
// run ids never share a stack.
func StackName(runID, stepID string) string {
	return sanitize("gpipe-"+runID+"-"+stepID, 128)
}

// requestToken derives CreateStack's ClientRequestToken: the same for the
// same run, step and try, so an SDK retry of a lost response cannot create a
// second stack.
func requestToken(parts ...string) string {
	return sanitize("gpipe-"+strings.Join(parts, "-"), 128)
}

func sanitize(s string, max int) string {
	full := s
	s = strings.Trim(notNameChar.ReplaceAllString(s, "-"), "-")
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		s = "g-" + s
	}
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(full))
	h := hex.EncodeToString(sum[:4])
	return strings.TrimRight(s[:max-len(h)-1], "-") + "-" + h
}
