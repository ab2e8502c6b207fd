package aws

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps/aws/cfn"
	"github.com/gpipe/gpipe/steps/aws/template"
)

// policyInputs is what IAMPolicy learns from a spec.
type policyInputs struct {
	features   map[feature]bool
	stackNames []string // literal stack_name values
	buckets    []string
	instances  []string // literal ssm: hosts
	templates  [][]byte // the templates provision-stack deploys
	stateHost  string
	statePfx   string
	kmsKeys    []string // results_kms_key values
	// secretParams and secretValues are the ARNs of secret params' sources.
	secretParams, secretValues []string
}

func inputs(s *spec.Spec, stateURL string) (*policyInputs, error) {
	in := &policyInputs{features: map[feature]bool{}}
	literal := func(step, key string, v any) (string, error) {
		str, _ := v.(string)
		if strings.Contains(str, "${{") {
			return "", fmt.Errorf("step %s: %s is %q, which is only known at run time: give its param (-p) so the policy can name it: %w",
				step, key, str, ErrUnresolved)
		}
		return str, nil
	}
	for _, h := range s.Hosts {
		if id, ok := strings.CutPrefix(h.Address, "ssm:"); ok && !strings.Contains(id, "${{") {
			in.instances = append(in.instances, id)
		}
		if !strings.HasPrefix(h.Address, "local") {
			in.features[featSSM] = true
		}
	}
	for _, st := range s.Steps {
		if strings.HasPrefix(st.Host, "ssm:") || strings.Contains(st.Host, "${{") {
			in.features[featSSM] = true
		}
		for _, k := range []string{"data_bucket", "results_bucket"} {
			b, err := literal(st.ID, k, st.With[k])
			if err != nil {
				return nil, err
			}
			b = cfn.BucketName(b) // data_bucket may be an s3:// URL in the bucket
			if b != "" && !slices.Contains(in.buckets, b) {
				in.buckets = append(in.buckets, b)
			}
		}
		key, err := literal(st.ID, "results_kms_key", st.With["results_kms_key"])
		if err != nil {
			return nil, err
		}
		if key != "" && !slices.Contains(in.kmsKeys, key) {
			in.kmsKeys = append(in.kmsKeys, key)
		}
		switch st.Type {
		case "provision-stack":
			in.features[featProvision], in.features[featStacks], in.features[featSSM] = true, true, true
			// A market still an expression may turn out spot.
			if m, _ := st.With["market"].(string); m == cfn.MarketSpot || strings.Contains(m, "${{") {
				in.features[featSpot] = true
			}
			path, err := literal(st.ID, "template", st.With["template"])
			if err != nil {
				return nil, err
			}
			body := template.Template()
			if path != "" {
				if body, err = os.ReadFile(path); err != nil {
					return nil, fmt.Errorf("step %s: read template: %w", st.ID, err)
				}
			}
			in.templates = append(in.templates, body)
		case "teardown":
			in.features[featStacks] = true
		default:
			continue
		}
		name, err := literal(st.ID, "stack_name", st.With["stack_name"])
		if err != nil {
			return nil, err
		}
		if name != "" && !slices.Contains(in.stackNames, name) {
			in.stackNames = append(in.stackNames, name)
		}
	}
	if in.features[featStacks] && len(in.templates) == 0 {
		in.templates = append(in.templates, template.Template()) // teardown alone deletes built-in stacks
	}
	sort.Strings(in.buckets)
	in.features[featBuckets] = len(in.buckets) > 0
	in.features[featKMS] = len(in.kmsKeys) > 0
	in.secretParams, in.secretValues = secretRefs(s)
	in.features[featSecrets] = len(in.secretParams)+len(in.secretValues) > 0
	if strings.HasPrefix(stateURL, "s3://") {
		u, err := url.Parse(stateURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("state URL %q: want s3://bucket/prefix", stateURL)
		}
		in.features[featState] = true
		in.stateHost, in.statePfx = u.Host, strings.Trim(u.Path, "/")
	}
	return in, nil
}

// secretRefs returns the resources of the secret params' from: references:
// SSM parameters (arn:...:parameter/NAME, the name without its leading
// slash) and Secrets Manager secrets (a name gets the "-??????" wildcard for
// the six characters AWS appends to a secret's ARN). ARNs stay as written.
func secretRefs(s *spec.Spec) (params, secrets []string) {
	for _, p := range s.Params {
		kind, id, _ := strings.Cut(p.From, ":")
		switch {
		case id == "":
		case strings.HasPrefix(id, "arn:") && kind == "ssm":
			params = append(params, id)
		case strings.HasPrefix(id, "arn:"):
			secrets = append(secrets, id)
		case kind == "ssm":
			params = append(params, "arn:aws:ssm:*:*:parameter/"+strings.TrimPrefix(id, "/"))
		case kind == "secretsmanager":
			secrets = append(secrets, "arn:aws:secretsmanager:*:*:secret:"+id+"-??????")
		}
	}
	return params, secrets
}
