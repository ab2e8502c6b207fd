package cfn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// TeardownStep is the teardown step: with.stack (a name or id; usually
// ${{ steps.provision.outputs.stack_name }}), region, empty_buckets (default
// true). An empty stack deletes every stack tagged with this run's id, so a
// teardown still cleans up when the provision step failed before reporting
// its outputs. Outputs: deleted (comma-separated names of the stacks that are
// gone), deleted_at (when every stack was gone; absent after a failure), and
// not_deleted (the stacks it could not delete).
type TeardownStep struct {
	Clients ClientsFor
	Clock   Clock
}

func (t *TeardownStep) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	c, err := param.Decode(TypeTeardown, sr.With, decodeTeardown)
	if err != nil {
		return pipeline.Result{}, err
	}
	stack, empty := c.Stack, c.EmptyBuckets
	cl, err := t.Clients(ctx, c.Region)
	if err != nil {
		return pipeline.Result{}, err
	}
	stacks := []string{stack}
	if stack == "" {
		found, err := ListGpipeStacks(ctx, cl.CFN)
		if err != nil {
			return pipeline.Result{}, err
		}
		stacks = stacks[:0]
		for _, s := range found {
			if s.RunID == sr.RunID && s.Status != string(types.StackStatusDeleteComplete) {
				stacks = append(stacks, s.Name)
			}
		}
		if len(stacks) == 0 {
			fmt.Fprintf(sr.Log, "no stack of run %s to delete\n", sr.RunID)
		}
	}
	// Only stacks that are gone go into the outputs: a teardown that failed
	// must not look like one that deleted everything.
	var errs []error
	var deleted, failed []string
	for _, s := range stacks {
		if err := Teardown(ctx, cl, TeardownOptions{EmptyBuckets: empty, Log: sr.Log, Clock: t.Clock}, s); err != nil {
			errs = append(errs, err)
			failed = append(failed, s)
			continue
		}
		deleted = append(deleted, s)
	}
	out := map[string]string{"deleted": strings.Join(deleted, ",")}
	if len(failed) > 0 {
		out["not_deleted"] = strings.Join(failed, ",")
	} else {
		// When the last stack was seen gone: cost estimates end there.
		out[OutputDeletedAt] = t.Clock.withDefaults().Now().UTC().Format(time.RFC3339)
	}
	return pipeline.Result{Outputs: out}, errors.Join(errs...)
}

// OutputDeletedAt is the teardown output that says when its stacks were
// gone (RFC 3339); it is set only when every stack was deleted.
const OutputDeletedAt = "deleted_at"

// TeardownOptions tune Teardown.
type TeardownOptions struct {
	EmptyBuckets bool      // delete every object version in buckets the stack owns first
	Log          io.Writer // progress lines; nil discards
	Clock        Clock
}

// Teardown deletes a stack and waits until it is gone. It first empties the S3
// buckets the stack owns (CloudFormation cannot delete a non-empty bucket). A
// stack that does not exist is success; a stack still being created is
// deleted all the same (Ctrl-C during CREATE_IN_PROGRESS); DELETE_FAILED is a
// *StackFailedError naming the resource that could not be deleted.
func Teardown(ctx context.Context, cl *Clients, opt TeardownOptions, stack string) error {
	clock := opt.Clock.withDefaults()
	log := opt.Log
	if log == nil {
		log = io.Discard
	}
	st, err := describe(ctx, cl.CFN, clock, stack)
	if errors.Is(err, ErrStackNotFound) {
		fmt.Fprintf(log, "stack %s does not exist: nothing to delete\n", stack)
		return nil
	}
	if err != nil {
		return err
	}
	if st.StackStatus == types.StackStatusDeleteComplete {
		return nil
	}
	id := aws.ToString(st.StackId)
	if opt.EmptyBuckets {
		if err := emptyStackBuckets(ctx, cl, stack, log); err != nil {
			return err
		}
	}
	return deleteAndWait(ctx, cl, clock, id, log)
}

