package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SecretReader reads the `from:` references of secret params (it is a
// pipeline/secret.Resolver) with the runner's own credentials: an SSM
// Parameter Store parameter, decrypted, or a Secrets Manager secret's current
// string value. A reference by ARN is read in the ARN's region; any other in
// the runner's default region.
type SecretReader struct{ steps *Steps }

// Secrets returns the reader of secret references.
func (s *Steps) Secrets() *SecretReader { return &SecretReader{steps: s} }

// Resolve returns the value ref names: "ssm:<name or ARN>" or
// "secretsmanager:<id or ARN>".
func (r *SecretReader) Resolve(ctx context.Context, ref string) (string, error) {
	kind, id, _ := strings.Cut(ref, ":")
	if id == "" {
		return "", fmt.Errorf("reference %q: want ssm:<name> or secretsmanager:<id>", ref)
	}
	cfg, err := r.steps.config(ctx, arnRegion(id))
	if err != nil {
		return "", err
	}
	switch kind {
	case "ssm":
		out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: sdkaws.String(id), WithDecryption: sdkaws.Bool(true)})
		if err != nil {
			return "", fmt.Errorf("get SSM parameter %s: %w", id, err)
		}
		if out.Parameter == nil || out.Parameter.Value == nil {
			return "", fmt.Errorf("get SSM parameter %s: the answer has no value", id)
		}
		return *out.Parameter.Value, nil
	case "secretsmanager":
		out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: sdkaws.String(id)})
		if err != nil {
			return "", fmt.Errorf("get secret %s from Secrets Manager: %w", id, err)
		}
		if out.SecretString == nil {
			return "", errors.New("secret " + id + " holds binary data (SecretBinary); a param takes a string secret")
		}
		return *out.SecretString, nil
	}
	return "", fmt.Errorf("reference %q: want ssm:<name> or secretsmanager:<id>", ref)
}

// arnRegion is the region field of an ARN (arn:partition:service:region:...),
// or "" for a plain name.
func arnRegion(id string) string {
	f := strings.SplitN(id, ":", 5)
	if len(f) == 5 && f[0] == "arn" {
		return f[3]
	}
	return ""
}
