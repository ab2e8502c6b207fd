package aws

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps/aws/template"
)

// ErrUnresolved marks a policy input (a bucket, a stack name, a template)
// that is still an expression: printing a policy without it would silently
// grant too little, so the caller must give the param.
var ErrUnresolved = errors.New("unresolved value")

// RunTag is the tag gpipe puts on every stack it creates; CloudFormation
// propagates stack tags to the resources it creates, so the policy scopes
// destructive actions to resources carrying it.
const RunTag = "gpipe:run-id"

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// feature is a part of gpipe a spec uses; each needs its own API calls.
type feature int

const (
	featStacks    feature = iota // provision-stack or teardown: find, watch and delete stacks
	featProvision                // provision-stack: create stacks
	featSSM                      // commands on ssm: hosts
	featState                    // an s3:// state store
	featBuckets                  // buckets the spec names
	featSecrets                  // secret params read from SSM Parameter Store or Secrets Manager (from:)
	featKMS                      // a results bucket encrypted with a customer-managed key
	featSpot                     // provision-stack may launch spot instances
)

// scope is where an action is granted: which resources, under which
// condition.
type scope int

const (
	anyResource   scope = iota // actions without resource-level permissions (Describe*, List*, command polling)
	stacks                     // the stacks gpipe creates
	taggedStacks               // creating a stack: only with the run tag in the request
	runDocument                // the SSM document commands run with
	runInstances               // instances carrying the run tag
	hostInstances              // the spec's literal ssm: hosts
	commandLogs                // the log group SSM writes command output to
	stateObjects               // the state store's prefix
	stateBucket                // the state store's bucket
	namedBuckets               // buckets the spec names
	namedObjects               // their objects
	stackBuckets               // buckets a stack owns (teardown empties them)
	stackObjects               // their objects
	stackRoles                 // roles and instance profiles CloudFormation names after gpipe's stacks
	publicParams               // AWS's public SSM parameters (/aws/service/...)
	secretParams               // the SSM parameters secret params come from
	secretValues               // the Secrets Manager secrets they come from
	bucketKeys                 // the customer-managed KMS keys of the named buckets
	taggedByRun                // any resource carrying the run tag
	spotRole                   // the account's spot service-linked role
)

// apiCall is one API operation gpipe's own code calls, as the IAM action it
// needs. Adding a call to the code is adding a line here; a test checks that
// every method of the SDK interfaces the code declares has its line.
type apiCall struct {
	when   feature
	action string
	scope  scope
}

func runnerCalls() []apiCall {
	return []apiCall{
		// steps/aws/cfn: provision-stack, teardown, `gpipe teardown` and `gpipe gc`.
		{featStacks, "cloudformation:DescribeStacks", stacks},
		{featStacks, "cloudformation:DescribeStacks", anyResource}, // gc lists every stack to find gpipe's
		{featStacks, "cloudformation:DescribeStackEvents", stacks},
		{featStacks, "cloudformation:ListStackResources", stacks},
		{featStacks, "cloudformation:DeleteStack", stacks},
		{featStacks, "s3:ListBucketVersions", stackBuckets}, // ListObjectVersions
		{featStacks, "s3:DeleteObject", stackObjects},       // DeleteObjects
		{featStacks, "s3:DeleteObjectVersion", stackObjects},
		{featProvision, "cloudformation:CreateStack", taggedStacks},
		{featProvision, "cloudformation:GetTemplateSummary", anyResource},
		{featProvision, "ec2:DescribeImages", anyResource},
		{featProvision, "ec2:DescribeSubnets", anyResource},
		{featProvision, "ec2:DescribeInstanceTypeOfferings", anyResource}, // zones that offer the instance type
		{featProvision, "ssm:GetParameter", publicParams},                 // the default AMI id (Canonical's public parameter)
		{featProvision, "ec2:DescribeSpotPriceHistory", anyResource},      // spot instances' cost estimate and budget (spotprices.go)
		// steps/aws/ssmhost.
		{featSSM, "ssm:SendCommand", runDocument},
		{featSSM, "ssm:SendCommand", runInstances},
		{featSSM, "ssm:SendCommand", hostInstances},
		{featSSM, "ssm:GetCommandInvocation", anyResource},
		{featSSM, "ssm:CancelCommand", anyResource},
		{featSSM, "ssm:ListCommands", anyResource},
		{featSSM, "ssm:DescribeInstanceInformation", anyResource},
		{featSSM, "ec2:DescribeInstances", anyResource}, // is the instance under a step gone (ssmhost/lost.go)
		{featSSM, "logs:GetLogEvents", commandLogs},
		// pipeline/store/s3.
		{featState, "s3:GetObject", stateObjects},
		{featState, "s3:PutObject", stateObjects},
		{featState, "s3:DeleteObject", stateObjects},
		{featState, "s3:ListBucket", stateBucket}, // ListObjectsV2
		// steps/aws/secrets.go: secret params' from: references.
		{featSecrets, "ssm:GetParameter", secretParams},
		{featSecrets, "secretsmanager:GetSecretValue", secretValues},
		// Buckets the spec names (results): the runner reads what the host wrote.
		{featBuckets, "s3:ListBucket", namedBuckets},
		{featBuckets, "s3:GetBucketLocation", namedBuckets},
		{featBuckets, "s3:GetObject", namedObjects},
		{featBuckets, "s3:PutObject", namedObjects},
		{featKMS, "kms:Decrypt", bucketKeys}, // S3 calls KMS with the caller's credentials for SSE-KMS objects
		{featKMS, "kms:GenerateDataKey", bucketKeys},
	}
}

