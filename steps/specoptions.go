package steps

import (
	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/msd"
)

// SpecOptions are what the step types and host kinds add to the spec
// language, for the loader (spec.NewLoader): the SSM host's address scheme,
// the secret sources the AWS steps read, and the MSD task pattern's words.
func SpecOptions() spec.Options {
	return spec.Options{
		HostSchemes:    []spec.Scheme{aws.HostScheme()},
		SecretSources:  aws.SecretSources(),
		PatternPhrases: []spec.PatternPhrase{msd.PatternPhrase()},
	}
}
