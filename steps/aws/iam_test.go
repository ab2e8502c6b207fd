package aws

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
	s3store "github.com/gpipe/gpipe/pipeline/store/s3"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
	"github.com/gpipe/gpipe/steps/aws/template"
	"github.com/gpipe/gpipe/steps/msd"
)

// referenceHandlers is the repository's copy of the registry-schema handler
// permissions (testdata/reference/README.md names its source).
const referenceHandlers = "../../testdata/reference/cfn-handler-permissions.json"

func iamTestSpec() *spec.Spec {
	return &spec.Spec{Name: "unet", Params: []spec.Param{
		{Name: "token", Secret: true, From: "ssm:/team/token"},
		{Name: "key", Secret: true, From: "secretsmanager:team/key"},
	}, Steps: []spec.Step{
		{ID: "provision", Type: "provision-stack", With: map[string]any{"results_bucket": "my-results"}},
		{ID: "train", Type: "train-unet", Host: "${{ steps.provision.outputs.host }}"},
		{ID: "teardown", Type: "teardown"},
	}}
}

type policyDoc struct {
	Statement []statement
}

func policyOf(t *testing.T, s *spec.Spec, state string) policyDoc {
	t.Helper()
	b, err := IAMPolicy(s, state)
	if err != nil {
		t.Fatal(err)
	}
	var doc policyDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// grants says whether any Allow statement names the action (IAM matches
// action names case-insensitively, with * and ? wildcards).
func (d policyDoc) grants(action string) bool {
	for _, st := range d.Statement {
		for _, a := range st.Action {
			if ok, _ := path.Match(strings.ToLower(a), strings.ToLower(action)); ok && st.Effect == "Allow" {
				return true
			}
		}
	}
	return false
}

// requiredActions computes what the runner's policy must grant: every
// create, read and delete handler permission (reference table) of every
// resource type of the built-in template, and the IAM action of every method
// of the SDK interfaces gpipe's code declares (the calls it can make).
func requiredActions(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile(referenceHandlers)
	if err != nil {
		t.Fatal(err)
	}
	table, err := template.ParseHandlers(src)
	if err != nil {
		t.Fatal(err)
	}
	types, err := template.ResourceTypes(template.Template())
	if err != nil {
		t.Fatal(err)
	}
	need := map[string]string{} // action → why
	for _, typ := range types {
		h, ok := table[typ]
		if !ok {
			t.Errorf("the reference table has no handlers for %s, a type of the built-in template", typ)
			continue
		}
		for _, name := range []string{"create", "read", "delete"} {
			for _, a := range h[name] {
				need[a] = typ + " " + name + " handler"
			}
		}
	}
	// The S3 operations whose IAM action is not s3:<Operation> (Service
	// Authorization Reference, "Actions defined by Amazon S3").
	s3Actions := map[string]string{"ListObjectsV2": "ListBucket", "ListObjectVersions": "ListBucketVersions",
		"DeleteObjects": "DeleteObject", "HeadObject": "GetObject"}
	services := map[string]string{"cloudformation": "cloudformation", "ec2": "ec2", "ssm": "ssm", "cloudwatchlogs": "logs", "s3": "s3",
		"secretsmanager": "secretsmanager"}
	// The consumer-side interfaces of SDK clients, by the file declaring them;
	// a file that declares one and is not listed fails the test below.
	ifaces := map[string][]reflect.Type{
		"steps/aws/cfn/api.go":         {reflect.TypeFor[cfn.CloudFormation](), reflect.TypeFor[cfn.S3](), reflect.TypeFor[cfn.EC2](), reflect.TypeFor[cfn.SSM]()},
		"steps/aws/ssmhost/ssmhost.go": {reflect.TypeFor[ssmhost.SSM](), reflect.TypeFor[ssmhost.Logs]()},
		"steps/aws/ssmhost/lost.go":    {reflect.TypeFor[ssmhost.EC2]()},
		"steps/aws/spotprices.go":      {reflect.TypeFor[SpotPriceAPI]()},
		"pipeline/store/s3/s3.go":      {reflect.TypeFor[s3store.API]()},
		"steps/msd/fetch.go":           {reflect.TypeFor[msd.S3API]()}, // in-process on a local host, with the runner's credentials
	}
	sdkMethod := regexp.MustCompile(`\.\.\.func\(\*\w+\.Options\)`)
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel := strings.TrimPrefix(filepath.ToSlash(p), "../../"); sdkMethod.Match(src) && ifaces[rel] == nil {
			t.Errorf("%s declares SDK client methods this test does not check the policy for", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []reflect.Type
	for _, l := range ifaces {
		all = append(all, l...)
	}
	for _, iface := range all {
		for i := range iface.NumMethod() {
			m := iface.Method(i)
			pkg := path.Base(m.Type.In(1).Elem().PkgPath()) // the *XxxInput's service package
			svc, ok := services[pkg]
			if !ok {
				t.Fatalf("%s.%s: unknown service package %s", iface, m.Name, pkg)
			}
			op := m.Name
			if svc == "s3" && s3Actions[op] != "" {
				op = s3Actions[op]
			}
			need[svc+":"+op] = iface.String() + "." + m.Name
		}
	}
	// Calls made on a client built in place rather than through an interface
	// (steps/aws/secrets.go): found in the source.
	direct := regexp.MustCompile(`(\w+)\.NewFromConfig\([^)]*\)\.(\w+)\(`)
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range direct.FindAllStringSubmatch(string(src), -1) {
			svc, ok := services[m[1]]
			if !ok {
				t.Errorf("%s: a call of %s.%s, whose service this test does not know", p, m[1], m[2])
				continue
			}
			need[svc+":"+m[2]] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return need
}

func TestHandlerTableEmbeddedIsTheReference(t *testing.T) {
	ref, err := os.ReadFile(referenceHandlers)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := os.ReadFile("template/cfn-handler-permissions.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ref, emb) {
		t.Error("steps/aws/template/cfn-handler-permissions.json differs from testdata/reference/cfn-handler-permissions.json")
	}
}

func TestIAMPolicyCoversHandlersAndCalls(t *testing.T) {
	doc := policyOf(t, iamTestSpec(), "s3://state-bucket/gpipe")
	need := requiredActions(t)
	if len(need) < 60 {
		t.Fatalf("only %d required actions computed; the derivation lost its inputs", len(need))
	}
	for a, why := range need {
		if !doc.grants(a) {
			t.Errorf("policy lacks %s (%s)", a, why)
		}
	}
	// The check itself: a policy without one of them is caught.
	for _, drop := range []string{"iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "ec2:DescribeVpcAttribute",
		"cloudformation:GetTemplateSummary", "ssm:CancelCommand", "s3:ListBucketVersions"} {
		if _, ok := need[drop]; !ok {
			t.Errorf("%s is not among the required actions", drop)
		}
		cut := policyDoc{}
		for _, st := range doc.Statement {
			st.Action = without(st.Action, drop)
			cut.Statement = append(cut.Statement, st)
		}
		if cut.grants(drop) {
			t.Errorf("dropping %s left it granted", drop)
		}
	}
}

func without(l []string, s string) []string {
	var out []string
	for _, x := range l {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// TestIAMPolicyScopesDestruction: the actions that destroy or command
// resources are granted only on gpipe's own (tagged or named) resources.
func TestIAMPolicyScopesDestruction(t *testing.T) {
	doc := policyOf(t, iamTestSpec(), "")
	for _, a := range []string{"ec2:TerminateInstances", "ssm:SendCommand", "ec2:DeleteVpc", "ec2:DeleteSubnet",
		"ec2:DeleteSecurityGroup", "ec2:DeleteInternetGateway", "ec2:DeleteLaunchTemplate", "ec2:DetachInternetGateway",
		"iam:DeleteRole", "iam:PassRole", "cloudformation:DeleteStack", "cloudformation:CreateStack"} {
		found := false
		for _, st := range doc.Statement {
			if !contains(st.Action, a) {
				continue
			}
			found = true
			for _, r := range st.Resource {
				if r == "*" && len(st.Condition) == 0 || r == "arn:aws:ec2:*:*:instance/*" && len(st.Condition) == 0 {
					t.Errorf("%s granted on %s without a condition (statement %s)", a, r, st.Sid)
				}
			}
			if st.Condition != nil && st.Condition["StringLike"]["aws:ResourceTag/"+RunTag] == "" &&
				st.Condition["StringLike"]["aws:RequestTag/"+RunTag] == "" {
				t.Errorf("%s: statement %s has a condition that is not the run tag: %v", a, st.Sid, st.Condition)
			}
		}
		if !found {
			t.Errorf("%s not granted at all", a)
		}
	}
}

// TestIAMPolicyResultsKey: a results bucket under a customer-managed key
// needs the runner to use the key too (S3 calls KMS with the caller's
// credentials; S3 User Guide, "Using server-side encryption with AWS KMS keys").
func TestIAMPolicyResultsKey(t *testing.T) {
	s := iamTestSpec()
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	s.Steps[0].With["results_kms_key"] = key
	doc := policyOf(t, s, "")
	for _, a := range []string{"kms:Decrypt", "kms:GenerateDataKey"} {
		ok := false
		for _, st := range doc.Statement {
			ok = ok || contains(st.Action, a) && len(st.Resource) == 1 && st.Resource[0] == key
		}
		if !ok {
			t.Errorf("%s not granted on exactly the results key", a)
		}
	}
	if doc := policyOf(t, iamTestSpec(), ""); doc.grants("kms:Decrypt") {
		t.Error("kms:Decrypt granted without a key")
	}
}

func TestIAMPolicyRefusesUnresolvedBuckets(t *testing.T) {
	s := iamTestSpec()
	s.Steps[0].With["results_bucket"] = "${{ params.results_bucket }}"
	if _, err := IAMPolicy(s, ""); err == nil || !strings.Contains(err.Error(), "results_bucket") {
		t.Fatalf("err = %v, want one naming results_bucket", err)
	}
}

func TestTrustPolicy(t *testing.T) {
	b, err := TrustPolicy("github:octo/gpipe", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"`,
		`"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"`, `"token.actions.githubusercontent.com:sub": "repo:octo/gpipe:*"`,
		`"sts:AssumeRoleWithWebIdentity"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("trust policy lacks %s:\n%s", want, b)
		}
	}
	b, err = TrustPolicy("github:octo/gpipe:environment:prod", "123456789012")
	if err != nil || !strings.Contains(string(b), `"StringEquals": {
          "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
          "token.actions.githubusercontent.com:sub": "repo:octo/gpipe:environment:prod"`) {
		t.Errorf("narrow subject: %v\n%s", err, b)
	}
	for _, bad := range [][2]string{{"octo/gpipe", "123456789012"}, {"github:octo", "123456789012"}, {"github:octo/gpipe", ""}, {"github:octo/gpipe", "12345"}} {
		if _, err := TrustPolicy(bad[0], bad[1]); err == nil {
			t.Errorf("TrustPolicy(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// TestIAMPolicyFitsAManagedPolicy: a customer managed policy holds at most
// 6,144 characters, white space not counted (IAM User Guide, "IAM and AWS
// STS quotas"); a larger one cannot be created at all.
func TestIAMPolicyFitsAManagedPolicy(t *testing.T) {
	s := iamTestSpec()
	s.Steps[0].With["data_bucket"] = "s3://a-private-dataset-mirror-bucket/Task01_BrainTumour.tar"
	s.Steps[0].With["results_kms_key"] = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	b, err := IAMPolicy(s, "s3://a-state-bucket-with-a-long-name/gpipe/state")
	if err != nil {
		t.Fatal(err)
	}
	n := len(strings.Join(strings.Fields(string(b)), ""))
	if n > 6144 {
		t.Errorf("policy has %d characters without white space, over IAM's 6,144 for a managed policy", n)
	}
	t.Logf("%d characters without white space", n)
}

// TestIAMPolicySpotRole: a spec that may launch spot (market spot, or a
// market only known at run time) may create the spot service-linked role,
// and only that role, for spot.amazonaws.com; an on-demand spec may not.
func TestIAMPolicySpotRole(t *testing.T) {
	for market, want := range map[string]bool{"spot": true, "${{ params.market }}": true, "on-demand": false, "": false} {
		sp := iamTestSpec()
		sp.Steps[0].With["market"] = market
		doc := policyOf(t, sp, "")
		found := false
		for _, st := range doc.Statement {
			if !contains(st.Action, "iam:CreateServiceLinkedRole") {
				continue
			}
			found = true
			if len(st.Action) != 1 || len(st.Resource) != 1 || st.Resource[0] != "arn:aws:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot" ||
				st.Condition["StringLike"]["iam:AWSServiceName"] != "spot.amazonaws.com" {
				t.Errorf("market %q: statement %+v grants more than the spot role", market, st)
			}
		}
		if found != want {
			t.Errorf("market %q: iam:CreateServiceLinkedRole granted %v, want %v", market, found, want)
		}
	}
}
