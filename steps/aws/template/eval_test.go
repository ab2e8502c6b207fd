package template

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// deployed is the template as CloudFormation would deploy it for a set of
// parameter values: conditions decided, Fn::If resolved, AWS::NoValue
// dropped, Ref and Fn::Sub of parameters and pseudo parameters substituted
// (a Ref of a resource stays {"Ref": name}, since only deployment knows its
// id). The rules are CloudFormation's (Template Reference: "Condition
// functions", "Fn::Sub", "Pseudo parameters reference").
type deployed struct {
	params    map[string]string
	conds     map[string]any
	decided   map[string]bool
	resources map[string]any // only resources whose condition holds
}

func deploy(t *testing.T, values map[string]string) *deployed {
	t.Helper()
	doc := loadTemplate(t, Template())
	d := &deployed{params: map[string]string{"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
		"AWS::StackName": "gpipe-run-provision"}, decided: map[string]bool{}, resources: map[string]any{}}
	for k, v := range doc["Parameters"].(map[string]any) {
		if def, ok := v.(map[string]any)["Default"]; ok {
			d.params[k] = fmt.Sprint(def)
		}
	}
	for k, v := range values {
		d.params[k] = v
	}
	d.conds = doc["Conditions"].(map[string]any)
	for name, r := range doc["Resources"].(map[string]any) {
		if c, ok := r.(map[string]any)["Condition"].(string); ok && !d.cond(t, c) {
			continue
		}
		d.resources[name] = d.eval(t, r)
	}
	return d
}

func (d *deployed) cond(t *testing.T, name string) bool {
	if v, ok := d.decided[name]; ok {
		return v
	}
	expr, ok := d.conds[name]
	if !ok {
		t.Fatalf("unknown condition %s", name)
	}
	v := d.truth(t, expr)
	d.decided[name] = v
	return v
}

func (d *deployed) truth(t *testing.T, expr any) bool {
	m := expr.(map[string]any)
	for fn, arg := range m {
		switch fn {
		case "Fn::Equals":
			l := arg.([]any)
			return fmt.Sprint(d.eval(t, l[0])) == fmt.Sprint(d.eval(t, l[1]))
		case "Fn::Not":
			return !d.truth(t, arg.([]any)[0])
		case "Fn::Or", "Fn::And":
			and := fn == "Fn::And"
			for _, x := range arg.([]any) {
				if d.truth(t, x) != and {
					return !and
				}
			}
			return and
		case "Condition":
			return d.cond(t, arg.(string))
		}
	}
	t.Fatalf("not a condition: %v", expr)
	return false
}

// noValue marks what AWS::NoValue removes.
type noValue struct{}

func (d *deployed) eval(t *testing.T, v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for fn, arg := range v {
				switch fn {
				case "Fn::If":
					l := arg.([]any)
					if d.cond(t, l[0].(string)) {
						return d.eval(t, l[1])
					}
					return d.eval(t, l[2])
				case "Ref":
					name := arg.(string)
					if name == "AWS::NoValue" {
						return noValue{}
					}
					if p, ok := d.params[name]; ok {
						return p
					}
					return map[string]any{"Ref": name}
				case "Fn::Sub":
					if s, ok := arg.(string); ok {
						return subVar.ReplaceAllStringFunc(s, func(m string) string {
							if p, ok := d.params[m[2:len(m)-1]]; ok {
								return p
							}
							return m
						})
					}
				}
			}
		}
		out := map[string]any{}
		for k, x := range v {
			if e := d.eval(t, x); e != (noValue{}) {
				out[k] = e
			}
		}
		return out
	case []any:
		var out []any
		for _, x := range v {
			if e := d.eval(t, x); e != (noValue{}) {
				out = append(out, e)
			}
		}
		return out
	}
	return v
}

