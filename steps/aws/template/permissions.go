package template

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/goccy/go-yaml"
)

// handlers is the table of IAM actions CloudFormation's resource handlers
// call, per resource type of the built-in template: the `handlers` section of
// the CloudFormation registry schemas, as vendored in
// hashicorp/terraform-provider-awscc internal/service/cloudformation/schemas/
// (commit f995d4f, 2026-08-07; the file names its per-type sources). gpipe
// needs it at run time to print the policy CloudFormation will act under; a
// test keeps it identical to testdata/reference/cfn-handler-permissions.json.
//
//go:embed cfn-handler-permissions.json
var handlers []byte

// Handler names of a resource type's registry schema.
const (
	HandlerCreate = "create"
	HandlerRead   = "read"
	HandlerUpdate = "update"
	HandlerDelete = "delete"
	HandlerList   = "list"
)

// HandlerPermissions maps a resource type ("AWS::EC2::Instance") to its
// handlers ("create", ...) to the IAM actions each calls.
type HandlerPermissions map[string]map[string][]string

// Handlers returns the embedded handler-permission table.
func Handlers() (HandlerPermissions, error) {
	return ParseHandlers(handlers)
}

// HandlersSource returns the embedded table's own statement of its source.
func HandlersSource() string {
	var doc struct {
		Source string `json:"source"`
	}
	_ = json.Unmarshal(handlers, &doc) // the embedded file is tested to parse
	return doc.Source
}

// ParseHandlers reads a handler-permission table in the reference format
// ({"types": {type: {handler: [action, ...]}}}).
func ParseHandlers(src []byte) (HandlerPermissions, error) {
	var doc struct {
		Types HandlerPermissions `json:"types"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("handler permissions: %w", err)
	}
	if len(doc.Types) == 0 {
		return nil, fmt.Errorf("handler permissions: no resource types")
	}
	return doc.Types, nil
}

// ResourceTypes returns the distinct resource types a template declares
// (conditional ones included: the policy must cover every branch), sorted.
func ResourceTypes(src []byte) ([]string, error) {
	var doc struct {
		Resources map[string]struct {
			Type string `yaml:"Type"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("template resources: %w", err)
	}
	seen := map[string]bool{}
	var out []string
	for name, r := range doc.Resources {
		if r.Type == "" {
			return nil, fmt.Errorf("template resource %s has no Type", name)
		}
		if !seen[r.Type] {
			seen[r.Type] = true
			out = append(out, r.Type)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("template declares no resources")
	}
	sort.Strings(out)
	return out, nil
}
