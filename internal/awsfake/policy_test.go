package awsfake

import (
	"strings"
	"testing"
)

// The cases follow the IAM User Guide's "Policy evaluation logic" and
// "IAM JSON policy elements: Condition operators".
func TestPolicyEvaluation(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
		{"Effect": "Allow", "Action": ["ec2:TerminateInstances"], "Resource": "*",
		 "Condition": {"StringLike": {"aws:ResourceTag/gpipe:run-id": "?*"}}},
		{"Effect": "Allow", "Action": "cloudformation:CreateStack", "Resource": "arn:aws:cloudformation:*:*:stack/gpipe-*/*",
		 "Condition": {"StringEquals": {"aws:RequestTag/team": ["ml", "infra"]}}},
		{"Effect": "Allow", "Action": "iam:*", "Resource": "arn:aws:iam::*:role/gpipe-*"},
		{"Effect": "Deny", "Action": "iam:DeleteRole", "Resource": "arn:aws:iam::*:role/gpipe-keep-*"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	tagged := map[string]string{"gpipe:run-id": "r1"}
	stack := "arn:aws:cloudformation:us-east-1:123456789012:stack/gpipe-r1/1"
	for _, tc := range []struct {
		action  string
		reqTags map[string]string
		res     Resource
		want    bool
	}{
		{"ec2:DescribeImages", nil, Resource{ARN: "*"}, true},
		{"EC2:describeimages", nil, Resource{ARN: "*"}, true}, // actions match case-insensitively
		{"ec2:RunInstances", nil, Resource{ARN: "*"}, false},  // nothing allows it: implicit deny
		{"ec2:TerminateInstances", nil, Resource{ARN: "arn:aws:ec2:us-east-1:1:instance/i-1", Tags: tagged}, true},
		{"ec2:TerminateInstances", nil, Resource{ARN: "arn:aws:ec2:us-east-1:1:instance/i-1"}, false},                                              // tag missing
		{"ec2:TerminateInstances", nil, Resource{ARN: "arn:aws:ec2:us-east-1:1:instance/i-1", Tags: map[string]string{"gpipe:run-id": ""}}, false}, // ?* wants one character
		{"cloudformation:CreateStack", map[string]string{"team": "infra"}, Resource{ARN: stack}, true},
		{"cloudformation:CreateStack", map[string]string{"team": "web"}, Resource{ARN: stack}, false},
		{"cloudformation:CreateStack", map[string]string{"team": "ml"}, Resource{ARN: strings.Replace(stack, "gpipe-", "other-", 1)}, false},
		{"iam:DeleteRole", nil, Resource{ARN: "arn:aws:iam::1:role/gpipe-r1-InstanceRole-X"}, true},
		{"iam:DeleteRole", nil, Resource{ARN: "arn:aws:iam::1:role/gpipe-keep-1"}, false}, // explicit deny wins
		{"iam:GetRole", nil, Resource{ARN: "arn:aws:iam::1:role/Gpipe-r1"}, false},        // resources match case-sensitively
	} {
		if got := p.Allows(tc.action, tc.reqTags, tc.res); got != tc.want {
			t.Errorf("Allows(%s, %v, %+v) = %v, want %v", tc.action, tc.reqTags, tc.res, got, tc.want)
		}
	}
	// A request on two resources needs both allowed.
	if p.Allows("ec2:TerminateInstances", nil, Resource{ARN: "a", Tags: tagged}, Resource{ARN: "b"}) {
		t.Error("allowed with one of two resources untagged")
	}
}

func TestPolicyRefusesWhatItCannotEvaluate(t *testing.T) {
	for name, doc := range map[string]string{
		"old version": `{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}`,
		"NotAction":   `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Action": "s3:*", "Resource": "*"}]}`,
		"operator":    `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4/32"}}}]}`,
		"key":         `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/x": "y"}}}]}`,
		"no resource": `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}`,
		"bad effect":  `{"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}`,
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
