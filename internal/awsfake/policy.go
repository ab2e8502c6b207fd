package awsfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Policy is an identity-based IAM policy as the fake evaluates it, following
// the IAM policy evaluation logic (IAM User Guide, "Policy evaluation logic"
// and "IAM JSON policy elements"): a request is allowed when no Deny
// statement matches it and, for each resource it touches, some Allow
// statement matches; a statement matches when its Action, its Resource and
// every one of its Condition operators match. Action names match
// case-insensitively, resources case-sensitively, both with the * and ?
// wildcards. A condition key the request lacks makes the operator false
// (unless it ends in IfExists).
//
// Only what gpipe's policies use is understood, and anything else is refused
// when the policy is parsed rather than ignored: the String* operators and
// the aws:ResourceTag/KEY and aws:RequestTag/KEY keys, and the keys of a
// request's context the fake models (iam:AWSServiceName).
type Policy struct {
	stmts []pstmt
}

type pstmt struct {
	sid                string
	allow              bool
	actions, resources []string
	conds              []pcond
}

type pcond struct {
	op       string // StringEquals, ..., without IfExists
	ifExists bool
	key      string // as written, e.g. aws:ResourceTag/gpipe:run-id
	values   []string
}

// Resource is one resource a request acts on: its ARN ("*" for actions
// without resource-level permissions) and the tags it carries.
type Resource struct {
	ARN  string
	Tags map[string]string
	// Context holds the request's other condition keys, such as
	// iam:AWSServiceName for iam:CreateServiceLinkedRole.
	Context map[string]string
}

// contextKeys are the condition keys other than tags the fake evaluates.
var contextKeys = []string{"iam:awsservicename"}

// ParsePolicy reads an IAM policy document.
func ParsePolicy(doc []byte) (*Policy, error) {
	var raw struct {
		Version   string
		Statement []struct {
			Sid              string
			Effect           string
			Action, Resource stringOrList
			NotAction        any
			NotResource      any
			Principal        any
			Condition        map[string]map[string]stringOrList
		}
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if raw.Version != "2012-10-17" {
		return nil, fmt.Errorf("policy: Version %q, want 2012-10-17 (older versions do not substitute policy variables)", raw.Version)
	}
	p := &Policy{}
	for i, s := range raw.Statement {
		where := fmt.Sprintf("policy statement %d (%s)", i+1, s.Sid)
		if s.NotAction != nil || s.NotResource != nil || s.Principal != nil {
			return nil, fmt.Errorf("%s: NotAction, NotResource and Principal are not understood by the fake", where)
		}
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return nil, fmt.Errorf("%s: Effect %q", where, s.Effect)
		}
		if len(s.Action) == 0 || len(s.Resource) == 0 {
			return nil, fmt.Errorf("%s: needs Action and Resource", where)
		}
		st := pstmt{sid: s.Sid, allow: s.Effect == "Allow", actions: s.Action, resources: s.Resource}
		for op, keys := range s.Condition {
			base, ifExists := strings.CutSuffix(op, "IfExists")
			switch base {
			case "StringEquals", "StringNotEquals", "StringLike", "StringNotLike":
			default:
				return nil, fmt.Errorf("%s: condition operator %s is not understood by the fake", where, op)
			}
			for key, vals := range keys {
				if !strings.HasPrefix(strings.ToLower(key), "aws:resourcetag/") && !strings.HasPrefix(strings.ToLower(key), "aws:requesttag/") &&
					!slices.Contains(contextKeys, strings.ToLower(key)) {
					return nil, fmt.Errorf("%s: condition key %s is not understood by the fake", where, key)
				}
				st.conds = append(st.conds, pcond{op: base, ifExists: ifExists, key: key, values: vals})
			}
		}
		p.stmts = append(p.stmts, st)
	}
	return p, nil
}

// Allows says whether the policy allows action on every resource, with
// requestTags being the tags the request asks to set (aws:RequestTag).
func (p *Policy) Allows(action string, requestTags map[string]string, resources ...Resource) bool {
	for _, r := range resources {
		allowed := false
		for _, st := range p.stmts {
			if !st.matches(action, r, requestTags) {
				continue
			}
			if !st.allow {
				return false // an explicit deny wins
			}
			allowed = true
		}
		if !allowed {
			return false
		}
	}
	return len(resources) > 0
}

func (st pstmt) matches(action string, r Resource, requestTags map[string]string) bool {
	ok := false
	for _, a := range st.actions {
		ok = ok || wildcard(strings.ToLower(a), strings.ToLower(action))
	}
	if !ok {
		return false
	}
	ok = false
	for _, res := range st.resources {
		ok = ok || wildcard(res, r.ARN)
	}
	if !ok {
		return false
	}
	for _, c := range st.conds {
		if !c.holds(r, requestTags) {
			return false
		}
	}
	return true
}

func (c pcond) holds(r Resource, requestTags map[string]string) bool {
	prefix, tag, _ := strings.Cut(c.key, "/")
	tags := r.Tags
	switch {
	case strings.EqualFold(prefix, "aws:RequestTag"):
		tags = requestTags
	case slices.Contains(contextKeys, strings.ToLower(c.key)):
		// Condition keys are case-insensitive.
		tags, tag = map[string]string{}, strings.ToLower(c.key)
		for k, v := range r.Context {
			tags[strings.ToLower(k)] = v
		}
	}
	v, present := tags[tag]
	if !present {
		// A missing key: IfExists makes the operator true, the negated
		// operators are true too (nothing to mismatch), the rest false.
		return c.ifExists || strings.HasPrefix(c.op, "StringNot")
	}
	any := false
	for _, want := range c.values {
		switch c.op {
		case "StringEquals", "StringNotEquals":
			any = any || v == want
		case "StringLike", "StringNotLike":
			any = any || wildcard(want, v)
		}
	}
	if strings.HasPrefix(c.op, "StringNot") {
		return !any
	}
	return any
}

// wildcard matches s against pattern, where * is any run of characters
// (slashes and colons included, unlike path.Match) and ? any one character.
func wildcard(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcard(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

// stringOrList is a policy element that is one string or a list of them.
type stringOrList []string

func (l *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %s", b)
	}
	*l = many
	return nil
}
