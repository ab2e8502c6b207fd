package spec

import (
	"strings"
	"testing"
)

// testOptions are what steps.SpecOptions gives the loader in gpipe (an SSM
// host kind, SSM and Secrets Manager secrets, the MSD task pattern), spelled
// out here because the core's tests cannot import the step types;
// steps/specoptions_test.go checks the real ones give the same messages.
var testOptions = Options{
	HostSchemes: []Scheme{{Prefix: "ssm:", Usage: "ssm:<instance id>"}},
	SecretSources: []Scheme{
		{Prefix: "ssm:", Usage: "ssm:<parameter name or ARN>"},
		{Prefix: "secretsmanager:", Usage: "secretsmanager:<secret id or ARN>"},
	},
	PatternPhrases: []PatternPhrase{
		{Def: "msd-task", Phrase: `must be a task number "01" to "10" or a folder name like "Task01_BrainTumour"`},
	},
}

// testLoader loads with testOptions.
func testLoader() *Loader { return NewLoader(testOptions) }

// TestZeroOptionsKnowOnlyLocal: without options a host address scheme is an
// unknown host, and the message offers only local.
func TestZeroOptionsKnowOnlyLocal(t *testing.T) {
	src := "version: 1\nname: z\nsteps:\n  - {id: a, type: shell, host: \"ssm:i-0abc\", with: {run: \"true\"}}\n"
	_, err := NewLoader(Options{}).Parse("z.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), `unknown host "ssm:i-0abc" (declare it under hosts, or use local)`) {
		t.Fatalf("zero options: %v, want the host refused with only local offered", err)
	}
	if _, err := testLoader().Parse("z.yaml", []byte(src)); err != nil {
		t.Fatalf("with an ssm: host scheme: %v", err)
	}
}

// TestZeroOptionsShowThePattern: a from: pattern with no sources to name is
// shown as the schema's pattern.
func TestZeroOptionsShowThePattern(t *testing.T) {
	src := "version: 1\nname: z\nparams:\n  tok: {type: string, secret: true, from: \"vault:x\"}\nsteps:\n  - {id: a, type: shell, with: {run: \"true\"}}\n"
	_, err := NewLoader(Options{}).Parse("z.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "must match ^(") {
		t.Fatalf("zero options: %v, want the pattern shown", err)
	}
	_, err = testLoader().Parse("z.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "must be ssm:<parameter name or ARN> or secretsmanager:<secret id or ARN>") {
		t.Fatalf("test options: %v, want the sources named", err)
	}
}
