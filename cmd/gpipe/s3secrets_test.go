package main

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/awsfake"
)

const s3SecretSpec = `version: 1
name: s3sec
params:
  token: {secret: true, from: "ssm:/gpipe/token"}
  key: {secret: true}
steps:
  - id: a
    type: shell
    env:
      TOKEN: ${{ params.token }}
      KEY: ${{ params.key }}
    with:
      run: |
        echo "token $TOKEN key $KEY"
        printf '%s %s\n' "$TOKEN" "$KEY" > got.txt
        echo "both=$TOKEN/$KEY" >> "$GPIPE_OUTPUT"
`

// TestS3StateKeepsNoSecret: with S3 state, no object the run leaves in the
// bucket (state, spec snapshot, log chunks) and nothing gpipe prints holds a
// secret, whether it came from the environment or from an SSM SecureString
// (read through the SSM API with the runner's credentials); a resume reads
// them again, and without the one it cannot read it stops with exit 2.
func TestS3StateKeepsNoSecret(t *testing.T) {
	h := newS3Harness(t)
	fake := awsfake.New(t, awsfake.Options{AccessKey: h.srv.AccessKey, SecretKey: h.srv.SecretKey})
	const fromSSM, fromEnv = "TokFromSSM-5d1c", "KeyFromEnv-9a7e"
	fake.Secrets.PutParameter("/gpipe/token", fromSSM, true)
	h.writeFile("spec.yaml", s3SecretSpec)
	env := append(slices.Clone(h.env), "AWS_ENDPOINT_URL="+fake.URL, "GPIPE_SECRET_KEY="+fromEnv)

	var printed []string
	run := func(env []string, args ...string) result {
		t.Helper()
		r := h.gpipeEnv(env, args...)
		printed = append(printed, r.stdout, r.stderr)
		return r
	}
	if r := run(env, "run", "--run-id", "s1", "spec.yaml"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if got, _ := os.ReadFile(h.path("got.txt")); string(got) != fromSSM+" "+fromEnv+"\n" {
		t.Fatalf("the step got %q, want the secrets' values", got)
	}
	for _, args := range [][]string{{"status", "s1"}, {"status", "--json", "s1"}, {"report", "s1"},
		{"report", "--format", "json", "s1"}, {"logs", "s1"}} {
		if r := run(env, args...); r.code != 0 {
			t.Fatalf("%s", r)
		}
	}
	if !strings.Contains(printed[len(printed)-2], "token *** key ***") {
		t.Errorf("logs do not show the masked line:\n%s", printed[len(printed)-2])
	}

	noKey := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "GPIPE_SECRET_KEY=") })
	r := run(noKey, "resume", "--from", "a", "s1")
	if r.code != exitUsage || !strings.Contains(r.stderr, "GPIPE_SECRET_KEY") {
		t.Fatalf("resume without the key: want exit 2 naming GPIPE_SECRET_KEY\n%s", r)
	}
	calls := fake.Calls("SSM.GetParameter")
	if r := run(env, "resume", "--from", "a", "s1"); r.code != 0 {
		t.Fatalf("%s", r)
	}
	if fake.Calls("SSM.GetParameter") <= calls {
		t.Error("resume did not read the SSM parameter again")
	}

	objects := h.allObjects()
	if len(objects) < 3 {
		t.Fatalf("only %d objects in the bucket: %v", len(objects), objects)
	}
	for key, body := range objects {
		for _, v := range []string{fromSSM, fromEnv} {
			if bytes.Contains(body, []byte(v)) {
				t.Errorf("s3://%s/%s holds a secret's value", s3Bucket, key)
			}
		}
	}
	for _, out := range printed {
		for _, v := range []string{fromSSM, fromEnv} {
			if strings.Contains(out, v) {
				t.Errorf("gpipe printed a secret's value:\n%s", out)
			}
		}
	}
}

// allObjects reads every object in the test bucket.
func (h *s3Harness) allObjects() map[string][]byte {
	h.t.Helper()
	c := h.s3Client()
	out := map[string][]byte{}
	p := s3sdk.NewListObjectsV2Paginator(c, &s3sdk.ListObjectsV2Input{Bucket: aws.String(s3Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(h.t.Context())
		if err != nil {
			h.t.Fatal(err)
		}
		for _, o := range page.Contents {
			obj, err := c.GetObject(h.t.Context(), &s3sdk.GetObjectInput{Bucket: aws.String(s3Bucket), Key: o.Key})
			if err != nil {
				h.t.Fatal(err)
			}
			b, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				h.t.Fatal(err)
			}
			out[aws.ToString(o.Key)] = b
		}
	}
	return out
}
