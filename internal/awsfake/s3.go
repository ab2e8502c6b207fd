package awsfake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// The buckets a stack owns live on a real S3 server (Options.S3Endpoint):
// CloudFormation creates an AWS::S3::Bucket there and deletes it there, so a
// bucket that still holds objects fails its deletion with S3's own
// BucketNotEmpty, which the stack reports as DELETE_FAILED (CloudFormation
// User Guide, "Troubleshooting: Delete stack fails": "the bucket must be
// empty"; S3 API Reference, DeleteBucket, "BucketNotEmpty").

func (s *Server) s3Client() *s3.Client {
	if s.s3Endpoint == "" {
		return nil
	}
	return s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(s.s3Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.key[0], s.key[1], "")})
}

// createBucket is the AWS::S3::Bucket handler's create; "" when it worked.
func (c *CloudFormation) createBucket(name string) string {
	cl := c.s.s3Client()
	if cl == nil {
		c.s.violation("stack creates bucket %s but the fake has no S3 endpoint (Options.S3Endpoint)", name)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return s3Reason(err)
	}
	return ""
}

// deleteBucket is the handler's delete; "" when the bucket is gone.
func (c *CloudFormation) deleteBucket(name string) string {
	cl := c.s.s3Client()
	if cl == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return ""
	}
	return s3Reason(err)
}

// s3Reason words an S3 error as CloudFormation's resource event does: the
// service's message, then service, status code and request ids.
func s3Reason(err error) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	status := 400
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	msg := ae.ErrorMessage()
	if ae.ErrorCode() == "BucketNotEmpty" {
		msg = "The bucket you tried to delete is not empty" // S3's own message for the code
	}
	return fmt.Sprintf("%s (Service: S3, Status Code: %d, Request ID: 0000000000000000, Extended Request ID: 0000) (Error Code: %s)", msg, status, ae.ErrorCode())
}
