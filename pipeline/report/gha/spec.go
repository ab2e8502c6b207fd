package gha

import (
	"io"

	"github.com/gpipe/gpipe/pipeline/secret"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// SpecErrors writes every spec error as an ::error:: annotation at its place
// in the spec, so `gpipe validate` in a pull request marks the lines. The
// excerpt is left out: github.com shows the annotation on the line itself.
func SpecErrors(w io.Writer, errs spec.Errors, paths Paths) error {
	return specAnnotations(w, errs, paths, "error", "gpipe: invalid spec")
}

// SpecWarnings writes spec warnings (spec.Spec.Warnings) as ::warning::
// annotations.
func SpecWarnings(w io.Writer, warns spec.Errors, paths Paths) error {
	return specAnnotations(w, warns, paths, "warning", "gpipe: unsafe spec")
}

func specAnnotations(w io.Writer, errs spec.Errors, paths Paths, level, title string) error {
	for _, e := range errs {
		a := Annotation{
			Level: level,
			File:  paths.Rel(e.Pos.File),
			Line:  e.Pos.Line,
			Col:   e.Pos.Col,
			Title: title,
			Msg:   e.Msg,
		}
		if err := WriteAnnotation(w, a); err != nil {
			return err
		}
	}
	return nil
}

// SecretValues returns the values of the params a spec declares secret, for
// Masks. params are the resolved values (defaults included).
func SecretValues(s *spec.Spec, params map[string]string) []string {
	return secret.Values(s, params)
}
