package expr

import (
	"errors"
	"testing"
)

// FuzzParse: no input may panic, and a syntax error's offset must lie inside
// the string, since the spec loader turns it into a column.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "x", "${{ params.a }}", "a ${{ steps.b.outputs.c || 'd' }} e", "${{ !(a == 'b') && c != 1.5 }}",
		"${{ 'it''s' }}", "${{", "${{ }}", "always() && failure()", "${{ cancelled() }}", "${{ run.id }}${{ env.X }}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(err error) {
			var se *SyntaxError
			if errors.As(err, &se) && (se.Offset < 0 || se.Offset > len(s)) {
				t.Fatalf("offset %d outside %q", se.Offset, s)
			}
		}
		tpl, err := Parse(s)
		check(err)
		if err == nil {
			_, _ = tpl.Eval(&Scope{})
			_ = tpl.Refs()
		}
		c, err := ParseCondition(s)
		check(err)
		if err == nil {
			_, _ = c.Eval(nil, Status{Failed: true})
		}
	})
}
