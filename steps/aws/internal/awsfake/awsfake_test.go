package awsfake

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
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

func TestSignatureChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*aws.Config)
		want string
	}{
		{"good", func(*aws.Config) {}, ""},
		{"wrong secret", func(c *aws.Config) { c.Credentials = credentials.NewStaticCredentialsProvider(AccessKey, "nope", "") }, "signature mismatch"},
		{"wrong region", func(c *aws.Config) { c.Region = "eu-west-1" }, "credential scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			srv := New(rec, Options{})
			srv.SSM.AddInstance("i-1", 0)
			cfg := srv.Config(nil)
			tc.edit(&cfg)
			out, err := ssm.NewFromConfig(cfg).DescribeInstanceInformation(t.Context(), &ssm.DescribeInstanceInformationInput{})
			if err != nil || out == nil {
				t.Fatalf("call: %v", err)
			}
			errs := strings.Join(rec.finish(), "\n")
			if tc.want == "" && errs != "" || !strings.Contains(errs, tc.want) {
				t.Errorf("violations %q, want %q", errs, tc.want)
			}
		})
	}
}
