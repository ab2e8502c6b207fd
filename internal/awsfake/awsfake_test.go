package awsfake

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// recorder collects what the server reports at cleanup instead of failing
// the test, so the test can check that violations are caught.
type recorder struct {
	testing.TB
	errs     []string
	cleanups []func()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) finish() []string {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r.errs
}

// call makes one request of each protocol the fake speaks and returns the
// three errors: CloudFormation (query), EC2 (EC2 query), SSM (JSON).
func call(t *testing.T, cfg aws.Config) [3]error {
	t.Helper()
	_, e1 := cloudformation.NewFromConfig(cfg).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{})
	_, e2 := ec2.NewFromConfig(cfg).DescribeImages(t.Context(), &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	_, e3 := ssm.NewFromConfig(cfg).DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{})
	return [3]error{e1, e2, e3}
}

// TestSignatureChecked: a request with a bad signature or a date more than
// 15 minutes off is refused with the code each service answers (sources in
// sigv4.go), not served.
func TestSignatureChecked(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name  string
		clock func() time.Time // the service's clock
		edit  func(*aws.Config)
		want  [3]string // error codes: CloudFormation, EC2, SSM
	}{
		{"good", nil, func(*aws.Config) {}, [3]string{}},
		{"wrong secret", nil, func(c *aws.Config) { c.Credentials = credentials.NewStaticCredentialsProvider(AccessKey, "nope", "") },
			[3]string{"SignatureDoesNotMatch", "AuthFailure", "InvalidSignatureException"}},
		{"wrong region", nil, func(c *aws.Config) { c.Region = "eu-west-1" },
			[3]string{"SignatureDoesNotMatch", "AuthFailure", "InvalidSignatureException"}},
		{"request 20 minutes old", func() time.Time { return time.Now().Add(20 * time.Minute) }, func(*aws.Config) {},
			[3]string{"SignatureDoesNotMatch", "RequestExpired", "InvalidSignatureException"}},
		{"request 20 minutes ahead", func() time.Time { return time.Now().Add(-20 * time.Minute) }, func(*aws.Config) {},
			[3]string{"SignatureDoesNotMatch", "RequestExpired", "InvalidSignatureException"}},
		{"14 minutes is fine", func() time.Time { return now.Add(14 * time.Minute) }, func(*aws.Config) {}, [3]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			srv := New(rec, Options{RequestClock: tc.clock})
			srv.SSM.AddInstance("i-1", 0)
			cfg := srv.Config(nil)
			cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} } // the first answer, not the SDK's recovery
			tc.edit(&cfg)
			errs := call(t, cfg)
			for i, want := range tc.want {
				var ae smithy.APIError
				switch {
				case want == "" && errs[i] != nil:
					t.Errorf("call %d refused: %v", i, errs[i])
				case want != "" && (!errors.As(errs[i], &ae) || ae.ErrorCode() != want):
					t.Errorf("call %d: err = %v, want %s", i, errs[i], want)
				}
			}
			if v := strings.Join(rec.finish(), "\n"); (tc.want == [3]string{}) != (v == "") {
				t.Errorf("violations %q", v)
			}
		})
	}
}

// TestSkewCorrectedFromDateHeader: like AWS, the fake's answers carry its
// clock in the Date header, from which the SDK corrects a skewed client
// clock and succeeds on its retry.
func TestSkewCorrectedFromDateHeader(t *testing.T) {
	rec := &recorder{TB: t}
	srv := New(rec, Options{RequestClock: func() time.Time { return time.Now().Add(20 * time.Minute) }})
	_, err := cloudformation.NewFromConfig(srv.Config(nil)).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{})
	if err != nil {
		t.Fatalf("the SDK did not recover from the skew: %v", err)
	}
	if n := srv.Calls("CloudFormation.DescribeStacks"); n != 1 {
		t.Errorf("%d DescribeStacks served, want 1 after the refused one", n)
	}
	if v := strings.Join(rec.finish(), "\n"); !strings.Contains(v, "Signature expired") {
		t.Errorf("violations %q", v)
	}
}