// deleteAndWait deletes a stack (by id, so a new stack of the same name is
// never touched) and waits for DELETE_COMPLETE.
func deleteAndWait(ctx context.Context, cl *Clients, clock Clock, id string, log io.Writer) error {
	ev := newEventStream(cl.CFN, id, log, time.Time{})
	// Without the stack's events, fall back to a local cut-off generous
	// enough for any sane clock skew.
	ev.mark(ctx, clock.Now().Add(-5*time.Minute))
	fmt.Fprintf(log, "deleting stack %s\n", id)
	b := newBackoff(firstPoll, maxPoll)
	for busy := 0; ; {
		_, err := cl.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)})
		switch {
		case err == nil:
		case isNotFound(err):
			return nil
		case isThrottle(err):
			if err := b.wait(ctx, clock); err != nil {
				return fmt.Errorf("delete stack %s: %w", id, err)
			}
			continue
		case isInProgress(err) && busy < 5:
			// A rollback or an update must finish before the stack can be
			// deleted: wait for it (with its events), then delete.
			busy++
			fmt.Fprintf(log, "stack %s is busy; waiting for it to settle before deleting it\n", id)
			if _, err := waitSettled(ctx, cl.CFN, clock, id, ev); err != nil {
				if errors.Is(err, ErrStackNotFound) {
					return nil
				}
				return err
			}
			continue
		default:
			return fmt.Errorf("delete stack %s: %w", id, err)
		}
		break
	}
	st, err := waitSettled(ctx, cl.CFN, clock, id, ev)
	if errors.Is(err, ErrStackNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch st.StackStatus {
	case types.StackStatusDeleteComplete:
		fmt.Fprintf(log, "stack %s deleted\n", aws.ToString(st.StackName))
		return nil
	case types.StackStatusDeleteFailed:
		f := ev.failure(st)
		f.Reason += "; fix or remove that resource by hand, then run `gpipe teardown` again"
		return f
	}
	return fmt.Errorf("delete stack %s: ended in %s", id, st.StackStatus)
}

func emptyStackBuckets(ctx context.Context, cl *Clients, stack string, log io.Writer) error {
	var token *string
	for {
		out, err := cl.CFN.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack), NextToken: token})
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list resources of stack %s: %w", stack, err)
		}
		for _, r := range out.StackResourceSummaries {
			if aws.ToString(r.ResourceType) != "AWS::S3::Bucket" || aws.ToString(r.PhysicalResourceId) == "" ||
				r.ResourceStatus == types.ResourceStatusDeleteComplete {
				continue
			}
			if err := EmptyBucket(ctx, cl.S3, aws.ToString(r.PhysicalResourceId), log); err != nil {
				return fmt.Errorf("empty bucket of stack %s: %w", stack, err)
			}
		}
		if out.NextToken == nil {
			return nil
		}
		token = out.NextToken
	}
}

// EmptyBucket deletes every object version and delete marker in a bucket. A
// bucket that does not exist (yet, or any more) is already empty.
func EmptyBucket(ctx context.Context, api S3, bucket string, log io.Writer) error {
	var keyMarker, versionMarker *string
	total := 0
	for {
		out, err := api.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), KeyMarker: keyMarker, VersionIdMarker: versionMarker})
		var nsb *s3types.NoSuchBucket
		if errors.As(err, &nsb) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list object versions in %s: %w", bucket, err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range out.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range out.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) > 0 {
			res, err := api.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
			if err != nil {
				return fmt.Errorf("delete objects in %s: %w", bucket, err)
			}
			if len(res.Errors) > 0 {
				e := res.Errors[0]
				return fmt.Errorf("delete %s in %s: %s: %s (and %d more)", aws.ToString(e.Key), bucket, aws.ToString(e.Code), aws.ToString(e.Message), len(res.Errors)-1)
			}
			total += len(ids)
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		keyMarker, versionMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	fmt.Fprintf(log, "emptied bucket %s (%d object versions deleted)\n", bucket, total)
	return nil
}
