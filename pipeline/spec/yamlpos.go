package spec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// blockBody finds where a block scalar's text starts: the first non-blank
// line after its indicator, and that line's indentation.
func (c *converter) blockBody(indicatorLine int) (line, indent int) {
	for i := indicatorLine; i < len(c.src.lines); i++ { // lines[i] is line i+1
		l := c.src.lines[i]
		t := strings.TrimLeft(l, " ")
		if strings.TrimSpace(t) == "" {
			continue
		}
		return i + 1, len(l) - len(t)
	}
	return indicatorLine, 0
}

// offsetPos returns the position of byte offset off inside the string value
// of n, for errors inside expressions. It is exact for one-line plain and
// quoted scalars (without escapes) and for literal blocks, and falls back to
// the value's start otherwise.
func (n *ynode) offsetPos(off int) Pos {
	s, ok := n.val.(string)
	if !ok || off < 0 || off > len(s) {
		return n.pos
	}
	before := s[:off]
	switch n.style {
	case blockStyle:
		nl := strings.Count(before, "\n")
		last := before[strings.LastIndexByte(before, '\n')+1:]
		return Pos{Line: n.bodyLine + nl, Col: n.bodyIndent + utf8.RuneCountInString(last) + 1}
	case quotedStyle:
		if strings.Contains(before, "\n") {
			return n.pos
		}
		return Pos{Line: n.pos.Line, Col: n.pos.Col + 1 + utf8.RuneCountInString(before)}
	}
	if strings.Contains(before, "\n") {
		return n.pos
	}
	return Pos{Line: n.pos.Line, Col: n.pos.Col + utf8.RuneCountInString(before)}
}

func scalarString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}
