package aws

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/secret"
	"github.com/gpipe/gpipe/pipeline/spec"
)

// The reader is what cmd/gpipe hands pipeline/secret.Gather.
var _ secret.Resolver = (*SecretReader)(nil)

// TestWireSecretReferences reads a secret param's from: through the real SSM
// and Secrets Manager clients: a SecureString parameter is asked for
// decrypted (the fake returns ciphertext otherwise), by name and by ARN; a
// secret by name and ARN; a missing one is an error naming it.
func TestWireSecretReferences(t *testing.T) {
	e := newWire(t, 0)
	r := e.runner().Secrets()
	e.srv.Secrets.PutParameter("/gpipe/token", "s3cr3t-from-ssm", true)
	e.srv.Secrets.PutSecret("prod/gpipe-token", "s3cr3t-from-sm")
	for _, c := range []struct{ ref, want string }{
		{"ssm:/gpipe/token", "s3cr3t-from-ssm"},
		{"ssm:arn:aws:ssm:us-east-1:123456789012:parameter/gpipe/token", "s3cr3t-from-ssm"},
		{"secretsmanager:prod/gpipe-token", "s3cr3t-from-sm"},
		{"secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/gpipe-token-AbCdEf", "s3cr3t-from-sm"},
	} {
		got, err := r.Resolve(t.Context(), c.ref)
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.ref, got, err, c.want)
		}
	}
	for _, c := range []struct{ ref, want string }{
		{"ssm:/gpipe/nope", "ParameterNotFound"},
		{"secretsmanager:nope", "ResourceNotFoundException"},
		{"vault:x", "want ssm:<name> or secretsmanager:<id>"},
	} {
		_, err := r.Resolve(t.Context(), c.ref)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Resolve(%q): got %v, want an error with %q", c.ref, err, c.want)
		}
	}
}

// TestIAMPolicySecretReferences: the policy lets the runner read exactly the
// references the spec's secret params name. Secrets Manager appends six
// random characters to a secret's name in its ARN, hence "-??????" (the IAM
// guide's pattern for secret names).
func TestIAMPolicySecretReferences(t *testing.T) {
	s := &spec.Spec{Name: "sec", Params: []spec.Param{
		{Name: "a", Secret: true, From: "ssm:/gpipe/token"},
		{Name: "b", Secret: true, From: "secretsmanager:prod/key"},
		{Name: "c", Secret: true, From: "ssm:arn:aws:ssm:eu-west-1:123456789012:parameter/x"},
		{Name: "d", Secret: true},
	}, Steps: []spec.Step{{ID: "s", Type: "shell"}}}
	b, err := IAMPolicy(s, "file://.gpipe")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Statement []statement }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, st := range doc.Statement {
		for _, a := range st.Action {
			got[a] = append(got[a], st.Resource...)
		}
	}
	want := map[string][]string{
		"ssm:GetParameter":              {"arn:aws:ssm:*:*:parameter/gpipe/token", "arn:aws:ssm:eu-west-1:123456789012:parameter/x"},
		"secretsmanager:GetSecretValue": {"arn:aws:secretsmanager:*:*:secret:prod/key-??????"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policy actions %v, want %v", got, want)
	}
}
