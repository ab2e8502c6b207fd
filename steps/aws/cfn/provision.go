package cfn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/aws/template"
)

// Resume keys provision-stack saves.
const (
	ResumeStackName = "stack_name"
	ResumeStackID   = "stack_id"
)

// Defaults of provision-stack's with values (the schema says the same).
const (
	DefaultInstanceType = "dl1.24xlarge"
	DefaultMaxLifetime  = 24 * time.Hour
	DefaultIdleTimeout  = 30 * time.Minute
)

// Provision is the provision-stack step.
type Provision struct {
	Clients ClientsFor
	Clock   Clock
	// Prices returns the on-demand price of an instance type in a region,
	// for Bill; nil knows none.
	Prices func(instanceType, region string) (float64, bool)
	// SpotDiscount is the fraction of the on-demand price a spot instance is
	// assumed to save when the step gives no spot_price (Bill).
	SpotDiscount float64
}

// Run creates (or, on resume, finds) the stack and returns its outputs:
// instance_id, host (ssm:<instance id>), availability_zone, private_ip,
// region, stack_name, stack_id, data_bucket, results_bucket, ssm_log_group,
// plus every other template output in snake_case.
//
// When ctx is cancelled during creation, Run returns at once and leaves the
// stack to the spec's teardown step (if: always()), which deletes a stack
// still in CREATE_IN_PROGRESS. The returned Result carries stack_name even
// with an error, for engines that keep a failed step's outputs.
func (p *Provision) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	clock := p.Clock.withDefaults()
	// All of with is decoded before the first AWS call: a bad value fails
	// the step at once, and permanently (no retry can fix it).
	c, err := decodeProvisionWith(sr.With)
	if err != nil {
		return pipeline.Result{}, err
	}
	name := c.StackName
	if name == "" {
		name = sr.Resume[ResumeStackName]
	}
	if name == "" {
		name = StackName(sr.RunID, sr.StepID)
	}
	partial := pipeline.Result{Outputs: map[string]string{"stack_name": name}}
	cl, err := p.Clients(ctx, c.Region)
	if err != nil {
		return partial, err
	}

	pl := newPlacer(c)
	replaced := false
	for try := 0; try < maxCreates; try++ {
		st, err := describe(ctx, cl.CFN, clock, name)
		if errors.Is(err, ErrStackNotFound) {
			if err := p.create(ctx, sr, cl, c, name, try, pl); err != nil {
				return partial, err
			}
			continue
		}
		if err != nil {
			return partial, err
		}
		if owner := tag(st, "gpipe:run-id"); owner != "" && owner != sr.RunID {
			return partial, fmt.Errorf("stack %s belongs to run %s, not %s: choose another stack_name", name, owner, sr.RunID)
		}
		if sr.Replace != "" && !replaced && stackOutputs(st)["host"] == sr.Replace {
			// The engine reruns this step because the stack's instance was
			// lost (spot interruption, termination): a stack with a dead
			// instance cannot be repaired, so it goes, and the next one
			// tries the zone that lost it last.
			replaced = true
			zone := stackOutputs(st)["availability_zone"]
			pl.avoid = zone
			fmt.Fprintf(sr.Log, "the instance of stack %s (%s%s) was lost; deleting the stack to create it again\n", name, sr.Replace, inZone(zone))
			if err := deleteAndWait(ctx, cl, clock, aws.ToString(st.StackId), sr.Log); err != nil {
				return partial, fmt.Errorf("replace stack %s: %w", name, err)
			}
			continue
		}
		fmt.Fprintf(sr.Log, "stack %s: %s\n", name, st.StackStatus)
		ev := newEventStream(cl.CFN, aws.ToString(st.StackId), sr.Log, clock.Now().Add(-time.Hour))
		watched := strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS")
		if watched {
			if st, err = waitSettled(ctx, cl.CFN, clock, aws.ToString(st.StackId), ev); err != nil {
				if errors.Is(err, ErrStackNotFound) {
					continue
				}
				return partial, err
			}
		}
		switch st.StackStatus {
		case types.StackStatusCreateComplete, types.StackStatusUpdateComplete, types.StackStatusUpdateRollbackComplete,
			types.StackStatusImportComplete:
			out := stackOutputs(st)
			if out["region"] == "" {
				out["region"] = cl.Region
			}
			if t, ok := launchTime(ctx, cl.CFN, aws.ToString(st.StackId)); ok {
				out[OutputLaunchTime] = t.UTC().Format(time.RFC3339)
			}
			return pipeline.Result{Outputs: out}, nil
		case types.StackStatusDeleteComplete:
			continue
		case types.StackStatusRollbackComplete, types.StackStatusRollbackFailed, types.StackStatusCreateFailed,
			types.StackStatusDeleteFailed:
			if len(ev.all) == 0 {
				ev.poll(ctx) // settled before we watched: read what happened
			}
			fail := ev.failure(st)
			if tried, next, ok := pl.afterFailure(fail); ok {
				fmt.Fprintf(sr.Log, "%s: %s (%s); deleting stack %s and trying %s\n", tried, why(fail), fail.Reason, name, next)
				if err := deleteAndWait(ctx, cl, clock, aws.ToString(st.StackId), sr.Log); err != nil {
					return partial, err
				}
				continue
			}
			if try > 0 || watched {
				// We created it in this attempt, or saw it fail (a resumed
				// run attaching to its creation): report, and let the step's
				// retry policy (or the user) decide about another try rather
				// than repeating a doomed creation behind their back.
				return partial, fail
			}
			// A stack left over from an earlier failed attempt cannot be updated
			// or re-created under its name: delete it, then create afresh.
			fmt.Fprintf(sr.Log, "stack %s is %s from an earlier attempt (%s); deleting it before creating it again\n", name, st.StackStatus, fail.Reason)
			if err := deleteAndWait(ctx, cl, clock, aws.ToString(st.StackId), sr.Log); err != nil {
				return partial, err
			}
		default:
			return partial, &StackInProgressError{Stack: name, Status: string(st.StackStatus)}
		}
	}
	return partial, fmt.Errorf("stack %s: gave up after %d tries to create it", name, maxCreates)
}

