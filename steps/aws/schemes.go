package aws

import "github.com/gpipe/gpipe/pipeline/spec"

// HostScheme is the address scheme of a host reached through SSM Run
// Command, for the spec loader: a step may name one as host: without
// declaring it.
func HostScheme() spec.Scheme {
	return spec.Scheme{Prefix: "ssm:", Usage: "ssm:<instance id>"}
}

// SecretSources are the references a secret param's from: may hold, the ones
// SecretReader.Resolve reads, in the order the loader's message names them.
func SecretSources() []spec.Scheme {
	return []spec.Scheme{
		{Prefix: "ssm:", Usage: "ssm:<parameter name or ARN>"},
		{Prefix: "secretsmanager:", Usage: "secretsmanager:<secret id or ARN>"},
	}
}
