package msd

import "github.com/gpipe/gpipe/pipeline/spec"

// PatternPhrase says, in the loader's messages, what the schema's msd-task
// pattern (the task: of fetch-msd and the UNet steps) wants.
func PatternPhrase() spec.PatternPhrase {
	return spec.PatternPhrase{Def: "msd-task",
		Phrase: `must be a task number "01" to "10" or a folder name like "Task01_BrainTumour"`}
}
