package cfn

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/gpipe/gpipe/internal/awsfake"
)

// fakeCFN behaves like CloudFormation for one account and region: a stack
// moves one status further on every DescribeStacks call, records events as it
// goes (newest first, as the service returns them), rolls back with a reason
// when told to fail, and answers by name only while the stack is not deleted.
// It checks CreateStack's input and derives a template's capabilities with
// the wire fake's rules (awsfake.CheckCreateStack, awsfake.SummarizeTemplate,
// each naming its source in the CloudFormation API Reference).
type fakeCFN struct {
	mu       sync.Mutex
	stacks   []*fakeStack
	clock    func() time.Time
	seq      int
	throttle int // DescribeStacks calls to throttle before answering
	// failWith, when set, makes the next created stack's Instance fail with it.
	failWith    string
	deleteFails string // reason DeleteStack fails with
	// noCapacity lists zones whose instance launches fail with
	// InsufficientInstanceCapacity (the AvailabilityZone parameter decides).
	noCapacity map[string]bool
	creates    []*cloudformation.CreateStackInput
	deletes    int
	resources  []types.StackResourceSummary
	nextID     int
}

type fakeStack struct {
	name, id string
	tags     []types.Tag
	params   []types.Parameter
	path     []types.StackStatus // statuses still to come
	status   types.StackStatus
	events   []types.StackEvent // newest first
	outputs  []types.Output
	fail     string
	started  bool
}

func apiErr(code, msg string) error { return &smithy.GenericAPIError{Code: code, Message: msg} }

// tick timestamps events by the test's clock, a millisecond apart so they
// keep their order.
func (f *fakeCFN) tick() time.Time {
	f.seq++
	return f.clock().Add(time.Duration(f.seq) * time.Millisecond)
}

func (f *fakeCFN) event(s *fakeStack, logical, typ string, status types.ResourceStatus, reason string) {
	f.nextID++
	ev := types.StackEvent{EventId: aws.String(fmt.Sprintf("ev-%d", f.nextID)), StackName: aws.String(s.name), StackId: aws.String(s.id),
		LogicalResourceId: aws.String(logical), ResourceType: aws.String(typ), ResourceStatus: status, Timestamp: aws.Time(f.tick())}
	if reason != "" {
		ev.ResourceStatusReason = aws.String(reason)
	}
	s.events = append([]types.StackEvent{ev}, s.events...)
}

func (f *fakeCFN) find(name string) *fakeStack {
	for i := len(f.stacks) - 1; i >= 0; i-- {
		s := f.stacks[i]
		if s.id == name || s.name == name && s.status != types.StackStatusDeleteComplete {
			return s
		}
	}
	return nil
}

func notExist(name string) error {
	return apiErr("ValidationError", "Stack with id "+name+" does not exist")
}

