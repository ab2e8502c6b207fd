package awsfake

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// tmpl is what the fake understands of a CloudFormation template: its
// parameters (with the constraints CreateStack checks), its resources in
// order, and its outputs.
type tmpl struct {
	Description string
	Params      []tmplParam
	Resources   []tmplResource
	Outputs     []tmplOutput
	Conditions  map[string]any
}

type tmplParam struct {
	Key, Type, Description string
	Default                *string
	MinLength              *int
	MinValue, MaxValue     *float64
	Allowed                []string
}

type tmplResource struct {
	Logical, Type string
	Props         map[string]any
}

type tmplOutput struct {
	Key   string
	Value any
}

// parseTemplate reads a JSON or YAML (long-form) template; it needs the
// document order of parameters, resources and outputs, so it decodes into
// yaml.MapSlice.
func parseTemplate(body string) (*tmpl, error) {
	var doc yaml.MapSlice
	if err := yaml.UnmarshalWithOptions([]byte(body), &doc, yaml.UseOrderedMap()); err != nil {
		return nil, fmt.Errorf("Template format error: %v", err)
	}
	t := &tmpl{}
	for _, top := range doc {
		switch top.Key {
		case "Description":
			t.Description, _ = top.Value.(string)
		case "Parameters":
			for _, p := range slice(top.Value) {
				d := mapOf(p.Value)
				tp := tmplParam{Key: fmt.Sprint(p.Key), Type: fmt.Sprint(d["Type"]), Description: str(d["Description"])}
				if v, ok := d["Default"]; ok {
					s := scalar(v)
					tp.Default = &s
				}
				if v, ok := d["MinLength"]; ok {
					n, _ := strconv.Atoi(scalar(v))
					tp.MinLength = &n
				}
				if v, ok := d["MinValue"]; ok {
					f, _ := strconv.ParseFloat(scalar(v), 64)
					tp.MinValue = &f
				}
				if v, ok := d["MaxValue"]; ok {
					f, _ := strconv.ParseFloat(scalar(v), 64)
					tp.MaxValue = &f
				}
				if av, ok := d["AllowedValues"].([]any); ok {
					for _, a := range av {
						tp.Allowed = append(tp.Allowed, scalar(a))
					}
				}
				t.Params = append(t.Params, tp)
			}
		case "Resources":
			for _, r := range slice(top.Value) {
				def := mapOf(r.Value)
				props, _ := def["Properties"].(map[string]any)
				t.Resources = append(t.Resources, tmplResource{Logical: fmt.Sprint(r.Key), Type: str(def["Type"]), Props: props})
			}
		case "Conditions":
			t.Conditions = mapOf(top.Value)
		case "Outputs":
			for _, o := range slice(top.Value) {
				t.Outputs = append(t.Outputs, tmplOutput{Key: fmt.Sprint(o.Key), Value: mapOf(o.Value)["Value"]})
			}
		}
	}
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("Template format error: At least one Resources member must be defined.")
	}
	return t, nil
}

func slice(v any) yaml.MapSlice { s, _ := v.(yaml.MapSlice); return s }

// mapOf turns a nested ordered map into a plain one (order no longer matters
// below the top level).
func mapOf(v any) map[string]any {
	out := map[string]any{}
	switch v := v.(type) {
	case yaml.MapSlice:
		for _, it := range v {
			out[fmt.Sprint(it.Key)] = plain(it.Value)
		}
	case map[string]any:
		return v
	}
	return out
}

