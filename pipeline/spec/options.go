package spec

import "strings"

// Options tell a Loader what the step types and host kinds gpipe is built
// with add to the spec language: the address schemes of remote hosts, where a
// secret param's from: may point, and words for the schema patterns of their
// fields. The core knows none of them (the command wires them up, see
// steps.SpecOptions); the zero value knows only local hosts, and shows a
// pattern it has no words for as the pattern itself.
type Options struct {
	// HostSchemes are the address prefixes a step's host: may use without a
	// declared host, such as a remote host kind's "ssm:".
	HostSchemes []Scheme
	// SecretSources are the prefixes of a secret param's from:, in the order
	// an error message names them.
	SecretSources []Scheme
	// PatternPhrases give words to the patterns of the schema's named
	// definitions ($defs) that belong to a step type.
	PatternPhrases []PatternPhrase
}

// Scheme is one address prefix and how a message shows its use.
type Scheme struct {
	Prefix string // "ssm:"
	Usage  string // "ssm:<instance id>"
}

// PatternPhrase says what the pattern of the schema's $defs/Def wants, as a
// message continues "… must be …": `must be a task number "01" to "10"`.
type PatternPhrase struct {
	Def    string
	Phrase string
}

// hostScheme reports whether address starts with one of the host schemes.
func (o *Options) hostScheme(address string) bool {
	for _, s := range o.HostSchemes {
		if strings.HasPrefix(address, s.Prefix) {
			return true
		}
	}
	return false
}

// hostUsage is what an unknown host could have been: "local or
// ssm:<instance id>".
func (o *Options) hostUsage() string {
	words := []string{"local"}
	for _, s := range o.HostSchemes {
		words = append(words, s.Usage)
	}
	return strings.Join(words, " or ")
}

// secretUsage is what a from: must be, "" when no source is known.
func (o *Options) secretUsage() string {
	words := make([]string, 0, len(o.SecretSources))
	for _, s := range o.SecretSources {
		words = append(words, s.Usage)
	}
	return strings.Join(words, " or ")
}

// defPhrase is the phrase for a pattern under one of PatternPhrases' $defs.
func (o *Options) defPhrase(absLoc string) (string, bool) {
	for _, p := range o.PatternPhrases {
		if strings.Contains(absLoc, "/$defs/"+p.Def+"/") {
			return p.Phrase, true
		}
	}
	return "", false
}
