package msd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/awsconfig"
	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
)

// Executors picks the executor for a step's host.
type Executors = host.Picker

// ClientFunc makes the S3 client for a region; anonymous is set for the
// public MSD buckets.
type ClientFunc func(ctx context.Context, region string, anonymous bool) (S3API, error)

// Type is the step type name.
const Type = "fetch-msd"

// The official buckets (AWS Open Data registry, datasets/msd.yaml).
const (
	Bucket       = "msd-for-monai"
	BucketRegion = "us-west-2"
	MirrorBucket = "msd-for-monai-eu"
	MirrorRegion = "eu-west-2"
)

// FetchMSD is the fetch-msd step type.
type FetchMSD struct {
	Exec      Executors  // for hosts other than local
	NewClient ClientFunc // nil: the SDK's default configuration
}

// New returns the fetch-msd step type.
func New(ex Executors) *FetchMSD { return &FetchMSD{Exec: ex} }

// Run fetches in-process on the local host, and through a rendered AWS CLI
// script on any other host (see the package documentation for why).
func (f *FetchMSD) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	c, err := Decode(sr.With)
	if err != nil {
		return pipeline.Result{}, err
	}
	if !host.IsLocal(sr.Host.Address) {
		return f.runRemote(ctx, sr, c)
	}
	newClient := f.NewClient
	if newClient == nil {
		newClient = SDKClient
	}
	client, err := newClient(ctx, c.Region, c.Anonymous)
	if err != nil {
		return pipeline.Result{}, fmt.Errorf("%s: s3 client: %w", sr.StepID, err)
	}
	res, err := Fetch(ctx, client, Options{
		Bucket: c.Bucket, Key: c.Key, MD5: c.MD5, Dest: c.Dest, TaskName: c.Task.Name,
		Concurrency: c.Concurrency, PartSize: int64(c.PartSizeMiB) << 20, Log: sr.Log,
	})
	if err != nil {
		return pipeline.Result{}, fmt.Errorf("%s: %w", sr.StepID, err)
	}
	return pipeline.Result{Outputs: map[string]string{
		"data_dir":     res.DataDir,
		"num_training": strconv.Itoa(res.NumTraining),
		"num_test":     strconv.Itoa(res.NumTest),
		"md5":          res.MD5,
		"skipped":      strconv.FormatBool(res.Skipped),
	}}, nil
}

func (f *FetchMSD) runRemote(ctx context.Context, sr *pipeline.StepRun, c *Config) (pipeline.Result, error) {
	out, err := host.RunNamed(ctx, f.Exec, sr, c.render())
	if err != nil {
		return pipeline.Result{}, err
	}
	return pipeline.Result{Outputs: out}, nil
}

// Script implements pipeline.ScriptRenderer: the script an SSM host runs.
// On the local host the step runs in-process and the script is not used.
func (f *FetchMSD) Script(sr *pipeline.StepRun) (string, error) {
	c, err := Decode(sr.With)
	if err != nil {
		return "", err
	}
	if host.IsLocal(sr.Host.Address) {
		return "# fetch-msd runs in-process on the local host (ranged GETs, MD5 and extraction in Go);\n" +
			"# on a remote host it runs this script:\n" + c.render(), nil
	}
	return c.render(), nil
}

// SDKClient builds an S3 client with gpipe's AWS configuration
// (internal/awsconfig: environment, shared config, instance role,
// AWS_ENDPOINT_URL_S3 and friends, path-style addressing on a custom endpoint
// such as versitygw, MinIO or LocalStack). anonymous sends unsigned requests
// (the public MSD buckets). region "" is the SDK's; with none configured
// either, the error is awsconfig.ErrNoRegion.
func SDKClient(ctx context.Context, region string, anonymous bool) (S3API, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{
		Region: region, Anonymous: anonymous,
		// Keep a connection per parallel ranged GET (concurrency is at most
		// 64) instead of the transport's default of 10 idle per host.
		Transport: func(t *http.Transport) { t.MaxIdleConnsPerHost = 64 },
	})
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, awsconfig.S3Options(nil), func(o *s3.Options) {
		// Ranged GETs carry no full-object checksum; the MD5 is verified.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

func (c *Config) markerJSON() string {
	b, _ := json.Marshal(marker{Source: c.Source(), MD5: c.MD5})
	return string(b)
}