func plain(v any) any {
	switch v := v.(type) {
	case yaml.MapSlice:
		return mapOf(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

func scalar(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// capabilities returns what CreateStack must acknowledge for the template:
// CAPABILITY_IAM for IAM resources, CAPABILITY_NAMED_IAM when one of them
// has a custom name (see iamTypes).
func (t *tmpl) capabilities() (caps []string, reason string) {
	var iam []string
	named := false
	for _, r := range t.Resources {
		nameProp, ok := iamTypes[r.Type]
		if !ok {
			continue
		}
		iam = append(iam, r.Type)
		if _, has := r.Props[nameProp]; nameProp != "" && has {
			named = true
		}
	}
	if len(iam) == 0 {
		return nil, ""
	}
	sort.Strings(iam)
	iam = compactStrings(iam)
	reason = "The following resource(s) require capabilities: [" + strings.Join(iam, ", ") + "]"
	if named {
		return []string{"CAPABILITY_NAMED_IAM"}, reason
	}
	return []string{"CAPABILITY_IAM"}, reason
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// checkParams validates CreateStack's parameters as CloudFormation does and
// returns every parameter's value (defaults filled in).
func (t *tmpl) checkParams(given map[string]string) (map[string]string, error) {
	declared := map[string]bool{}
	for _, p := range t.Params {
		declared[p.Key] = true
	}
	var unknown []string
	for k := range given {
		if !declared[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("Parameters: [%s] do not exist in the template", strings.Join(unknown, ", "))
	}
	vals := map[string]string{}
	var missing []string
	for _, p := range t.Params {
		v, ok := given[p.Key]
		if !ok && p.Default != nil {
			v, ok = *p.Default, true
		}
		if !ok {
			missing = append(missing, p.Key)
			continue
		}
		if p.MinLength != nil && len(v) < *p.MinLength {
			return nil, fmt.Errorf("Parameter '%s' must contain at least %d characters", p.Key, *p.MinLength)
		}
		if p.Type == "Number" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("Parameter '%s' must be a number.", p.Key)
			}
			if p.MinValue != nil && f < *p.MinValue {
				return nil, fmt.Errorf("Parameter '%s' must be a number not less than %v", p.Key, *p.MinValue)
			}
			if p.MaxValue != nil && f > *p.MaxValue {
				return nil, fmt.Errorf("Parameter '%s' must be a number not greater than %v", p.Key, *p.MaxValue)
			}
		}
		if p.Type == "AWS::EC2::Image::Id" && !strings.HasPrefix(v, "ami-") {
			return nil, fmt.Errorf("Parameter '%s' must be an AMI id (ami-...), got %q", p.Key, v)
		}
		if len(p.Allowed) > 0 && !contains(p.Allowed, v) {
			return nil, fmt.Errorf("Parameter '%s' must be one of AllowedValues", p.Key)
		}
		vals[p.Key] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}
	return vals, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// eval computes an output value with the intrinsic functions the built-in
// template uses: Ref (parameters, resources, pseudo parameters), Fn::Sub with
// ${Name}, and Fn::GetAtt of an instance's zone and private address.
func (st *stack) eval(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if r, ok := v["Ref"].(string); ok {
			return st.ref(r)
		}
		if s, ok := v["Fn::Sub"].(string); ok {
			var b strings.Builder
			for {
				i := strings.Index(s, "${")
				j := strings.Index(s, "}")
				if i < 0 || j < i {
					b.WriteString(s)
					return b.String()
				}
				b.WriteString(s[:i] + st.ref(s[i+2:j]))
				s = s[j+1:]
			}
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			switch scalar(ga[1]) {
			case "AvailabilityZone":
				return st.zone()
			case "PrivateIp":
				return "10.0.1.23"
			}
			return scalar(ga[0]) + "." + scalar(ga[1])
		}
	}
	return scalar(v)
}

func (st *stack) ref(name string) string {
	switch name {
	case "AWS::Region":
		return Region
	case "AWS::StackName":
		return st.name
	case "AWS::AccountId":
		return Account
	}
	if v, ok := st.params[name]; ok {
		return v
	}
	for _, r := range st.resources {
		if r.logical == name {
			return r.physical
		}
	}
	return name
}

// zone is where the stack's instance runs: the AvailabilityZone parameter,
// else the region's first zone (the built-in template's Fn::GetAZs choice).
func (st *stack) zone() string {
	if z := st.params["AvailabilityZone"]; z != "" {
		return z
	}
	return Region + "a"
}
