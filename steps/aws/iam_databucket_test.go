package aws

import (
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
)

// TestIAMPolicyDataBucketURL: the specs pass msd_source (an s3:// URL) as
// provision-stack's data_bucket; the runner's policy names its bucket.
func TestIAMPolicyDataBucketURL(t *testing.T) {
	s := &spec.Spec{Name: "unet", Steps: []spec.Step{
		{ID: "provision", Type: "provision-stack", With: map[string]any{"results_bucket": "res", "data_bucket": "s3://msd-mirror/Task01/archive.tar"}},
	}}
	b, err := IAMPolicy(s, "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3://") || !strings.Contains(string(b), `"arn:aws:s3:::msd-mirror/*"`) {
		t.Errorf("policy does not name the data bucket as a bucket:\n%s", b)
	}
}
