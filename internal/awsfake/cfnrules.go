package awsfake

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// CloudFormation's input rules for CreateStack, shared by the wire fake and
// the Go-level fake of package cfn. Source: AWS CloudFormation API
// Reference, "CreateStack" (StackName, ClientRequestToken, TemplateBody,
// Tags: "Array Members: Maximum number of 50 items") and "Tag" (Key 1–128,
// Value 1–256, the aws: prefix reserved); the messages are the service's
// "1 validation error detected: Value '...' at '...' failed to satisfy
// constraint: ..." form.

var (
	stackNameRE = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]*$`)
	tokenRE     = regexp.MustCompile(`^[a-zA-Z0-9][-a-zA-Z0-9]*$`)
)

// MaxTemplateBody is CreateStack's limit on TemplateBody, in bytes.
const MaxTemplateBody = 51200

func constraint(value, field, rule string) string {
	return fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, rule)
}

// CheckCreateStack returns CloudFormation's ValidationError message for a
// CreateStack request that breaks an input rule, or "".
func CheckCreateStack(name, token, body string, tags [][2]string) string {
	switch {
	case len(name) > 128:
		return constraint(name, "stackName", "Member must have length less than or equal to 128")
	case !stackNameRE.MatchString(name):
		return constraint(name, "stackName", "Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*")
	case len(token) > 128:
		return constraint(token, "clientRequestToken", "Member must have length less than or equal to 128")
	case token != "" && !tokenRE.MatchString(token):
		return constraint(token, "clientRequestToken", "Member must satisfy regular expression pattern: [a-zA-Z0-9][-a-zA-Z0-9]*")
	case body == "":
		return "Either Template URL or Template Body must be specified."
	case len(body) > MaxTemplateBody:
		return constraint("...", "templateBody", fmt.Sprintf("Member must have length less than or equal to %d", MaxTemplateBody))
	case len(tags) > 50:
		return constraint(fmt.Sprint(len(tags)), "tags", "Member must have length less than or equal to 50")
	}
	for i, t := range tags {
		k, v := t[0], t[1]
		field := fmt.Sprintf("tags.%d.member", i+1)
		switch {
		case k == "" || utf8.RuneCountInString(k) > 128:
			return constraint(k, field+".key", "Member must have length between 1 and 128")
		case v == "" || utf8.RuneCountInString(v) > 256:
			return constraint(v, field+".value", "Member must have length between 1 and 256")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return "Invalid tag key: the aws: prefix is reserved for AWS use"
		}
	}
	return ""
}

// iamTypes are the resource types whose creation CreateStack makes the
// caller acknowledge, and the property that gives each a custom name.
// Source: AWS CloudFormation API Reference, CreateStack, Capabilities:
// "CAPABILITY_IAM and CAPABILITY_NAMED_IAM ... If you have IAM resources
// with custom names, you must specify CAPABILITY_NAMED_IAM", with the list
// of those resource types.
var iamTypes = map[string]string{
	"AWS::IAM::AccessKey":           "",
	"AWS::IAM::Group":               "GroupName",
	"AWS::IAM::InstanceProfile":     "InstanceProfileName",
	"AWS::IAM::Policy":              "",
	"AWS::IAM::ManagedPolicy":       "ManagedPolicyName",
	"AWS::IAM::Role":                "RoleName",
	"AWS::IAM::User":                "UserName",
	"AWS::IAM::UserToGroupAddition": "",
}

// TemplateSummary is what GetTemplateSummary derives from a template.
type TemplateSummary struct {
	Params       []string // declared parameters, in document order
	Capabilities []string // none, CAPABILITY_IAM or CAPABILITY_NAMED_IAM
	Reason       string   // CapabilitiesReason
}

// SummarizeTemplate parses a template as GetTemplateSummary does; a template
// CloudFormation would reject is an error with its message.
func SummarizeTemplate(body string) (TemplateSummary, error) {
	t, err := parseTemplate(body)
	if err != nil {
		return TemplateSummary{}, err
	}
	var sum TemplateSummary
	for _, p := range t.Params {
		sum.Params = append(sum.Params, p.Key)
	}
	sum.Capabilities, sum.Reason = t.capabilities()
	return sum, nil
}