func (f *fakeCFN) CreateStack(_ context.Context, in *cloudformation.CreateStackInput, _ ...func(*cloudformation.Options)) (*cloudformation.CreateStackOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.StackName)
	var tags [][2]string
	for _, t := range in.Tags {
		tags = append(tags, [2]string{aws.ToString(t.Key), aws.ToString(t.Value)})
	}
	if msg := awsfake.CheckCreateStack(name, aws.ToString(in.ClientRequestToken), aws.ToString(in.TemplateBody), tags); msg != "" {
		return nil, apiErr("ValidationError", msg)
	}
	sum, err := awsfake.SummarizeTemplate(aws.ToString(in.TemplateBody))
	if err != nil {
		return nil, apiErr("ValidationError", err.Error())
	}
	for _, need := range sum.Capabilities {
		if !slices.Contains(in.Capabilities, types.Capability(need)) && !slices.Contains(in.Capabilities, types.CapabilityCapabilityNamedIam) {
			return nil, apiErr("InsufficientCapabilitiesException", "Requires capabilities : ["+need+"]")
		}
	}
	for _, p := range in.Parameters {
		if !slices.Contains(sum.Params, aws.ToString(p.ParameterKey)) {
			return nil, apiErr("ValidationError", "Parameters: ["+aws.ToString(p.ParameterKey)+"] do not exist in the template")
		}
	}
	if s := f.find(name); s != nil {
		return nil, apiErr("AlreadyExistsException", "Stack ["+name+"] already exists")
	}
	f.creates = append(f.creates, in)
	s := &fakeStack{name: name, id: fmt.Sprintf("arn:aws:cloudformation:us-east-1:123456789012:stack/%s/%d", name, len(f.stacks)), tags: in.Tags,
		params: in.Parameters, status: types.StackStatusCreateInProgress, fail: f.failWith}
	f.failWith = ""
	for _, p := range in.Parameters {
		if z := aws.ToString(p.ParameterValue); aws.ToString(p.ParameterKey) == "AvailabilityZone" && f.noCapacity[z] && s.fail == "" {
			s.fail = "We currently do not have sufficient dl1.24xlarge capacity in the Availability Zone you requested (" + z + "). (Service: AmazonEC2; Status Code: 500; Error Code: InsufficientInstanceCapacity)"
		}
	}
	if s.fail != "" {
		s.path = []types.StackStatus{types.StackStatusCreateInProgress, types.StackStatusRollbackInProgress, types.StackStatusRollbackComplete}
	} else {
		s.path = []types.StackStatus{types.StackStatusCreateInProgress, types.StackStatusCreateInProgress,
			types.StackStatusCreateInProgress, types.StackStatusCreateComplete}
	}
	f.event(s, name, "AWS::CloudFormation::Stack", types.ResourceStatusCreateInProgress, "User Initiated")
	f.stacks = append(f.stacks, s)
	return &cloudformation.CreateStackOutput{StackId: aws.String(s.id)}, nil
}

// advance moves a stack one status on and records the events that go with it.
func (f *fakeCFN) advance(s *fakeStack) {
	if len(s.path) == 0 {
		return
	}
	next := s.path[0]
	s.path = s.path[1:]
	switch next {
	case types.StackStatusCreateInProgress:
		if !s.started {
			s.started = true
			f.event(s, "Instance", "AWS::EC2::Instance", types.ResourceStatusCreateInProgress, "")
		}
		return
	case types.StackStatusCreateComplete:
		f.event(s, "Instance", "AWS::EC2::Instance", types.ResourceStatusCreateComplete, "")
		s.outputs = []types.Output{
			{OutputKey: aws.String("InstanceId"), OutputValue: aws.String("i-0abc")},
			{OutputKey: aws.String("Host"), OutputValue: aws.String("ssm:i-0abc")},
			{OutputKey: aws.String("AvailabilityZone"), OutputValue: aws.String("us-east-1a")},
			{OutputKey: aws.String("Region"), OutputValue: aws.String("us-east-1")},
		}
	case types.StackStatusRollbackInProgress:
		f.event(s, "Instance", "AWS::EC2::Instance", types.ResourceStatusCreateFailed, s.fail)
		f.event(s, "InstanceProfile", "AWS::IAM::InstanceProfile", types.ResourceStatusCreateFailed, "Resource creation cancelled")
	case types.StackStatusDeleteFailed:
		f.event(s, "Bucket", "AWS::S3::Bucket", types.ResourceStatusDeleteFailed, f.deleteFails)
	}
	s.status = next
	f.event(s, s.name, "AWS::CloudFormation::Stack", types.ResourceStatus(next), "")
}

func (f *fakeCFN) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.throttle > 0 {
		f.throttle--
		return nil, apiErr("Throttling", "Rate exceeded")
	}
	if in.StackName == nil {
		var out []types.Stack
		for _, s := range f.stacks {
			if s.status != types.StackStatusDeleteComplete {
				out = append(out, f.view(s))
			}
		}
		return &cloudformation.DescribeStacksOutput{Stacks: out}, nil
	}
	s := f.find(aws.ToString(in.StackName))
	if s == nil {
		return nil, notExist(aws.ToString(in.StackName))
	}
	f.advance(s)
	return &cloudformation.DescribeStacksOutput{Stacks: []types.Stack{f.view(s)}}, nil
}

