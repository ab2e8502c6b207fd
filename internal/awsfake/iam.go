package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gpipe/gpipe/steps/aws/template"
)

// Principal is who the test credentials stand for, as AWS names the caller
// in an access-denied message.
const Principal = "arn:aws:iam::" + Account + ":user/gpipe-test"

// SetPolicy makes the server enforce an identity-based policy on every
// request it serves, and on every call its CloudFormation makes with the
// caller's credentials while it creates and deletes stack resources (the
// handler permissions of each resource type, from the registry-schema table
// steps/aws/template embeds). Without a policy everything is allowed, as for
// an administrator.
func (s *Server) SetPolicy(doc []byte) error {
	p, err := ParsePolicy(doc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
	return nil
}

// Denied returns the "action on resource" of every request and handler call
// the policy refused, oldest first.
func (s *Server) Denied() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.denied...)
}

// permit evaluates the policy for an action; it returns the resource
// refused, or "" when allowed.
func (s *Server) permit(action string, requestTags map[string]string, res ...Resource) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policy == nil {
		return ""
	}
	for _, r := range res {
		if !s.policy.Allows(action, requestTags, r) {
			s.denied = append(s.denied, action+" on "+r.ARN)
			return r.ARN
		}
	}
	return ""
}

// notAuthorized is IAM's message for an action no statement allows.
func notAuthorized(action, arn string) string {
	on := ""
	if arn != "*" {
		on = " on resource: " + arn
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s%s because no identity-based policy allows the %s action",
		Principal, action, on, action)
}

// denyQuery answers a CloudFormation or EC2 request the policy refuses, in
// the service's own error shape, and says whether it did. CloudFormation
// answers 403 AccessDenied; EC2 403 UnauthorizedOperation, whose message
// starts "You are not authorized to perform this operation." (EC2 API
// Reference, "Error codes").
func (s *Server) denyQuery(w http.ResponseWriter, form url.Values) bool {
	op := form.Get("Action")
	if form.Get("Version") == ec2Version {
		action := "ec2:" + op
		if arn := s.permit(action, nil, Resource{ARN: "*"}); arn != "" {
			ec2Error(w, s.requestID(), http.StatusForbidden, "UnauthorizedOperation",
				"You are not authorized to perform this operation. "+notAuthorized(action, arn))
			return true
		}
		return false
	}
	action := "cloudformation:" + op
	res, reqTags := s.CFN.requestResource(op, form)
	if arn := s.permit(action, reqTags, res); arn != "" {
		writeCFNError(w, s.requestID(), &cfnError{http.StatusForbidden, "Sender", "AccessDenied", notAuthorized(action, arn)})
		return true
	}
	return false
}

// denyJSON does the same for SSM, CloudWatch Logs and Secrets Manager,
// which answer 400 AccessDeniedException.
func (s *Server) denyJSON(w http.ResponseWriter, prefix, op string, body []byte) bool {
	action := prefix + ":" + op
	var in struct {
		DocumentName, LogGroupName, LogStreamName, Name, SecretId string
		InstanceIds                                               []string
	}
	_ = json.Unmarshal(body, &in) // the service reports a bad body itself
	res := []Resource{{ARN: "*"}}
	switch action {
	case "ssm:SendCommand":
		// The document and each instance are resources of the call (SSM's
		// entry in the Service Authorization Reference); AWS-owned documents
		// have no account in their ARN.
		res = []Resource{{ARN: "arn:aws:ssm:" + Region + "::document/" + in.DocumentName}}
		for _, id := range in.InstanceIds {
			res = append(res, Resource{ARN: "arn:aws:ec2:" + Region + ":" + Account + ":instance/" + id, Tags: s.CFN.instanceTags(id)})
		}
	case "ssm:GetParameter":
		arn := in.Name
		if !strings.HasPrefix(arn, "arn:") {
			arn = parameterARN(in.Name)
		}
		res = []Resource{{ARN: arn}}
	case "secretsmanager:GetSecretValue":
		// A secret's ARN ends in six random characters (the fake's are
		// AbCdEf, see secrets.go).
		arn := in.SecretId
		if !strings.HasPrefix(arn, "arn:") {
			arn = fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", Region, Account, in.SecretId)
		}
		res = []Resource{{ARN: arn}}
	case "logs:GetLogEvents":
		res = []Resource{{ARN: "arn:aws:logs:" + Region + ":" + Account + ":log-group:" + in.LogGroupName + ":log-stream:" + in.LogStreamName}}
	}
	if arn := s.permit(action, nil, res...); arn != "" {
		w.Header().Set("X-Amzn-RequestId", s.requestID())
		jsonError(w, http.StatusBadRequest, "AccessDeniedException", notAuthorized(action, arn))
		return true
	}
	return false
}

// requestResource is the stack a CloudFormation request names ("*" for
// calls on no stack) and the tags it asks to set.
func (c *CloudFormation) requestResource(op string, form url.Values) (Resource, map[string]string) {
	var reqTags map[string]string
	if op == "CreateStack" {
		reqTags = map[string]string{}
		tk, tv := members(form, "Tags", "Key"), members(form, "Tags", "Value")
		for i := range tk {
			reqTags[tk[i]] = tv[i]
		}
	}
	name := form.Get("StackName")
	if name == "" {
		return Resource{ARN: "*"}, reqTags
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.find(name); st != nil && op != "CreateStack" {
		return Resource{ARN: st.id, Tags: tagMap(st.tags)}, reqTags
	}
	if strings.HasPrefix(name, "arn:") {
		return Resource{ARN: name}, reqTags
	}
	return Resource{ARN: fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%08x-0000-4000-8000-%012x", Region, Account, name,
		len(c.stacks)+1, len(c.stacks)+1)}, reqTags
}

