package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// schemaDir is the AWS resource-provider schemas, relative to this package:
// the repository's copy (source, snapshot and licence in
// testdata/reference/README.md).
const schemaDir = "../../../testdata/reference/cfn-resource-schemas"

func loadTemplate(t *testing.T, src []byte) map[string]any {
	t.Helper()
	var raw any
	if err := yaml.Unmarshal(src, &raw); err != nil {
		t.Fatalf("parse template: %v", err)
	}
	// Round-trip through JSON so numbers and maps have the shapes the schema
	// validator expects.
	js, err := json.Marshal(raw)
	if err != nil {
		t.Fatalf("template to JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestTemplateAgainstResourceSchemas(t *testing.T) {
	doc := loadTemplate(t, Template())
	errs := validateTemplate(t, doc)
	for _, e := range errs {
		t.Error(e)
	}
}

func TestValidatorCatchesMistakes(t *testing.T) {
	// Each mutation breaks the template in a way the validator must report, so
	// a validator that accepts everything fails here.
	cases := []struct {
		name   string
		mutate func(res map[string]any)
		want   string
	}{
		{"unknown property", func(r map[string]any) { props(r, "Instance")["InstanceTyp"] = "x" }, "InstanceTyp"},
		{"bad enum", func(r map[string]any) {
			md := props(r, "LaunchTemplate")["LaunchTemplateData"].(map[string]any)["MetadataOptions"].(map[string]any)
			md["HttpTokens"] = "sometimes"
		}, "HttpTokens"},
		{"missing required", func(r map[string]any) { delete(props(r, "SecurityGroup"), "GroupDescription") }, "GroupDescription"},
		{"wrong type", func(r map[string]any) { props(r, "Vpc")["EnableDnsSupport"] = []any{"yes"} }, "EnableDnsSupport"},
		{"dangling Ref", func(r map[string]any) { props(r, "Instance")["ImageId"] = map[string]any{"Ref": "NoSuchParam"} }, "NoSuchParam"},
		{"dangling GetAtt", func(r map[string]any) {
			props(r, "Instance")["SecurityGroupIds"] = []any{map[string]any{"Fn::GetAtt": []any{"Nope", "GroupId"}}}
		}, "Nope"},
		{"dangling Sub", func(r map[string]any) {
			props(r, "InstanceRole")["Description"] = map[string]any{"Fn::Sub": "run ${Missing}"}
		}, "Missing"},
		{"unknown function", func(r map[string]any) { props(r, "Instance")["ImageId"] = map[string]any{"Fn::Frobnicate": "x"} }, "ImageId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := loadTemplate(t, Template())
			tc.mutate(doc["Resources"].(map[string]any))
			errs := validateTemplate(t, doc)
			if len(errs) == 0 {
				t.Fatalf("no error reported")
			}
			joined := strings.Join(errs, "\n")
			if !strings.Contains(joined, tc.want) {
				t.Fatalf("errors do not mention %q:\n%s", tc.want, joined)
			}
		})
	}
}

func TestTemplateShape(t *testing.T) {
	doc := loadTemplate(t, Template())
	params := doc["Parameters"].(map[string]any)
	for _, p := range []string{ParamRunID, ParamStepID, ParamInstanceType, ParamImageID, ParamRootDeviceName,
		ParamRootVolumeGiB, ParamSubnetID, ParamVpcID, ParamAvailabilityZone, ParamDataBucket, ParamResultsBucket,
		ParamSsmLogGroup, ParamMaxLifetimeMinutes} {
		if _, ok := params[p]; !ok {
			t.Errorf("parameter %s missing", p)
		}
	}
	if got := params[ParamInstanceType].(map[string]any)["Default"]; got != "dl1.24xlarge" {
		t.Errorf("InstanceType default = %v", got)
	}
	if got := params[ParamSsmLogGroup].(map[string]any)["Default"]; got != DefaultSsmLogGroup {
		t.Errorf("SsmLogGroup default = %v", got)
	}
	outs := doc["Outputs"].(map[string]any)
	for _, o := range []string{"InstanceId", "Host", "AvailabilityZone", "PrivateIp", "Region", "StackName", "DataBucket", "ResultsBucket"} {
		if _, ok := outs[o]; !ok {
			t.Errorf("output %s missing", o)
		}
	}
	res := doc["Resources"].(map[string]any)
	if in := props(res, "SecurityGroup")["SecurityGroupIngress"]; in != nil {
		t.Errorf("security group has inbound rules: %v", in)
	}
	inst := props(res, "Instance")
	if inst["InstanceInitiatedShutdownBehavior"] != "terminate" {
		t.Errorf("shutdown behaviour = %v", inst["InstanceInitiatedShutdownBehavior"])
	}
	ud, _ := json.Marshal(inst["UserData"])
	if !strings.Contains(string(ud), "shutdown -h +${MaxLifetimeMinutes}") {
		t.Errorf("user data lacks the max-lifetime guard: %s", ud)
	}
	ltd := props(res, "LaunchTemplate")["LaunchTemplateData"].(map[string]any)
	if ltd["MetadataOptions"].(map[string]any)["HttpTokens"] != "required" {
		t.Error("IMDSv2 not required")
	}
	ebs := ltd["BlockDeviceMappings"].([]any)[0].(map[string]any)["Ebs"].(map[string]any)
	if ebs["Encrypted"] != true || ebs["VolumeType"] != "gp3" {
		t.Errorf("root volume = %v", ebs)
	}
	role, _ := json.Marshal(props(res, "InstanceRole"))
	if !strings.Contains(string(role), "AmazonSSMManagedInstanceCore") {
		t.Error("role lacks AmazonSSMManagedInstanceCore")
	}
	if strings.Contains(string(role), `"s3:*"`) || strings.Contains(string(role), `"Action":"*"`) {
		t.Errorf("role grants wildcard actions: %s", role)
	}
}

func props(res map[string]any, name string) map[string]any {
	return res[name].(map[string]any)["Properties"].(map[string]any)
}

// validateTemplate checks every resource's Properties against its provider
// schema, and every Ref, GetAtt, Sub and Condition against the names the
// template declares. It returns the problems found.
func validateTemplate(t *testing.T, doc map[string]any) []string {
	t.Helper()
	var errs []string
	names := map[string]bool{"AWS::Region": true, "AWS::AccountId": true, "AWS::Partition": true,
		"AWS::StackName": true, "AWS::StackId": true, "AWS::NoValue": true, "AWS::URLSuffix": true, "AWS::NotificationARNs": true}
	params, _ := doc["Parameters"].(map[string]any)
	for p := range params {
		names[p] = true
	}
	resources, _ := doc["Resources"].(map[string]any)
	conds, _ := doc["Conditions"].(map[string]any)
	for _, name := range sortedKeys(resources) {
		r := resources[name].(map[string]any)
		typ, _ := r["Type"].(string)
		sch, err := compileResourceSchema(typ)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		p := r["Properties"]
		if p == nil {
			p = map[string]any{}
		}
		if err := sch.Validate(p); err != nil {
			errs = append(errs, fmt.Sprintf("%s (%s): %v", name, typ, err))
		}
		if c, ok := r["Condition"].(string); ok && conds[c] == nil {
			errs = append(errs, fmt.Sprintf("%s: unknown condition %q", name, c))
		}
	}
	walkRefs(doc, "", func(where, kind, target string) {
		switch kind {
		case "Ref":
			if !names[target] && resources[target] == nil {
				errs = append(errs, fmt.Sprintf("%s: Ref to unknown %q", where, target))
			}
		case "GetAtt", "Sub":
			base, _, _ := strings.Cut(target, ".")
			if kind == "Sub" && (names[target] || names[base]) {
				return
			}
			if resources[base] == nil {
				errs = append(errs, fmt.Sprintf("%s: %s of unknown resource %q", where, kind, target))
			}
		case "Condition":
			if conds[target] == nil {
				errs = append(errs, fmt.Sprintf("%s: unknown condition %q", where, target))
			}
		}
	})
	return errs
}

var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// walkRefs calls fn for every name an intrinsic function refers to.
func walkRefs(v any, where string, fn func(where, kind, target string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch k {
			case "Ref":
				if s, ok := x.(string); ok {
					fn(where, "Ref", s)
				}
			case "Fn::GetAtt":
				if l, ok := x.([]any); ok && len(l) == 2 {
					fn(where, "GetAtt", fmt.Sprint(l[0]))
				}
			case "Fn::Sub":
				var s string
				switch x := x.(type) {
				case string:
					s = x
				case []any:
					s, _ = x[0].(string) // variables in x[1] are local; not checked
				}
				for _, m := range subVar.FindAllStringSubmatch(s, -1) {
					fn(where, "Sub", m[1])
				}
			case "Fn::If":
				if l, ok := x.([]any); ok && len(l) == 3 {
					fn(where, "Condition", fmt.Sprint(l[0]))
				}
			case "Condition":
				if s, ok := x.(string); ok && where != "" && strings.Count(where, "/") > 1 {
					fn(where, "Condition", s)
				}
			}
			walkRefs(x, where+"/"+k, fn)
		}
	case []any:
		for i, x := range v {
			walkRefs(x, fmt.Sprintf("%s/%d", where, i), fn)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// intrinsic matches a CloudFormation intrinsic-function object: its value is
// only known at deploy time, so it is valid wherever a value is expected.
var intrinsic = map[string]any{
	"type": "object", "minProperties": 1, "maxProperties": 1,
	"propertyNames": map[string]any{"enum": []any{"Ref", "Condition", "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Join",
		"Fn::Select", "Fn::GetAZs", "Fn::Base64", "Fn::Split", "Fn::FindInMap", "Fn::ImportValue", "Fn::Cidr",
		"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::ToJsonString", "Fn::Length"}},
}

func compileResourceSchema(typ string) (*jsonschema.Schema, error) {
	file := strings.ToLower(strings.ReplaceAll(typ, "::", "-")) + ".json"
	src, err := os.ReadFile(filepath.Join(schemaDir, file))
	if err != nil {
		return nil, fmt.Errorf("no schema for %s: %w", typ, err)
	}
	var s map[string]any
	if err := json.Unmarshal(src, &s); err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	// The provider meta-schema is not reachable offline; the keywords it adds
	// (createOnlyProperties, tagging, ...) are annotations, not assertions.
	delete(s, "$schema")
	delete(s, "$id")
	fixPatterns(s)
	props, _ := s["properties"].(map[string]any)
	for k, v := range props {
		props[k] = allowIntrinsic(v)
	}
	if ds, ok := s["definitions"].(map[string]any); ok {
		for k, v := range ds {
			ds[k] = allowIntrinsic(v)
		}
	}
	defs, _ := s["definitions"].(map[string]any)
	if defs == nil {
		defs = map[string]any{}
		s["definitions"] = defs
	}
	defs["__intrinsic"] = intrinsic
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	url := "file:///" + file
	if err := c.AddResource(url, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("schema %s: %w", file, err)
	}
	return c.Compile(url)
}

// allowIntrinsic lets an intrinsic function stand in for the value a schema
// describes, at this level and every nested property and item below it.
func allowIntrinsic(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if p, ok := m["properties"].(map[string]any); ok {
		for k, x := range p {
			p[k] = allowIntrinsic(x)
		}
	}
	if it, ok := m["items"].(map[string]any); ok {
		m["items"] = allowIntrinsic(it)
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		if l, ok := m[kw].([]any); ok {
			for i, x := range l {
				l[i] = allowIntrinsic(x)
			}
		}
	}
	return map[string]any{"anyOf": []any{m, map[string]any{"$ref": "#/definitions/__intrinsic"}}}
}

// fixPatterns rewrites the schemas' ECMA-262 patterns into RE2 where they
// differ (\uXXXX, \Z) and drops the few RE2 cannot express (look-ahead), so a
// pattern never makes compilation fail.
func fixPatterns(v any) {
	switch v := v.(type) {
	case map[string]any:
		if p, ok := v["pattern"].(string); ok {
			p = regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(p, `\x{$1}`)
			p = strings.ReplaceAll(p, `\Z`, `\z`)
			if _, err := regexp.Compile(p); err != nil {
				delete(v, "pattern")
			} else {
				v["pattern"] = p
			}
		}
		for _, x := range v {
			fixPatterns(x)
		}
	case []any:
		for _, x := range v {
			fixPatterns(x)
		}
	}
}
