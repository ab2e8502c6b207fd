package aws

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/aws/template"
)

type statement struct {
	Sid      string   `json:"Sid"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// IAMPolicy computes the least-privilege IAM policy (JSON) the runner needs
// for a spec: no wildcard actions; resources scoped to gpipe's stacks
// (stack/gpipe-*), the roles and instance profiles CloudFormation names after
// them, the state bucket (stateURL, "s3://bucket/prefix"; other stores need
// nothing), and the buckets the spec names literally. Describe* and SSM
// polling actions do not support resource scoping and get "*".
//
// CloudFormation creates the template's resources with the runner's
// credentials (no service role), so the policy also lists what the built-in
// template's resources need.
func IAMPolicy(s *spec.Spec, stateURL string) ([]byte, error) {
	var sts []statement
	add := func(sid string, res []string, actions ...string) {
		sort.Strings(actions)
		sts = append(sts, statement{Sid: sid, Effect: "Allow", Action: actions, Resource: res})
	}
	types := map[string]bool{}
	usesSSM := false
	stacks := []string{"arn:aws:cloudformation:*:*:stack/gpipe-*/*"}
	var buckets []string
	for _, h := range s.Hosts {
		usesSSM = usesSSM || !strings.HasPrefix(h.Address, "local")
	}
	for _, st := range s.Steps {
		types[st.Type] = true
		usesSSM = usesSSM || strings.HasPrefix(st.Host, "ssm:") || strings.Contains(st.Host, "${{")
		if name, ok := st.With["stack_name"].(string); ok && name != "" && !strings.Contains(name, "${{") {
			stacks = append(stacks, "arn:aws:cloudformation:*:*:stack/"+name+"/*")
		}
		for _, k := range []string{"data_bucket", "results_bucket"} {
			if b, ok := st.With[k].(string); ok && b != "" && !strings.Contains(b, "${{") {
				buckets = append(buckets, cfn.BucketName(b)) // data_bucket may be an s3:// URL in the bucket
			}
		}
	}
	provision, teardown := types["provision-stack"], types["teardown"]
	if provision || teardown {
		add("GpipeStacks", stacks, "cloudformation:CreateStack", "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
			"cloudformation:DeleteStack", "cloudformation:ListStackResources")
		add("ListStacks", []string{"*"}, "cloudformation:DescribeStacks", "cloudformation:GetTemplateSummary")
		add("StackBuckets", []string{"arn:aws:s3:::gpipe-*", "arn:aws:s3:::gpipe-*/*"}, "s3:ListBucketVersions", "s3:DeleteObjectVersion",
			"s3:DeleteObject", "s3:DeleteBucket", "s3:ListBucket")
	}
	if provision {
		usesSSM = true
		add("Describe", []string{"*"}, "ec2:DescribeImages", "ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeInternetGateways",
			"ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups", "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
			"ec2:DescribeInstances", "ec2:DescribeAvailabilityZones", "ec2:DescribeAccountAttributes", "ec2:DescribeInstanceTypes",
			"ec2:DescribeInstanceTypeOfferings")
		// provision-stack reads the default AMI id from Canonical's public SSM
		// parameter (public parameters' ARNs have no account).
		add("ImageParameters", []string{"arn:aws:ssm:*::parameter/aws/service/*"}, "ssm:GetParameter")
		add("TemplateResources", []string{"*"}, "ec2:CreateVpc", "ec2:DeleteVpc", "ec2:ModifyVpcAttribute",
			"ec2:CreateInternetGateway", "ec2:DeleteInternetGateway", "ec2:AttachInternetGateway", "ec2:DetachInternetGateway",
			"ec2:CreateSubnet", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute", "ec2:CreateRouteTable", "ec2:DeleteRouteTable",
			"ec2:CreateRoute", "ec2:DeleteRoute", "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable",
			"ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress",
			"ec2:CreateLaunchTemplate", "ec2:DeleteLaunchTemplate", "ec2:RunInstances", "ec2:TerminateInstances",
			"ec2:CreateTags", "ec2:DeleteTags")
		add("InstanceRole", []string{"arn:aws:iam::*:role/gpipe-*", "arn:aws:iam::*:instance-profile/gpipe-*"},
			"iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole", "iam:PutRolePolicy",
			"iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PassRole",
			"iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile",
			"iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile")
	}
	if usesSSM {
		add("RunCommand", []string{"arn:aws:ssm:*::document/AWS-RunShellScript", "arn:aws:ec2:*:*:instance/*"}, "ssm:SendCommand")
		add("PollCommand", []string{"*"}, "ssm:GetCommandInvocation", "ssm:CancelCommand", "ssm:DescribeInstanceInformation", "ssm:ListCommands")
		add("CommandOutput", []string{"arn:aws:logs:*:*:log-group:" + template.DefaultSsmLogGroup + ":*"}, "logs:GetLogEvents")
	}
	if params, secrets := secretRefs(s); len(params)+len(secrets) > 0 {
		if len(params) > 0 {
			add("SecretParameters", params, "ssm:GetParameter")
		}
		if len(secrets) > 0 {
			add("SecretValues", secrets, "secretsmanager:GetSecretValue")
		}
	}
	if strings.HasPrefix(stateURL, "s3://") {
		u, err := url.Parse(stateURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("state URL %q: want s3://bucket/prefix", stateURL)
		}
		prefix := strings.Trim(u.Path, "/")
		objs := "arn:aws:s3:::" + u.Host + "/*"
		if prefix != "" {
			objs = "arn:aws:s3:::" + u.Host + "/" + prefix + "/*"
		}
		add("StateObjects", []string{objs}, "s3:GetObject", "s3:PutObject", "s3:DeleteObject")
		add("StateBucket", []string{"arn:aws:s3:::" + u.Host}, "s3:ListBucket")
	}
	if len(buckets) > 0 {
		sort.Strings(buckets)
		buckets = compact(buckets)
		var bs, objs []string
		for _, b := range buckets {
			bs = append(bs, "arn:aws:s3:::"+b)
			objs = append(objs, "arn:aws:s3:::"+b+"/*")
		}
		add("NamedBuckets", bs, "s3:ListBucket", "s3:GetBucketLocation")
		add("NamedBucketObjects", objs, "s3:GetObject", "s3:PutObject")
	}
	if len(sts) == 0 {
		return nil, fmt.Errorf("spec %s uses no AWS: it needs no IAM permissions", s.Name)
	}
	doc := map[string]any{"Version": "2012-10-17", "Statement": sts}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// secretRefs returns the resources of the secret params' from: references:
// SSM parameters (arn:...:parameter/NAME, the name without its leading
// slash) and Secrets Manager secrets (a name gets the "-??????" wildcard for
// the six characters AWS appends to a secret's ARN). ARNs stay as written.
func secretRefs(s *spec.Spec) (params, secrets []string) {
	for _, p := range s.Params {
		kind, id, _ := strings.Cut(p.From, ":")
		switch {
		case id == "":
		case strings.HasPrefix(id, "arn:") && kind == "ssm":
			params = append(params, id)
		case strings.HasPrefix(id, "arn:"):
			secrets = append(secrets, id)
		case kind == "ssm":
			params = append(params, "arn:aws:ssm:*:*:parameter/"+strings.TrimPrefix(id, "/"))
		case kind == "secretsmanager":
			secrets = append(secrets, "arn:aws:secretsmanager:*:*:secret:"+id+"-??????")
		}
	}
	return params, secrets
}