// handlerScope scopes an action a CloudFormation resource handler calls with
// the runner's credentials. IAM actions name the role or instance profile
// (CloudFormation names them after the stack); EC2's destructive actions
// need the run tag, which CloudFormation propagates from the stack; the rest
// (Describe*, creates whose resources do not exist yet, associations) get
// "*" because they have no resource-level permissions or act on resources
// gpipe cannot name in advance.
func handlerScope(action string) scope {
	svc, op, _ := strings.Cut(action, ":")
	switch {
	case svc == "iam":
		return stackRoles
	case svc == "ec2" && hasAnyPrefix(op, "Delete", "Terminate", "Detach", "Disassociate", "Revoke"):
		return taggedByRun
	}
	return anyResource
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// IAMPolicy derives the least-privilege IAM policy (JSON) the runner needs
// for a spec from two sources: the API calls gpipe's code makes
// (runnerCalls), and, because CloudFormation creates and deletes a stack's
// resources with the caller's credentials (gpipe passes no service role),
// every action the create, read and delete handlers of each resource type
// in the deployed template call (the embedded registry-schema table; gpipe
// never updates a stack, so update handlers are left out). stateURL is the
// state store ("s3://bucket/prefix"; other stores need nothing).
//
// A bucket, stack name or template that is still an expression is an error
// wrapping ErrUnresolved: a policy without it would fail mid-run.
func IAMPolicy(s *spec.Spec, stateURL string) ([]byte, error) {
	in, err := inputs(s, stateURL)
	if err != nil {
		return nil, err
	}
	grants := map[scope][]string{}
	add := func(sc scope, action string) {
		if !slices.Contains(grants[sc], action) {
			grants[sc] = append(grants[sc], action)
		}
	}
	for _, c := range runnerCalls() {
		if in.features[c.when] {
			add(c.scope, c.action)
		}
	}
	if in.features[featSpot] {
		// Not a call of gpipe's: EC2 makes the account's spot
		// service-linked role with the credentials of the first spot
		// launch, here CloudFormation's with the runner's (EC2 User Guide,
		// "Service-linked role for Spot Instances"); without the grant that
		// launch fails with AuthFailure.ServiceLinkedRoleCreationNotPermitted.
		add(spotRole, "iam:CreateServiceLinkedRole")
	}
	if in.features[featStacks] {
		table, err := template.Handlers()
		if err != nil {
			return nil, err
		}
		handlers := []string{template.HandlerRead, template.HandlerDelete}
		if in.features[featProvision] {
			handlers = append(handlers, template.HandlerCreate)
		}
		for _, body := range in.templates {
			types, err := template.ResourceTypes(body)
			if err != nil {
				return nil, err
			}
			for _, typ := range types {
				perms, ok := table[typ]
				if !ok {
					return nil, fmt.Errorf("resource type %s: no handler permissions known (the table covers the built-in template's types; source %s)",
						typ, template.HandlersSource())
				}
				for _, h := range handlers {
					for _, a := range perms[h] {
						add(handlerScope(a), a)
					}
				}
			}
		}
	}
	var sts []statement
	for sc := anyResource; sc <= spotRole; sc++ {
		if len(grants[sc]) == 0 {
			continue
		}
		st := in.statement(sc)
		if len(st.Resource) == 0 {
			continue // e.g. no literal buckets
		}
		sort.Strings(grants[sc])
		st.Effect, st.Action = "Allow", grants[sc]
		sts = append(sts, st)
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

// statement returns a scope's Sid, resources and condition.
func (in *policyInputs) statement(sc scope) statement {
	hasRunTag := map[string]map[string]string{"StringLike": {"aws:ResourceTag/" + RunTag: "?*"}}
	switch sc {
	case anyResource:
		return statement{Sid: "NoResourceLevelPermissions", Resource: []string{"*"}}
	case stacks:
		return statement{Sid: "GpipeStacks", Resource: in.stackARNs()}
	case taggedStacks:
		return statement{Sid: "CreateTaggedStacks", Resource: in.stackARNs(),
			Condition: map[string]map[string]string{"StringLike": {"aws:RequestTag/" + RunTag: "?*"}}}
	case runDocument:
		return statement{Sid: "RunShellScript", Resource: []string{"arn:aws:ssm:*::document/AWS-RunShellScript"}}
	case runInstances:
		return statement{Sid: "CommandsOnRunInstances", Resource: []string{"arn:aws:ec2:*:*:instance/*"}, Condition: hasRunTag}
	case hostInstances:
		st := statement{Sid: "CommandsOnSpecHosts"}
		for _, id := range in.instances {
			st.Resource = append(st.Resource, "arn:aws:ec2:*:*:instance/"+id)
		}
		return st
	case commandLogs:
		return statement{Sid: "CommandOutput", Resource: []string{"arn:aws:logs:*:*:log-group:" + template.DefaultSsmLogGroup + ":*"}}
	case stateObjects:
		objs := "arn:aws:s3:::" + in.stateHost + "/*"
		if in.statePfx != "" {
			objs = "arn:aws:s3:::" + in.stateHost + "/" + in.statePfx + "/*"
		}
		return statement{Sid: "StateObjects", Resource: []string{objs}}
	case stateBucket:
		return statement{Sid: "StateBucket", Resource: []string{"arn:aws:s3:::" + in.stateHost}}
	case namedBuckets, namedObjects:
		st := statement{Sid: "NamedBuckets"}
		if sc == namedObjects {
			st.Sid = "NamedBucketObjects"
		}
		for _, b := range in.buckets {
			if sc == namedObjects {
				b += "/*"
			}
			st.Resource = append(st.Resource, "arn:aws:s3:::"+b)
		}
		return st
	case stackBuckets, stackObjects:
		// CloudFormation names a stack's buckets after the stack, lower-cased.
		st := statement{Sid: "StackBuckets"}
		suffix := ""
		if sc == stackObjects {
			st.Sid, suffix = "StackBucketObjects", "/*"
		}
		for _, n := range in.stackPatterns() {
			st.Resource = append(st.Resource, "arn:aws:s3:::"+strings.ToLower(n)+"-*"+suffix)
		}
		return st
	case stackRoles:
		st := statement{Sid: "StackRolesAndProfiles"}
		for _, n := range in.stackPatterns() {
			st.Resource = append(st.Resource, "arn:aws:iam::*:role/"+n+"-*", "arn:aws:iam::*:instance-profile/"+n+"-*")
		}
		return st
	case publicParams:
		// Public parameters' ARNs have no account.
		return statement{Sid: "PublicParameters", Resource: []string{"arn:aws:ssm:*::parameter/aws/service/*"}}
	case secretParams:
		return statement{Sid: "SecretParameters", Resource: in.secretParams}
	case secretValues:
		return statement{Sid: "SecretValues", Resource: in.secretValues}
	case bucketKeys:
		return statement{Sid: "BucketKeys", Resource: in.kmsKeys}
	case taggedByRun:
		return statement{Sid: "DestroyOnlyRunResources", Resource: []string{"*"}, Condition: hasRunTag}
	case spotRole:
		return statement{Sid: "SpotServiceLinkedRole",
			Resource:  []string{"arn:aws:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"},
			Condition: map[string]map[string]string{"StringLike": {"iam:AWSServiceName": "spot.amazonaws.com"}}}
	}
	panic(fmt.Sprintf("scope %d has no statement", sc))
}

// stackPatterns are the names of gpipe's stacks: its default "gpipe-<run
// id>" and the literal stack_name values.
func (in *policyInputs) stackPatterns() []string {
	return append([]string{"gpipe"}, in.stackNames...)
}

func (in *policyInputs) stackARNs() []string {
	out := []string{"arn:aws:cloudformation:*:*:stack/gpipe-*/*"}
	for _, n := range in.stackNames {
		out = append(out, "arn:aws:cloudformation:*:*:stack/"+n+"/*")
	}
	return out
}