func tagMap(tags [][2]string) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t[0]] = t[1]
	}
	return m
}

// resourceTags are the tags CloudFormation gives a stack's resource: the
// stack's own tags, which it propagates, and its aws:cloudformation:* tags
// (CloudFormation User Guide, "Tags").
func resourceTags(st *stack, logical string) map[string]string {
	m := tagMap(st.tags)
	m["aws:cloudformation:stack-name"] = st.name
	m["aws:cloudformation:stack-id"] = st.id
	m["aws:cloudformation:logical-id"] = logical
	return m
}

// instanceTags are the tags of an instance a stack created (nil for one a
// test registered directly).
func (c *CloudFormation) instanceTags(id string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stacks {
		for _, r := range st.resources {
			if r.typ == "AWS::EC2::Instance" && r.physical == id {
				return resourceTags(st, r.logical)
			}
		}
	}
	return nil
}

// ec2Kind is the EC2 ARN resource type of a template resource type; routes,
// associations and attachments act on their route table or gateway.
func ec2Kind(typ string) string {
	switch typ {
	case "AWS::EC2::VPC":
		return "vpc"
	case "AWS::EC2::SecurityGroup":
		return "security-group"
	case "AWS::EC2::InternetGateway", "AWS::EC2::VPCGatewayAttachment":
		return "internet-gateway"
	case "AWS::EC2::RouteTable", "AWS::EC2::Route", "AWS::EC2::SubnetRouteTableAssociation":
		return "route-table"
	case "AWS::EC2::LaunchTemplate":
		return "launch-template"
	}
	return strings.ToLower(typ[strings.LastIndex(typ, ":")+1:]) // instance, subnet, volume, ...
}

// handlerResource is what a handler's call of action acts on, for a
// resource r of stack st: EC2's Describe* calls have no resource-level
// permissions ("*"); IAM calls name the stack's role or instance profile
// (iam:PassRole from the instance handler passes the role); the rest name r
// itself, carrying the tags CloudFormation gives it.
func handlerResource(st *stack, r *resource, action string) Resource {
	svc, op, _ := strings.Cut(action, ":")
	if svc == "ec2" && strings.HasPrefix(op, "Describe") {
		return Resource{ARN: "*"}
	}
	name := func(typ string) (string, string) {
		for _, o := range st.resources {
			if o.typ == typ {
				return o.logical, fmt.Sprintf("%s-%s-FAKE", st.name, o.logical)
			}
		}
		return r.logical, fmt.Sprintf("%s-%s-FAKE", st.name, r.logical)
	}
	if svc == "iam" {
		kind, typ := "role", "AWS::IAM::Role"
		if strings.Contains(op, "InstanceProfile") {
			kind, typ = "instance-profile", "AWS::IAM::InstanceProfile"
		}
		logical, n := name(typ)
		return Resource{ARN: "arn:aws:iam::" + Account + ":" + kind + "/" + n, Tags: resourceTags(st, logical)}
	}
	kind := ec2Kind(r.typ)
	return Resource{ARN: fmt.Sprintf("arn:aws:%s:%s:%s:%s/%s-%s", svc, Region, Account, kind, st.name, r.logical),
		Tags: resourceTags(st, r.logical)}
}

// refusedHandler checks the calls a resource's handlers make for an
// operation (create, which also reads back what it made, or delete) and
// returns CloudFormation's event reason for the first the policy refuses, or
// "". The caller holds c.mu.
func (c *CloudFormation) refusedHandler(st *stack, r *resource, handlers ...string) string {
	c.s.mu.Lock()
	enforced := c.s.policy != nil
	c.s.mu.Unlock()
	if !enforced {
		return ""
	}
	table, err := template.Handlers()
	if err != nil {
		c.s.violation("handler permissions: %v", err)
		return ""
	}
	perms, ok := table[r.typ]
	if !ok {
		c.s.violation("stack %s: resource type %s has no known handler permissions", st.name, r.typ)
		return ""
	}
	for _, h := range handlers {
		for _, action := range perms[h] {
			res := handlerResource(st, r, action)
			if arn := c.s.permit(action, res.Tags, res); arn != "" {
				svc, _, _ := strings.Cut(action, ":")
				return fmt.Sprintf("Resource handler returned message: \"%s (Service: %s, Status Code: 403, Request ID: %s)\" (RequestToken: %s, HandlerErrorCode: AccessDenied)",
					notAuthorized(action, arn), strings.ToUpper(svc[:1])+svc[1:], c.s.requestID(), st.token)
			}
		}
	}
	return ""
}

// checkCreateHandlers makes a creation fail on the first resource whose
// create or read handler the policy refuses (unless a test already chose a
// failure).
func (c *CloudFormation) checkCreateHandlers(st *stack) {
	for _, r := range st.resources {
		if st.fail != nil {
			return
		}
		if reason := c.refusedHandler(st, r, template.HandlerCreate, template.HandlerRead); reason != "" {
			st.fail = &Failure{Resource: r.logical, Reason: reason}
		}
	}
}

// deleteRefused is the reason a resource's delete handler fails under the
// policy, or "".
func (c *CloudFormation) deleteRefused(st *stack, r *resource) string {
	return c.refusedHandler(st, r, template.HandlerDelete)
}
