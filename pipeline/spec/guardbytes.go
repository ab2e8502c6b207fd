package spec

import "bytes"

// minTokens counts, in one pass over the bytes and without allocating, YAML
// tokens that src certainly has: each ": " (a mapping value), each "- " that
// starts a line's value (a sequence entry), and each "[", "{" and "," inside
// flow collections, skipping comments, quoted text and block scalars. The
// scanner builds every token of a file before anything can look at them (a
// 16 MiB mapping makes four million, seconds of work); this count refuses
// such input first. It errs low, never high (FuzzLoad checks), so a spec the
// scanner would accept is never refused by it. It returns the 1-based line at
// which the count passed limit, or 0.
func minTokens(src []byte, limit int) (line int) {
	var (
		n           int
		flow        int  // open flow collections
		quote       byte // the quote a previous line left open, or 0
		blockIndent = -1 // >= 0: inside a block scalar under a line this indented
		valueIndent = -1 // >= 0: the previous line ended in a plain value, this indented
	)
	for lineNo := 1; len(src) > 0; lineNo++ {
		var l []byte
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			l, src = src[:i], src[i+1:]
		} else {
			l, src = src, nil
		}
		if quote != 0 {
			j := closingQuote(l, -1, quote)
			if j < 0 {
				continue // the whole line is quoted text
			}
			quote = 0
			flow, n, quote = flowTokens(l[j+1:], flow, n)
			valueIndent = -1
			if n > limit {
				return lineNo
			}
			continue
		}
		body := bytes.TrimLeft(l, " ")
		indent := len(l) - len(body)
		if len(bytes.TrimSpace(body)) == 0 {
			continue
		}
		if blockIndent >= 0 {
			if indent > blockIndent {
				continue
			}
			blockIndent = -1
		}
		if body[0] == '#' {
			continue
		}
		if flow == 0 && valueIndent >= 0 && indent > valueIndent {
			continue // more indented than a plain value: it goes on ("a\n  - b" is "a - b")
		}
		before := n
		if flow == 0 && (bytes.HasPrefix(body, []byte("- ")) || bytes.Equal(bytes.TrimRight(body, " \r"), []byte("-"))) {
			n++
		}
		wasFlow := flow > 0
		flow, n, quote = flowTokens(body, flow, n)
		if n > limit {
			return lineNo
		}
		valueIndent = -1
		if flow == 0 && quote == 0 {
			switch {
			case endsWithBlockIndicator(body):
				blockIndent = indent
			case n == before && !wasFlow:
				// A bare scalar (a document that is one plain scalar, or
				// its next line): lines as indented go on with it.
				valueIndent = indent - 1
			case !endsWithColon(body):
				// The value belongs to the key after any "- ": only lines
				// indented past that key go on with it.
				valueIndent = indent + len(body) - len(trimDashes(body))
			}
		}
	}
	return 0
}

// flowTokens scans one line's text: it counts mapping values (": " or ":" at
// the end) and, inside flow collections, "[", "{" and ",", and tracks how deep
// in flow collections the line ends. A quote or bracket counts only where a
// value starts (after ": ", "- ", a flow "[", "{" or ","): elsewhere it is part
// of a plain scalar ("echo it's [x]"). Quoted text and comments are skipped;
// a quote left open is returned, its end is on a later line.
func flowTokens(l []byte, flow, n int) (int, int, byte) {
	start := true // a value may start here
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == ' ' || c == '\t' {
			continue
		}
		atStart := start
		start = false
		switch c {
		case '#':
			if i == 0 || l[i-1] == ' ' || l[i-1] == '\t' {
				return flow, n, 0
			}
		case '\'', '"':
			if !atStart {
				continue
			}
			j := closingQuote(l, i, c)
			if j < 0 {
				return flow, n, c
			}
			i = j
		case ':':
			if i+1 == len(l) || l[i+1] == ' ' || l[i+1] == '\r' {
				n++
				start = true
			}
		case '-':
			start = atStart && (i+1 == len(l) || l[i+1] == ' ')
		case '[', '{':
			if atStart {
				flow++
				n++
				start = true
			}
		case ']', '}':
			if flow > 0 {
				flow--
			}
		case ',':
			if flow > 0 {
				n++
				start = true
			}
		}
	}
	return flow, n, 0
}

// closingQuote returns the index of the quote q that closes the one at i
// (-1: a quote opened on an earlier line), or -1 when the line has none.
func closingQuote(l []byte, i int, q byte) int {
	for j := i + 1; j < len(l); j++ {
		switch {
		case q == '"' && l[j] == '\\':
			j++
		case l[j] == q && q == '\'' && j+1 < len(l) && l[j+1] == '\'':
			j++ // '' is a quote inside single quotes
		case l[j] == q:
			return j
		}
	}
	return -1
}

// endsWithBlockIndicator reports whether a line ends with "|" or ">" and
// optional indentation and chomping indicators, before an optional comment.
func endsWithBlockIndicator(l []byte) bool {
	l = trimComment(l)
	l = bytes.TrimRight(l, "+-0123456789")
	if len(l) == 0 || (l[len(l)-1] != '|' && l[len(l)-1] != '>') {
		return false
	}
	return len(l) == 1 || l[len(l)-2] == ' '
}

func endsWithColon(l []byte) bool {
	l = trimComment(l)
	return len(l) > 0 && l[len(l)-1] == ':'
}

func trimComment(l []byte) []byte {
	if i := bytes.Index(l, []byte(" #")); i >= 0 {
		l = l[:i]
	}
	return bytes.TrimRight(l, " \t\r")
}

// trimDashes strips the "- " sequence entries a line starts with.
func trimDashes(l []byte) []byte {
	for bytes.HasPrefix(l, []byte("- ")) {
		l = bytes.TrimLeft(l[2:], " ")
	}
	return l
}
