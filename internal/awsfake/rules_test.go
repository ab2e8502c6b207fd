package awsfake

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

const topicTemplate = "Resources:\n  T: {Type: AWS::SNS::Topic}\n"

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestCreateStackInputRules: CreateStack refuses what CloudFormation refuses
// (rules and sources in cfnrules.go) with a ValidationError.
func TestCreateStackInputRules(t *testing.T) {
	srv := New(t, Options{})
	cf := cloudformation.NewFromConfig(srv.Config(nil))
	tags51 := make([]cfntypes.Tag, 51)
	for i := range tags51 {
		tags51[i] = cfntypes.Tag{Key: aws.String("k" + strings.Repeat("x", i)), Value: aws.String("v")}
	}
	for name, edit := range map[string]func(*cloudformation.CreateStackInput){
		"token with _": func(in *cloudformation.CreateStackInput) { in.ClientRequestToken = aws.String("run_1") },
		"token of 129 characters": func(in *cloudformation.CreateStackInput) {
			in.ClientRequestToken = aws.String(strings.Repeat("a", 129))
		},
		"token starting with -": func(in *cloudformation.CreateStackInput) { in.ClientRequestToken = aws.String("-a") },
		"stack name with .":     func(in *cloudformation.CreateStackInput) { in.StackName = aws.String("a.b") },
		"stack name of 129":     func(in *cloudformation.CreateStackInput) { in.StackName = aws.String(strings.Repeat("s", 129)) },
		"tag key of 129": func(in *cloudformation.CreateStackInput) {
			in.Tags = []cfntypes.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}
		},
		"tag value of 257": func(in *cloudformation.CreateStackInput) {
			in.Tags = []cfntypes.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}
		},
		"empty tag value": func(in *cloudformation.CreateStackInput) {
			in.Tags = []cfntypes.Tag{{Key: aws.String("k"), Value: aws.String("")}}
		},
		"aws: tag key": func(in *cloudformation.CreateStackInput) {
			in.Tags = []cfntypes.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}
		},
		"51 tags": func(in *cloudformation.CreateStackInput) { in.Tags = tags51 },
		"template of 51201 bytes": func(in *cloudformation.CreateStackInput) {
			in.TemplateBody = aws.String(topicTemplate + "#" + strings.Repeat("x", MaxTemplateBody-len(topicTemplate)) + "\n")
		},
	} {
		in := &cloudformation.CreateStackInput{StackName: aws.String("s"), TemplateBody: aws.String(topicTemplate), ClientRequestToken: aws.String("tok-1")}
		edit(in)
		if _, err := cf.CreateStack(t.Context(), in); code(err) != "ValidationError" {
			t.Errorf("%s: err = %v, want ValidationError", name, err)
		}
	}
	ok := &cloudformation.CreateStackInput{StackName: aws.String("s"), TemplateBody: aws.String(topicTemplate), ClientRequestToken: aws.String(strings.Repeat("a", 128)),
		Tags: []cfntypes.Tag{{Key: aws.String(strings.Repeat("k", 128)), Value: aws.String(strings.Repeat("v", 256))}}}
	if _, err := cf.CreateStack(t.Context(), ok); err != nil {
		t.Errorf("a request at the limits was refused: %v", err)
	}
}

// TestCapabilitiesDerived: GetTemplateSummary reports CAPABILITY_IAM for IAM
// resources and CAPABILITY_NAMED_IAM when they have custom names, and
// CreateStack insists on it.
func TestCapabilitiesDerived(t *testing.T) {
	srv := New(t, Options{})
	cf := cloudformation.NewFromConfig(srv.Config(nil))
	named := "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties: {RoleName: fixed, AssumeRolePolicyDocument: {}}\n"
	for body, want := range map[string]string{topicTemplate: "",
		"Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties: {AssumeRolePolicyDocument: {}}\n": "CAPABILITY_IAM", named: "CAPABILITY_NAMED_IAM"} {
		sum, err := cf.GetTemplateSummary(t.Context(), &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String(body)})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, c := range sum.Capabilities {
			got += string(c)
		}
		if got != want {
			t.Errorf("%q: %q, want %q", body, got, want)
		}
	}
	_, err := cf.CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("n"), TemplateBody: aws.String(named),
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam}})
	if code(err) != "InsufficientCapabilitiesException" {
		t.Errorf("CAPABILITY_IAM for a named role: err = %v", err)
	}
}

// TestEC2Filters: filter names are checked against EC2's documented ones
// and applied; DescribeInstanceTypeOfferings answers the configured zones.
func TestEC2Filters(t *testing.T) {
	srv := New(t, Options{})
	srv.EC2.AddImage(Image{ID: "ami-1", Name: "Deep Learning AMI Habana 1.21 Ubuntu 22.04", Owner: "amazon"})
	srv.EC2.AddImage(Image{ID: "ami-2", Name: "Something else", Owner: "amazon"})
	srv.EC2.Offer("dl1.24xlarge", "us-east-1b", "us-east-1c")
	c := ec2.NewFromConfig(srv.Config(nil))
	f := func(name string, values ...string) []ec2types.Filter {
		return []ec2types.Filter{{Name: aws.String(name), Values: values}}
	}
	if _, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{Filters: f("nmae", "x")}); code(err) != "InvalidParameterValue" {
		t.Errorf("misspelled filter: err = %v", err)
	}
	im, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{Filters: f("name", "*Habana*")})
	if err != nil || len(im.Images) != 1 || aws.ToString(im.Images[0].ImageId) != "ami-1" {
		t.Errorf("name filter: %v, %v", im, err)
	}
	if _, err := c.DescribeInstanceTypeOfferings(t.Context(), &ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters: f("instance_type", "dl1.24xlarge")}); code(err) != "InvalidParameterValue" {
		t.Errorf("misspelled offering filter: err = %v", err)
	}
	out, err := c.DescribeInstanceTypeOfferings(t.Context(), &ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters: f("instance-type", "dl1.24xlarge")})
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for _, o := range out.InstanceTypeOfferings {
		zones = append(zones, aws.ToString(o.Location))
	}
	if strings.Join(zones, ",") != "us-east-1b,us-east-1c" {
		t.Errorf("zones %v", zones)
	}
	none, err := c.DescribeInstanceTypeOfferings(t.Context(), &ec2.DescribeInstanceTypeOfferingsInput{LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters: f("instance-type", "p5.48xlarge")})
	if err != nil || len(none.InstanceTypeOfferings) != 0 {
		t.Errorf("unoffered type: %v %v", none, err)
	}
}
