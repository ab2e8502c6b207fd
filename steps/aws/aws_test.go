package aws

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/pipeline/spec"
)

func TestIAMPolicy(t *testing.T) {
	s := &spec.Spec{Name: "unet", Steps: []spec.Step{
		{ID: "provision", Type: "provision-stack", With: map[string]any{"results_bucket": "my-results"}},
		{ID: "train", Type: "train-unet", Host: "${{ steps.provision.outputs.host }}"},
		{ID: "teardown", Type: "teardown"},
	}}
	b, err := IAMPolicy(s, "s3://state-bucket/gpipe")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []statement
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	actions := map[string][]string{}
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			if strings.Contains(a, "*") {
				t.Errorf("wildcard action %s", a)
			}
			actions[a] = append(actions[a], st.Resource...)
		}
	}
	for a, res := range map[string]string{
		"cloudformation:CreateStack":        "arn:aws:cloudformation:*:*:stack/gpipe-*/*",
		"ssm:SendCommand":                   "arn:aws:ssm:*::document/AWS-RunShellScript",
		"ssm:ListCommands":                  "*", // finding a command whose SendCommand answer was lost
		"ec2:DescribeInstanceTypeOfferings": "*", // choosing a zone that offers the instance type
		"s3:PutObject":                      "arn:aws:s3:::state-bucket/gpipe/*",
		"s3:GetObject":                      "arn:aws:s3:::my-results/*",
		"iam:PassRole":                      "arn:aws:iam::*:role/gpipe-*",
		"logs:GetLogEvents":                 "arn:aws:logs:*:*:log-group:/gpipe/ssm:*",
		"ssm:GetParameter":                  "arn:aws:ssm:*::parameter/aws/service/*", // the default AMI's public parameter
	} {
		if !contains(actions[a], res) {
			t.Errorf("%s on %s missing (have %v)", a, res, actions[a])
		}
	}
	if strings.Contains(string(b), "${{") {
		t.Error("expression leaked into the policy")
	}
	if _, err := IAMPolicy(&spec.Spec{Name: "local", Steps: []spec.Step{{ID: "a", Type: "shell"}}}, "file://.gpipe"); err == nil {
		t.Error("a local spec got a policy")
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestNewIsLazy(t *testing.T) {
	loads := 0
	s := New(Options{LoadConfig: func(context.Context, string) (sdkaws.Config, error) {
		loads++
		return sdkaws.Config{}, errors.New("no credentials here")
	}})
	_ = s.ProvisionStack()
	_ = s.Teardown()
	ex, err := s.SSMExecutor(pipeline.Host{Name: "g", Address: "ssm:i-0abc"})
	if err != nil {
		t.Fatal(err)
	}
	if loads != 0 {
		t.Fatalf("configuration loaded %d times before any AWS call", loads)
	}
	if _, err := ex.Exec(context.Background(), hostScript()); err == nil || !strings.Contains(err.Error(), "no credentials here") {
		t.Fatalf("err = %v", err)
	}
	if loads != 1 {
		t.Fatalf("loads = %d", loads)
	}
}
