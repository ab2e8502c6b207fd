package cfn

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func createParams(in *cloudformation.CreateStackInput) map[string]string {
	out := map[string]string{}
	for _, p := range in.Parameters {
		out[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	return out
}

// TestProvisionPicksOfferedZoneAndMovesOnWithoutCapacity: with no zone
// given, the stack goes to a zone EC2 says offers the type; when that zone
// has no capacity, the failed stack is deleted and the next offered zone
// tried, and the log says so.
func TestProvisionPicksOfferedZoneAndMovesOnWithoutCapacity(t *testing.T) {
	e := newEnv()
	e.cfn.noCapacity = map[string]bool{"us-east-1a": true}
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, log, _ := stepRun(nil)
	res, err := p.Run(context.Background(), sr)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	if len(e.cfn.creates) != 2 {
		t.Fatalf("%d creates, want 2\n%s", len(e.cfn.creates), log)
	}
	if z := createParams(e.cfn.creates[0])["AvailabilityZone"]; z != "us-east-1a" {
		t.Errorf("first zone %q, want the first offered (us-east-1a)", z)
	}
	if z := createParams(e.cfn.creates[1])["AvailabilityZone"]; z != "us-east-1b" {
		t.Errorf("second zone %q, want us-east-1b", z)
	}
	if e.cfn.deletes != 1 || e.ec2.offers != 1 {
		t.Errorf("%d deletes, %d offering queries; want 1 and 1", e.cfn.deletes, e.ec2.offers)
	}
	if !strings.Contains(log.String(), "on-demand dl1.24xlarge in us-east-1a: no capacity for it there now") ||
		!strings.Contains(log.String(), "trying on-demand dl1.24xlarge in us-east-1b") {
		t.Errorf("log does not say why the zone changed:\n%s", log)
	}
	if res.Outputs["stack_name"] == "" {
		t.Errorf("outputs %v", res.Outputs)
	}
}

func TestProvisionAllZonesWithoutCapacity(t *testing.T) {
	e := newEnv()
	e.cfn.noCapacity = map[string]bool{"us-east-1a": true, "us-east-1b": true, "us-east-1d": true}
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, log, _ := stepRun(nil)
	_, err := p.Run(context.Background(), sr)
	if !errors.Is(err, ErrInsufficientCapacity) {
		t.Fatalf("err = %v, want the capacity failure\n%s", err, log)
	}
	if len(e.cfn.creates) != 3 {
		t.Errorf("%d creates, want one per offered zone", len(e.cfn.creates))
	}
	if !strings.Contains(err.Error(), "every placement was tried: on-demand dl1.24xlarge in us-east-1a (no capacity), on-demand dl1.24xlarge in us-east-1b (no capacity), on-demand dl1.24xlarge in us-east-1d (no capacity)") {
		t.Errorf("error does not say which zones were tried: %v", err)
	}
}

// TestProvisionGivenZoneOrSubnet: a zone or subnet of the user's is used as
// given: no zone lookup, no move to another zone.
func TestProvisionGivenZoneOrSubnet(t *testing.T) {
	for _, with := range []map[string]any{{"availability_zone": "us-east-1a"}, {"subnet_id": "subnet-1"}} {
		e := newEnv()
		e.cfn.noCapacity = map[string]bool{"us-east-1a": true}
		p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
		sr, log, _ := stepRun(with)
		_, err := p.Run(context.Background(), sr)
		if with["availability_zone"] != nil && !errors.Is(err, ErrInsufficientCapacity) || with["subnet_id"] != nil && err != nil {
			t.Errorf("%v: err = %v\n%s", with, err, log)
		}
		if e.ec2.offers != 0 || len(e.cfn.creates) != 1 {
			t.Errorf("%v: %d offering queries, %d creates; want 0 and 1", with, e.ec2.offers, len(e.cfn.creates))
		}
	}
}

func TestProvisionNoZoneOffersType(t *testing.T) {
	e := newEnv()
	e.ec2.zones = nil
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(nil)
	_, err := p.Run(context.Background(), sr)
	if err == nil || !strings.Contains(err.Error(), "no availability zone of region us-east-1 offers dl1.24xlarge") {
		t.Fatalf("err = %v", err)
	}
	if len(e.cfn.creates) != 0 {
		t.Error("a stack was created without a zone that offers the type")
	}
}

// TestProvisionDataBucketAndKey: data_bucket may be the dataset's s3:// URL
// (the specs pass msd_source); the template gets its bucket. The results
// bucket's KMS key goes to the template as given.
func TestProvisionDataBucketAndKey(t *testing.T) {
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for in, want := range map[string]string{"s3://msd-mirror/Task01/Task01_BrainTumour.tar": "msd-mirror", "plain-bucket": "plain-bucket", "": ""} {
		e := newEnv()
		p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
		sr, log, _ := stepRun(map[string]any{"data_bucket": in, "results_kms_key": key})
		if _, err := p.Run(context.Background(), sr); err != nil {
			t.Fatalf("%q: %v\n%s", in, err, log)
		}
		got := createParams(e.cfn.creates[0])
		if got["DataBucket"] != want || got["ResultsKmsKeyArn"] != key {
			t.Errorf("data_bucket %q: DataBucket %q, key %q; want %q", in, got["DataBucket"], got["ResultsKmsKeyArn"], want)
		}
	}
	e := newEnv()
	p := &Provision{Clients: e.clients, Clock: e.clock.clock()}
	sr, _, _ := stepRun(map[string]any{"data_bucket": "https://example.com/x.tar"})
	if _, err := p.Run(context.Background(), sr); err == nil || !strings.Contains(err.Error(), "with.data_bucket") {
		t.Errorf("err = %v, want a with.data_bucket error", err)
	}
}

// TestFakesRejectWhatAWSRejects: the Go-level fakes hold provision-stack to
// CloudFormation's and EC2's input rules (sources in awsfake/cfnrules.go and
// on fakeEC2); each case breaks one rule.
func TestFakesRejectWhatAWSRejects(t *testing.T) {
	e := newEnv()
	body := "Resources:\n  R: {Type: AWS::SNS::Topic}\n"
	ok := func() *cloudformation.CreateStackInput {
		return &cloudformation.CreateStackInput{StackName: aws.String("s"), TemplateBody: aws.String(body), ClientRequestToken: aws.String("t-1")}
	}
	tooMany := make([]types.Tag, 51)
	for i := range tooMany {
		tooMany[i] = types.Tag{Key: aws.String(strings.Repeat("k", i+1)), Value: aws.String("v")}
	}
	for name, edit := range map[string]func(*cloudformation.CreateStackInput){
		"token with _": func(in *cloudformation.CreateStackInput) { in.ClientRequestToken = aws.String("gpipe_run") },
		"token of 129": func(in *cloudformation.CreateStackInput) {
			in.ClientRequestToken = aws.String(strings.Repeat("t", 129))
		},
		"name with digit": func(in *cloudformation.CreateStackInput) { in.StackName = aws.String("1stack") },
		"name of 129":     func(in *cloudformation.CreateStackInput) { in.StackName = aws.String(strings.Repeat("s", 129)) },
		"tag key of 129": func(in *cloudformation.CreateStackInput) {
			in.Tags = []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}
		},
		"tag value of 257": func(in *cloudformation.CreateStackInput) {
			in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}
		},
		"empty tag value": func(in *cloudformation.CreateStackInput) {
			in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String("")}}
		},
		"51 tags": func(in *cloudformation.CreateStackInput) { in.Tags = tooMany },
		"template over 51200": func(in *cloudformation.CreateStackInput) {
			in.TemplateBody = aws.String(body + "# " + strings.Repeat("x", 51200))
		},
		"undeclared parameter": func(in *cloudformation.CreateStackInput) {
			in.Parameters = []types.Parameter{{ParameterKey: aws.String("Nope"), ParameterValue: aws.String("x")}}
		},
	} {
		in := ok()
		edit(in)
		if _, err := e.cfn.CreateStack(context.Background(), in); err == nil {
			t.Errorf("%s: CreateStack accepted it", name)
		}
	}
	if _, err := e.cfn.CreateStack(context.Background(), ok()); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	_, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("nmae"), Values: []string{"x"}}}})
	if err == nil || !strings.Contains(err.Error(), "InvalidParameterValue") {
		t.Errorf("misspelled image filter: err = %v", err)
	}
	_, err = e.ec2.DescribeInstanceTypeOfferings(context.Background(), &ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters: []ec2types.Filter{{Name: aws.String("instance-types"), Values: []string{"dl1.24xlarge"}}}})
	if err == nil {
		t.Error("misspelled offering filter accepted")
	}
	im, err := e.ec2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"*SynapseAI 1.9*"}}}})
	if err != nil || len(im.Images) != 1 || aws.ToString(im.Images[0].ImageId) != "ami-old" {
		t.Errorf("name filter not applied: %v %v", im, err)
	}
}