func inZone(zone string) string {
	if zone == "" {
		return ""
	}
	return " in " + zone
}

// OutputLaunchTime is the provision output that says when the stack's
// instance started running (RFC 3339); cost estimates count from it.
const OutputLaunchTime = "launch_time"

// launchTime is when the stack's instance started running, from the stack's
// events: the CREATE_COMPLETE of its AWS::EC2::Instance (CloudFormation
// reports an instance complete once EC2 says it is running), else, for a
// template without one, the stack's own CREATE_COMPLETE. Events are read
// newest first; the newest match is the instance that exists now. ok is false
// when the events cannot be read: the cost estimate then falls back to the
// step's end, which is never before the launch.
func launchTime(ctx context.Context, api CloudFormation, stackID string) (t time.Time, ok bool) {
	var stackDone *time.Time
	var token *string
	for page := 0; page < 20; page++ {
		out, err := api.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID), NextToken: token})
		if err != nil {
			return time.Time{}, false
		}
		for _, ev := range out.StackEvents {
			if ev.ResourceStatus != types.ResourceStatusCreateComplete || ev.Timestamp == nil {
				continue
			}
			switch aws.ToString(ev.ResourceType) {
			case "AWS::EC2::Instance":
				return *ev.Timestamp, true
			case "AWS::CloudFormation::Stack":
				if stackDone == nil {
					stackDone = ev.Timestamp
				}
			}
		}
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	if stackDone != nil {
		return *stackDone, true
	}
	return time.Time{}, false
}

// maxCreates bounds the creations of one Run: a few for stacks that vanish
// under us, plus one per zone tried after a capacity failure.
const maxCreates = 10

