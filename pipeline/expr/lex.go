package expr

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokDot
	tokLParen
	tokRParen
	tokNot
	tokAnd
	tokOr
	tokEq
	tokNe
)

var tokNames = [...]string{
	tokEOF: "end of expression", tokIdent: "name", tokString: "string", tokNumber: "number",
	tokDot: `"."`, tokLParen: `"("`, tokRParen: `")"`, tokNot: `"!"`, tokAnd: `"&&"`,
	tokOr: `"||"`, tokEq: `"=="`, tokNe: `"!="`,
}

type token struct {
	kind tokKind
	text string // identifier, number text, or the unquoted string
	off  int    // byte offset in the whole template string
}

func (t token) String() string {
	switch t.kind {
	case tokIdent, tokNumber:
		return fmt.Sprintf("%q", t.text)
	case tokString:
		return "string " + fmt.Sprintf("%q", t.text)
	}
	return tokNames[t.kind]
}

// lex splits the body of one ${{ }} into tokens. base is the body's offset in
// the template, so that every token and error points into the user's string.
func lex(body string, base int) ([]token, error) {
	var toks []token
	i := 0
	for i < len(body) {
		c := body[i]
		off := base + i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '.':
			toks = append(toks, token{kind: tokDot, off: off})
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, off: off})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, off: off})
			i++
		case c == '!':
			if strings.HasPrefix(body[i:], "!=") {
				toks = append(toks, token{kind: tokNe, off: off})
				i += 2
			} else {
				toks = append(toks, token{kind: tokNot, off: off})
				i++
			}
		case c == '=':
			if !strings.HasPrefix(body[i:], "==") {
				return nil, &SyntaxError{Offset: off, Msg: `"=" is not an operator (use "==")`}
			}
			toks = append(toks, token{kind: tokEq, off: off})
			i += 2
		case c == '&':
			if !strings.HasPrefix(body[i:], "&&") {
				return nil, &SyntaxError{Offset: off, Msg: `"&" is not an operator (use "&&")`}
			}
			toks = append(toks, token{kind: tokAnd, off: off})
			i += 2
		case c == '|':
			if !strings.HasPrefix(body[i:], "||") {
				return nil, &SyntaxError{Offset: off, Msg: `"|" is not an operator (use "||")`}
			}
			toks = append(toks, token{kind: tokOr, off: off})
			i += 2
		case c == '\'' || c == '"':
			s, n, err := lexString(body[i:], off)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokString, text: s, off: off})
			i += n
		case c == '-' || isDigit(c):
			j := i + 1
			for j < len(body) && (isDigit(body[j]) || body[j] == '.' || body[j] == 'e' || body[j] == 'E' ||
				((body[j] == '+' || body[j] == '-') && (body[j-1] == 'e' || body[j-1] == 'E'))) {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: body[i:j], off: off})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(body) && isIdentPart(body[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: body[i:j], off: off})
			i = j
		default:
			r := []rune(body[i:])[0]
			return nil, &SyntaxError{Offset: off, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	toks = append(toks, token{kind: tokEOF, off: base + len(body)})
	return toks, nil
}

// lexString reads a quoted string at the start of s. Like GitHub Actions,
// single quotes are escaped by doubling them; double quotes are accepted too
// because YAML users reach for them.
func lexString(s string, off int) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i++
				continue
			}
			return b.String(), i + 1, nil
		}
		b.WriteByte(s[i])
	}
	return "", 0, &SyntaxError{Offset: off, Msg: "unterminated string"}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '-' }
