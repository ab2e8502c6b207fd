package pipeline_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// domainNames are names of the training domain that belong to the step types
// (steps/...), never to the core: step types other than shell, metrics and
// the AWS steps' outputs, as a whole string literal (the words "teardown" or
// "evaluate" in a sentence are fine). The core asks for what they mean
// through interfaces and options the command wires up (report.Resources,
// report.Options.KeyOutputs, spec.Options).
var domainNames = []string{
	// not "teardown": it is also gpipe's command the report advises.
	"provision-stack", "prepare-disk", "prepare-host", "fetch-msd", "preprocess", "train-unet", "evaluate",
	"mean_dice", "instance_id", "stack_name", "ckpt",
}

// domainParts are instance types, regions, and the address schemes of host
// kinds and secret sources (the loader learns those from spec.Options): in
// no string literal at all.
var domainParts = []string{"dl1.", "trn1.", "p4d.", "us-east-", "us-west-", "eu-west-", "ssm:", "secretsmanager:"}

// domainExempt are the packages allowed AWS knowledge: none, since the S3
// state store's client, region fallback included, comes from
// internal/awsconfig.
var domainExempt = []string{}

// TestCoreKnowsNoDomain fails when a string literal in a non-test Go file
// under pipeline/ is one of domainNames or holds one of domainParts.
func TestCoreKnowsNoDomain(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, ex := range domainExempt {
			if d.IsDir() && filepath.ToSlash(path) == ex {
				return filepath.SkipDir
			}
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, name := range domainNames {
				if s == name {
					t.Errorf("%s: %q names %q: the core must ask the step types (steps/...) instead", fset.Position(lit.Pos()), s, name)
				}
			}
			for _, name := range domainParts {
				if strings.Contains(s, name) {
					t.Errorf("%s: %q names %q: the core must ask the step types (steps/...) instead", fset.Position(lit.Pos()), s, name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
