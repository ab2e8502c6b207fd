package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// bucketTemplate is a user template whose stack owns a bucket: CloudFormation
// cannot delete it while it holds objects, so teardown empties it first.
const bucketTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  RunId: {Type: String, MinLength: 1}
  ImageId: {Type: "AWS::EC2::Image::Id"}
Resources:
  Results:
    Type: AWS::S3::Bucket
  Instance:
    Type: AWS::EC2::Instance
    Properties: {ImageId: {Ref: ImageId}, InstanceType: dl1.24xlarge}
Outputs:
  InstanceId: {Value: {Ref: Instance}}
  ResultsBucket: {Value: {Ref: Results}}
`

// TestWireTeardownEmptiesStackBucket runs teardown with S3 on a real S3
// server (versitygw) named by AWS_ENDPOINT_URL_S3, the rest on the fake: the
// per-service endpoint and path-style addressing of the runner's S3 client
// are what an emulator such as LocalStack needs too.
func TestWireTeardownEmptiesStackBucket(t *testing.T) {
	gw := testtool.Versitygw(t)
	clock := &testClock{now: wireBase}
	srv := awsfake.New(t, awsfake.Options{Now: clock.Now, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey, S3Endpoint: gw.Endpoint})
	srv.EC2.AddImage(awsfake.Image{ID: "ami-0bbb", Name: "Deep Learning AMI Habana PyTorch 2.0 SynapseAI 1.11 (Ubuntu 20.04) 20230801",
		Owner: "amazon", Created: "2023-08-01T00:00:00.000Z", RootDevice: "/dev/xvda"})
	srv.SSM.SetParameter(strings.TrimPrefix(cfn.DefaultAMI, "resolve:ssm:"), "ami-0bbb")
	t.Setenv("AWS_ENDPOINT_URL_S3", gw.Endpoint)
	steps := New(Options{
		LoadConfig: func(ctx context.Context, region string) (sdkaws.Config, error) {
			cfg := srv.Config(http.DefaultTransport)
			// The service-specific endpoint comes from the environment, as
			// config.LoadDefaultConfig would read it.
			cfg.ConfigSources = append(cfg.ConfigSources, config.EnvConfig{})
			return cfg, nil
		},
		Clock: cfn.Clock{Now: clock.Now, Sleep: clock.Sleep},
	})
	tmpl := filepath.Join(t.TempDir(), "bucket.yaml")
	if err := os.WriteFile(tmpl, []byte(bucketTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	sr, log, _ := stepRun(wireRun, "provision", map[string]any{"template": tmpl})
	res, err := steps.ProvisionStack().Run(t.Context(), sr)
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, log)
	}
	f := srv.CFN.Creates()[0]
	if f.Get("Parameters.member.1.ParameterKey") != "ImageId" || f.Get("Parameters.member.2.ParameterKey") != "RunId" ||
		f.Get("Parameters.member.3.ParameterKey") != "" || f.Get("Capabilities.member.1") != "" {
		t.Errorf("a user template got parameters or capabilities it does not declare: %v", f)
	}
	bucket := srv.CFN.Stacks()[0].Resources["Results"]
	if bucket == "" || res.Outputs["results_bucket"] != bucket {
		t.Fatalf("bucket %q, outputs %v", bucket, res.Outputs)
	}
	cl, err := steps.Clients(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	s3c := cl.S3.(*s3.Client)
	if !s3c.Options().UsePathStyle {
		t.Error("S3 client on a custom endpoint does not use path-style addressing")
	}
	for i := range 5 {
		_, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: sdkaws.String(fmt.Sprintf("fold-%d/ckpt.pt", i)),
			Body: strings.NewReader("weights")})
		if err != nil {
			t.Fatalf("put: %v", err)
		}
	}

	// Deleting the stack without emptying its bucket fails as in AWS:
	// DELETE_FAILED, with S3's reason on the bucket.
	err = cfn.Teardown(t.Context(), cl, cfn.TeardownOptions{Clock: cfn.Clock{Now: clock.Now, Sleep: clock.Sleep}}, res.Outputs["stack_name"])
	var fe *cfn.StackFailedError
	if !errors.As(err, &fe) || fe.Status != "DELETE_FAILED" || fe.Resource != "Results" ||
		!strings.Contains(fe.Reason, "The bucket you tried to delete is not empty") || !strings.Contains(fe.Reason, "Status Code: 409") {
		t.Fatalf("raw delete of a stack with a full bucket: err = %v", err)
	}

	tsr, tlog, _ := stepRun(wireRun, "teardown", map[string]any{"stack": res.Outputs["stack_name"]})
	if _, err := steps.Teardown().Run(t.Context(), tsr); err != nil {
		t.Fatalf("teardown: %v\n%s", err, tlog)
	}
	// CloudFormation deleted the emptied bucket with the stack.
	var nsb *s3types.NoSuchBucket
	if _, err := s3c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &bucket}); !errors.As(err, &nsb) {
		t.Fatalf("bucket after teardown: err = %v, want NoSuchBucket", err)
	}
	if !strings.Contains(tlog.String(), "emptied bucket "+bucket+" (5 object versions deleted)") {
		t.Errorf("teardown log:\n%s", tlog)
	}
	if st := srv.CFN.Stacks()[0].Status; st != "DELETE_COMPLETE" {
		t.Errorf("stack %s", st)
	}
}