// TestFakeCapabilitiesFromTemplate: GetTemplateSummary derives what
// CreateStack must acknowledge from the template (CloudFormation API
// Reference, CreateStack, Capabilities), and CreateStack enforces it.
func TestFakeCapabilitiesFromTemplate(t *testing.T) {
	e := newEnv()
	for body, want := range map[string]string{
		"Resources:\n  T: {Type: AWS::SNS::Topic}\n":                                                             "",
		"Resources:\n  R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {}}}\n":                  "CAPABILITY_IAM",
		"Resources:\n  R: {Type: AWS::IAM::Role, Properties: {RoleName: fixed, AssumeRolePolicyDocument: {}}}\n": "CAPABILITY_NAMED_IAM",
	} {
		sum, err := e.cfn.GetTemplateSummary(context.Background(), &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, c := range sum.Capabilities {
			got += string(c)
		}
		if got != want {
			t.Errorf("%q: capabilities %q, want %q", body, got, want)
		}
		if want == "CAPABILITY_NAMED_IAM" {
			_, err := e.cfn.CreateStack(context.Background(), &cloudformation.CreateStackInput{StackName: aws.String("named"),
				TemplateBody: aws.String(body), Capabilities: []types.Capability{types.CapabilityCapabilityIam}})
			if err == nil || !strings.Contains(err.Error(), "InsufficientCapabilities") {
				t.Errorf("CAPABILITY_IAM accepted for a named role: %v", err)
			}
		}
	}
}
