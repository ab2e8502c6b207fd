package spec

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is one problem in a spec, at a position in its file.
type Error struct {
	Pos     Pos
	Msg     string
	Excerpt string // the source line and a caret under Pos.Col; "" when unknown
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.Pos.File, e.Pos.Line, e.Pos.Col, e.Msg)
	if e.Excerpt != "" {
		s += "\n" + e.Excerpt
	}
	return s
}

// Errors is every problem found in a spec, sorted by position. Callers get it
// with errors.As(err, &errs).
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// source indexes a file's lines, to make excerpts.
type source struct {
	file  string
	lines []string
}

func newSource(file string, src []byte) *source {
	return &source{file: file, lines: strings.Split(string(src), "\n")}
}

// excerpt renders the line at p and a caret under its column:
//
//	12 |     hpus: 9
//	   |           ^
func (s *source) excerpt(p Pos) string {
	if p.Line < 1 || p.Line > len(s.lines) {
		return ""
	}
	line := strings.TrimRight(s.lines[p.Line-1], "\r")
	num := fmt.Sprintf("%5d | ", p.Line)
	var shown, pad strings.Builder
	col := 1
	for i, r := range line {
		text := escapeRune(r, line[i:])
		shown.WriteString(text)
		if col >= p.Col {
			continue
		}
		// Keep tabs so the caret lines up with what a terminal shows.
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteString(strings.Repeat(" ", utf8.RuneCountInString(text)))
		}
		col++
	}
	line = shown.String()
	for ; col < p.Col; col++ {
		pad.WriteByte(' ')
	}
	return num + line + "\n" + strings.Repeat(" ", len(num)-2) + "| " + pad.String() + "^"
}

// escapeRune returns how r, the first rune of rest, is shown in an error:
// control characters, bidirectional overrides and invalid UTF-8 escaped, so
// a spec cannot move the cursor, recolour or reorder a terminal's text
// (an ESC sequence, or "Trojan Source" bidi characters); others as they are.
// Tabs stay: they are the user's indentation.
func escapeRune(r rune, rest string) string {
	switch {
	case r == '\t':
		return "\t"
	case r == utf8.RuneError:
		if _, size := utf8.DecodeRuneInString(rest); size == 1 {
			return fmt.Sprintf(`\x%02x`, rest[0])
		}
	case r < 0x80 && unicode.IsControl(r):
		return fmt.Sprintf(`\x%02x`, r)
	case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
		return fmt.Sprintf(`\u%04x`, r)
	}
	return string(r)
}

// escapeText applies escapeRune to a whole message.
func escapeText(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r == '\t' {
			b.WriteString(`\t`)
			continue
		}
		b.WriteString(escapeRune(r, s[i:]))
	}
	return b.String()
}

// errList collects errors while a spec is checked.
type errList struct {
	src  *source
	errs Errors
}

func (l *errList) add(p Pos, format string, args ...any) {
	if p.Line < 1 {
		p.Line, p.Col = 1, 1
	}
	if p.Col < 1 {
		p.Col = 1
	}
	p.File = l.src.file
	msg := escapeText(fmt.Sprintf(format, args...))
	l.errs = append(l.errs, &Error{Pos: p, Msg: msg, Excerpt: l.src.excerpt(p)})
}

// result sorts and de-duplicates the errors; nil when there are none (never
// a typed nil inside an error interface).
func (l *errList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Msg < b.Msg
	})
	out := l.errs[:1]
	for _, e := range l.errs[1:] {
		last := out[len(out)-1]
		if e.Pos == last.Pos && e.Msg == last.Msg {
			continue
		}
		out = append(out, e)
	}
	return out
}