func (f *fakeCFN) view(s *fakeStack) types.Stack {
	return types.Stack{StackName: aws.String(s.name), StackId: aws.String(s.id), StackStatus: s.status, Tags: s.tags,
		Parameters: s.params, Outputs: s.outputs, CreationTime: aws.Time(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

func (f *fakeCFN) DescribeStackEvents(_ context.Context, in *cloudformation.DescribeStackEventsInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.find(aws.ToString(in.StackName))
	if s == nil {
		return nil, notExist(aws.ToString(in.StackName))
	}
	// Two events per page, so pagination is exercised.
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	end := min(start+2, len(s.events))
	out := &cloudformation.DescribeStackEventsOutput{StackEvents: append([]types.StackEvent(nil), s.events[start:end]...)}
	if end < len(s.events) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func (f *fakeCFN) DeleteStack(_ context.Context, in *cloudformation.DeleteStackInput, _ ...func(*cloudformation.Options)) (*cloudformation.DeleteStackOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	s := f.find(aws.ToString(in.StackName))
	if s == nil || s.status == types.StackStatusDeleteComplete || s.status == types.StackStatusDeleteInProgress {
		return &cloudformation.DeleteStackOutput{}, nil // DeleteStack is idempotent
	}
	// Deleting a stack in CREATE_IN_PROGRESS cancels the creation.
	s.status = types.StackStatusDeleteInProgress
	end := types.StackStatusDeleteComplete
	if f.deleteFails != "" {
		end = types.StackStatusDeleteFailed
	}
	s.path = []types.StackStatus{types.StackStatusDeleteInProgress, end}
	f.event(s, s.name, "AWS::CloudFormation::Stack", types.ResourceStatusDeleteInProgress, "User Initiated")
	return &cloudformation.DeleteStackOutput{}, nil
}

func (f *fakeCFN) ListStackResources(_ context.Context, in *cloudformation.ListStackResourcesInput, _ ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.find(aws.ToString(in.StackName)) == nil {
		return nil, notExist(aws.ToString(in.StackName))
	}
	return &cloudformation.ListStackResourcesOutput{StackResourceSummaries: f.resources}, nil
}

func (f *fakeCFN) GetTemplateSummary(_ context.Context, in *cloudformation.GetTemplateSummaryInput, _ ...func(*cloudformation.Options)) (*cloudformation.GetTemplateSummaryOutput, error) {
	sum, err := awsfake.SummarizeTemplate(aws.ToString(in.TemplateBody))
	if err != nil {
		return nil, apiErr("ValidationError", err.Error())
	}
	out := &cloudformation.GetTemplateSummaryOutput{}
	for _, p := range sum.Params {
		out.Parameters = append(out.Parameters, types.ParameterDeclaration{ParameterKey: aws.String(p)})
	}
	for _, c := range sum.Capabilities {
		out.Capabilities = append(out.Capabilities, types.Capability(c))
	}
	if sum.Reason != "" {
		out.CapabilitiesReason = aws.String(sum.Reason)
	}
	return out, nil
}

func (f *fakeCFN) status(name string) types.StackStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.stacks) - 1; i >= 0; i-- {
		if f.stacks[i].name == name {
			return f.stacks[i].status
		}
	}
	return ""
}

// fakeEC2 answers the reads provision-stack makes. Filter names are
// checked against EC2's documented ones (EC2 API Reference, DescribeImages
// and DescribeInstanceTypeOfferings, "Filters"; an unknown name is
// InvalidParameterValue) and applied as EC2 applies them.
type fakeEC2 struct {
	images []ec2types.Image
	zones  []string // zones offering dl1.24xlarge
	offers int      // DescribeInstanceTypeOfferings calls
}

func checkFilters(fs []ec2types.Filter, known ...string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, f := range fs {
		n := aws.ToString(f.Name)
		if !slices.Contains(known, n) {
			return nil, apiErr("InvalidParameterValue", "The filter '"+n+"' is invalid")
		}
		out[n] = append(out[n], f.Values...)
	}
	return out, nil
}

func matches(values []string, v string) bool {
	if len(values) == 0 {
		return true
	}
	for _, p := range values {
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

// fakeSSM is Parameter Store: GetParameter answers ParameterNotFound for a
// name it does not hold (SSM API reference, GetParameter).
type fakeSSM struct{ params map[string]string }

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	v, ok := f.params[aws.ToString(in.Name)]
	if !ok {
		return nil, apiErr("ParameterNotFound", "")
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v), Type: ssmtypes.ParameterTypeString}}, nil
}

func (f *fakeEC2) DescribeImages(_ context.Context, in *ec2.DescribeImagesInput, _ ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	if len(in.ImageIds) > 0 {
		for _, im := range f.images {
			if aws.ToString(im.ImageId) == in.ImageIds[0] {
				return &ec2.DescribeImagesOutput{Images: []ec2types.Image{im}}, nil
			}
		}
		return nil, apiErr("InvalidAMIID.NotFound", "The image id does not exist")
	}
	fs, err := checkFilters(in.Filters, "name", "state", "owner-alias", "owner-id", "image-id", "architecture")
	if err != nil {
		return nil, err
	}
	var out []ec2types.Image
	for _, im := range f.images {
		if matches(fs["name"], aws.ToString(im.Name)) && matches(fs["state"], "available") {
			out = append(out, im)
		}
	}
	return &ec2.DescribeImagesOutput{Images: out}, nil
}

func (f *fakeEC2) DescribeInstanceTypeOfferings(_ context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error) {
	f.offers++
	if in.LocationType != ec2types.LocationTypeAvailabilityZone {
		return nil, apiErr("InvalidParameterValue", "the fake models LocationType availability-zone only")
	}
	fs, err := checkFilters(in.Filters, "instance-type", "location")
	if err != nil {
		return nil, err
	}
	var out []ec2types.InstanceTypeOffering
	for _, z := range f.zones {
		if matches(fs["instance-type"], "dl1.24xlarge") && matches(fs["location"], z) {
			out = append(out, ec2types.InstanceTypeOffering{InstanceType: "dl1.24xlarge", LocationType: in.LocationType, Location: aws.String(z)})
		}
	}
	return &ec2.DescribeInstanceTypeOfferingsOutput{InstanceTypeOfferings: out}, nil
}

func (f *fakeEC2) DescribeSubnets(_ context.Context, in *ec2.DescribeSubnetsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return &ec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{{SubnetId: aws.String(in.SubnetIds[0]), VpcId: aws.String("vpc-1")}}}, nil
}