// grants lists the instance role's inline-policy grants as "action resource"
// lines, sorted.
func (d *deployed) grants(t *testing.T) []string {
	role := d.resources["InstanceRole"].(map[string]any)["Properties"].(map[string]any)
	var out []string
	for _, p := range role["Policies"].([]any) {
		doc := p.(map[string]any)["PolicyDocument"].(map[string]any)
		for _, s := range doc["Statement"].([]any) {
			st := s.(map[string]any)
			if st["Effect"] != "Allow" {
				t.Errorf("statement %v is not an Allow", st)
			}
			for _, a := range list(st["Action"]) {
				for _, r := range list(st["Resource"]) {
					out = append(out, a+" "+r)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func list(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// TestInstanceRoleBucketGrants: the data bucket is readable (objects) and
// listable, and nothing more; the results bucket is also writable; a
// customer-managed KMS key of the results bucket gets exactly the two KMS
// actions S3 needs for SSE-KMS (AWS S3 User Guide, "Using server-side
// encryption with AWS KMS keys": GenerateDataKey to upload, Decrypt to read).
func TestInstanceRoleBucketGrants(t *testing.T) {
	key := "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	d := deploy(t, map[string]string{ParamDataBucket: "msd-mirror", ParamResultsBucket: "results", ParamResultsKmsKey: key})
	var s3, kms, other []string
	for _, g := range d.grants(t) {
		switch {
		case strings.Contains(g, ":s3:::"):
			s3 = append(s3, g)
		case strings.HasPrefix(g, "kms:"):
			kms = append(kms, g)
		default:
			other = append(other, g)
		}
	}
	want := []string{
		"s3:AbortMultipartUpload arn:aws:s3:::results/*",
		"s3:GetBucketLocation arn:aws:s3:::results",
		"s3:GetObject arn:aws:s3:::msd-mirror/*",
		"s3:GetObject arn:aws:s3:::results/*",
		"s3:ListBucket arn:aws:s3:::msd-mirror",
		"s3:ListBucket arn:aws:s3:::results",
		"s3:ListMultipartUploadParts arn:aws:s3:::results/*",
		"s3:PutObject arn:aws:s3:::results/*",
	}
	if !slices.Equal(s3, want) {
		t.Errorf("S3 grants:\n%s\nwant:\n%s", strings.Join(s3, "\n"), strings.Join(want, "\n"))
	}
	if want := []string{"kms:Decrypt " + key, "kms:GenerateDataKey " + key}; !slices.Equal(kms, want) {
		t.Errorf("KMS grants %v, want %v", kms, want)
	}
	for _, g := range other {
		if !strings.HasPrefix(g, "logs:") {
			t.Errorf("unexpected grant %s", g)
		}
	}

	none := deploy(t, map[string]string{ParamResultsBucket: "results"})
	for _, g := range none.grants(t) {
		if strings.HasPrefix(g, "kms:") || strings.Contains(g, "msd-mirror") {
			t.Errorf("without a data bucket or key the role still grants %s", g)
		}
	}
}

// deps returns the resources r depends on: DependsOn, and every Ref,
// Fn::GetAtt and Fn::Sub of a resource in what is deployed of it (its
// Metadata included), as CloudFormation derives them (Template Reference,
// "DependsOn attribute": implicit dependencies of Ref, GetAtt and Sub).
func (d *deployed) deps(name string) []string {
	r := d.resources[name].(map[string]any)
	var out []string
	out = append(out, list(r["DependsOn"])...)
	walkRefs(r, name, func(_, kind, target string) {
		base, _, _ := strings.Cut(target, ".")
		if _, ok := d.resources[base]; ok && kind != "Condition" {
			out = append(out, base)
		}
	})
	return out
}

func (d *deployed) dependsOn(from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if n == to {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, x := range d.deps(n) {
			if walk(x) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// TestInstanceWaitsForGateway: in a created VPC the instance (public IP)
// depends on the gateway attachment (AWS docs, "DependsOn attribute": "When
// a DependsOn attribute is required"); with the user's subnet there is no
// attachment, and no DependsOn may name a resource that is then missing
// (CloudFormation: "Unresolved resource dependencies").
func TestInstanceWaitsForGateway(t *testing.T) {
	d := deploy(t, nil)
	if !d.dependsOn("Instance", "GatewayAttachment") {
		t.Error("Instance does not depend on GatewayAttachment in a created VPC")
	}
	own := deploy(t, map[string]string{ParamSubnetID: "subnet-1", ParamVpcID: "vpc-1"})
	if _, ok := own.resources["GatewayAttachment"]; ok {
		t.Fatal("GatewayAttachment deployed into the user's subnet")
	}
	for name, r := range own.resources {
		for _, dep := range list(r.(map[string]any)["DependsOn"]) {
			if _, ok := own.resources[dep]; !ok {
				t.Errorf("%s DependsOn %s, which is not deployed with a given subnet", name, dep)
			}
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), `"Ref":"GatewayAttachment"`) {
			t.Errorf("%s refers to GatewayAttachment, which is not deployed with a given subnet", name)
		}
	}
}