func tag(st *types.Stack, key string) string {
	for _, t := range st.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// create sends CreateStack and saves the stack name and id for resume as soon
// as it exists.
func (p *Provision) create(ctx context.Context, sr *pipeline.StepRun, cl *Clients, c *provisionConfig, name string, try int, pl *placer) error {
	body, params, err := p.templateAndParams(ctx, sr, cl, c)
	if err != nil {
		return err
	}
	sum, err := cl.CFN.GetTemplateSummary(ctx, &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String(body)})
	if err != nil {
		return fmt.Errorf("check template of stack %s: %w", name, err)
	}
	declared := map[string]bool{}
	for _, d := range sum.Parameters {
		declared[aws.ToString(d.ParameterKey)] = true
	}
	if pl.cands == nil {
		if err := pl.plan(ctx, cl, declared, sr.Log); err != nil {
			return err
		}
	}
	at, ok := pl.next()
	if !ok {
		return fmt.Errorf("stack %s: no placement left to try: %s", name, pl.summary())
	}
	pl.params(at, params, declared)
	pl.cur = &at
	fmt.Fprintf(sr.Log, "launching %s\n", at)
	var cfParams []types.Parameter
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// The built-in parameters are offered to any template; a user's
		// template gets only those it declares.
		if declared[k] {
			cfParams = append(cfParams, types.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
		}
	}
	tags := []types.Tag{
		{Key: aws.String("gpipe:run-id"), Value: aws.String(sr.RunID)},
		{Key: aws.String("gpipe:step"), Value: aws.String(sr.StepID)},
	}
	for _, k := range c.TagKeys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(c.Tags[k])})
	}
	in := &cloudformation.CreateStackInput{
		StackName:          aws.String(name),
		TemplateBody:       aws.String(body),
		Parameters:         cfParams,
		Capabilities:       sum.Capabilities,
		Tags:               tags,
		ClientRequestToken: aws.String(requestToken(sr.RunID, sr.StepID, strconv.Itoa(sr.Attempt), strconv.Itoa(try))),
		TimeoutInMinutes:   aws.Int32(60),
	}
	fmt.Fprintf(sr.Log, "creating stack %s\n", name)
	out, err := cl.CFN.CreateStack(ctx, in)
	if isAlreadyExists(err) {
		return nil // another attempt got there first: the caller finds and waits for it
	}
	if err != nil {
		return fmt.Errorf("create stack %s: %w", name, err)
	}
	if sr.SaveResume != nil {
		if err := sr.SaveResume(ctx, ResumeStackName, name); err != nil {
			return fmt.Errorf("save stack name %s: %w", name, err)
		}
		if err := sr.SaveResume(ctx, ResumeStackID, aws.ToString(out.StackId)); err != nil {
			return fmt.Errorf("save stack id of %s: %w", name, err)
		}
	}
	return nil
}

// templateAndParams returns the template body and the values of the built-in
// template's parameters (resolving the AMI and the subnet's VPC), merged with
// with.parameters, which win.
func (p *Provision) templateAndParams(ctx context.Context, sr *pipeline.StepRun, cl *Clients, c *provisionConfig) (string, map[string]string, error) {
	body := string(template.Template())
	if c.Template != "" {
		b, err := os.ReadFile(c.Template)
		if err != nil {
			return "", nil, fmt.Errorf("read template: %w", err)
		}
		body = string(b)
	}
	params := map[string]string{
		template.ParamIdleTimeoutMinutes: strconv.Itoa(int(math.Ceil(c.IdleTimeout.Minutes()))),
		template.ParamRunID:              sr.RunID,
		template.ParamStepID:             sr.StepID,
		template.ParamInstanceType:       c.InstanceType,
		template.ParamRootVolumeGiB:      strconv.Itoa(c.RootVolumeGiB),
		template.ParamMaxLifetimeMinutes: strconv.Itoa(max(10, int(math.Ceil(c.MaxLifetime.Minutes())))),
		template.ParamSubnetID:           c.SubnetID,
		template.ParamAvailabilityZone:   c.Zone,
		template.ParamDataBucket:         c.DataBucket,
		template.ParamResultsBucket:      c.ResultsBucket,
		template.ParamResultsKmsKey:      c.ResultsKMSKey,
	}
	if c.SubnetID != "" {
		vpc, err := subnetVPC(ctx, cl.EC2, c.SubnetID)
		if err != nil {
			return "", nil, err
		}
		params[template.ParamVpcID] = vpc
	}
	if _, ok := c.Parameters[template.ParamImageID]; !ok {
		img, err := resolveAMI(ctx, cl, c.AMI, c.AMIOwner)
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(sr.Log, "AMI %s (root device %s)\n", img.id, img.root)
		if img.name != "" || img.via != "" {
			fmt.Fprintf(sr.Log, "AMI %s is %q%s\n", img.id, img.name, img.via)
		}
		params[template.ParamImageID] = img.id
		params[template.ParamRootDeviceName] = img.root
	}
	for _, k := range c.ParameterKeys {
		params[k] = c.Parameters[k]
	}
	return body, params, nil
}

func subnetVPC(ctx context.Context, api EC2, subnet string) (string, error) {
	out, err := api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet}})
	if err != nil {
		return "", fmt.Errorf("describe subnet %s: %w", subnet, err)
	}
	if len(out.Subnets) == 0 {
		return "", fmt.Errorf("subnet %s not found in this region", subnet)
	}
	return aws.ToString(out.Subnets[0].VpcId), nil
}

// KeyOutputs are the outputs a report shows of a provision step: the
// instance it made and the stack to delete.
func (p *Provision) KeyOutputs() []string { return []string{"instance_id", ResumeStackName} }