// fakeS3 holds object versions per bucket and pages them two at a time.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string][]s3types.ObjectVersion
}

func (f *fakeS3) ListObjectVersions(_ context.Context, in *s3.ListObjectVersionsInput, _ ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[aws.ToString(in.Bucket)]
	if !ok {
		return nil, &s3types.NoSuchBucket{}
	}
	page := objs[:min(2, len(objs))]
	out := &s3.ListObjectVersionsOutput{Versions: page, IsTruncated: aws.Bool(len(objs) > 2)}
	if len(objs) > 2 {
		out.NextKeyMarker, out.NextVersionIdMarker = objs[2].Key, objs[2].VersionId
	}
	return out, nil
}

func (f *fakeS3) DeleteObjects(_ context.Context, in *s3.DeleteObjectsInput, _ ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := aws.ToString(in.Bucket)
	keep := f.objects[b][:0]
	for _, o := range f.objects[b] {
		del := false
		for _, id := range in.Delete.Objects {
			if aws.ToString(id.Key) == aws.ToString(o.Key) && aws.ToString(id.VersionId) == aws.ToString(o.VersionId) {
				del = true
			}
		}
		if !del {
			keep = append(keep, o)
		}
	}
	f.objects[b] = keep
	return &s3.DeleteObjectsOutput{}, nil
}

// fakeClock never sleeps; it records the delays asked for.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	onWait func(n int) // called after each sleep; tests cancel contexts here
}

func (c *fakeClock) clock() Clock {
	return Clock{
		Now: func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			c.mu.Lock()
			c.slept = append(c.slept, d)
			c.now = c.now.Add(d)
			n := len(c.slept)
			hook := c.onWait
			c.mu.Unlock()
			if hook != nil {
				hook(n)
			}
			return ctx.Err()
		},
	}
}
