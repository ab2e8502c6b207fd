package awsfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	cfnVersion = "2010-05-15"
	cfnNS      = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
)

// CloudFormation is the fake's CloudFormation state for one account and
// region.
type CloudFormation struct {
	s          *Server
	mu         sync.Mutex
	stacks     []*stack
	evSeq      int
	nextFail   *Failure
	deleteFail *Failure
	creates    []url.Values
	// PageSize bounds DescribeStackEvents and DescribeStacks pages (default 3),
	// so that pagination is exercised.
	PageSize int
	// PhaseTime is how long each phase of a stack operation takes on the
	// fake's clock (Options.Now): a stack advances with time, not with the
	// number of polls, so polling faster never makes it finish sooner. A
	// creation takes two PhaseTimes, a deletion one. Default 1s, so that runs on
	// the real clock stay fast; tests on a fake clock may take minutes, as
	// CloudFormation does.
	PhaseTime time.Duration
	// CreateWaits adds phases during which a creation makes no progress, for
	// tests that act while a stack is CREATE_IN_PROGRESS.
	CreateWaits int
	// RollbackWaits does the same for rollbacks.
	RollbackWaits int
	at            time.Time // while a phase runs: its due time, which stamps its events
}

func newCloudFormation(s *Server) *CloudFormation {
	return &CloudFormation{s: s, PageSize: 3, PhaseTime: time.Second}
}

func (c *CloudFormation) now() time.Time {
	if !c.at.IsZero() {
		return c.at
	}
	return c.s.now().UTC().Truncate(time.Millisecond)
}

// settle performs, in order, every phase of every stack's operation that is
// due by the fake's clock, each stamped with its due time.
func (c *CloudFormation) settle() {
	now := c.now()
	for _, st := range c.stacks {
		for len(st.phases) > 0 {
			// The first phase starts with the operation (CloudFormation
			// begins on the resources at once); each later one takes PhaseTime.
			due := st.opStart.Add(time.Duration(st.phasesDone) * c.PhaseTime)
			if due.After(now) {
				break
			}
			next := st.phases[0]
			st.phases = st.phases[1:]
			st.phasesDone++
			c.at = due
			next()
			c.at = time.Time{}
		}
	}
}

// FailNextCreate makes the next created stack fail on a resource and roll back.
func (c *CloudFormation) FailNextCreate(f Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextFail = &f
}

// FailDeletes makes deletions fail on a resource (nil: deletions succeed).
func (c *CloudFormation) FailDeletes(f *Failure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleteFail = f
}

// Creates returns the form of every accepted CreateStack request.
func (c *CloudFormation) Creates() []url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]url.Values(nil), c.creates...)
}

// StackInfo is a stack as a test sees it.
type StackInfo struct {
	Name, ID, Status string
	Tags             map[string]string
	Resources        map[string]string // logical id → physical id, for resources created
}

// Stacks returns every stack ever created, deleted ones included, oldest first.
func (c *CloudFormation) Stacks() []StackInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle()
	var out []StackInfo
	for _, st := range c.stacks {
		tags := map[string]string{}
		for _, t := range st.tags {
			tags[t[0]] = t[1]
		}
		res := map[string]string{}
		for _, r := range st.resources {
			if r.physical != "" {
				res[r.logical] = r.physical
			}
		}
		out = append(out, StackInfo{Name: st.name, ID: st.id, Status: st.status, Tags: tags, Resources: res})
	}
	return out
}

// find resolves a StackName parameter: a stack id finds the stack even when
// deleted; a name finds only a stack that is not deleted.
func (c *CloudFormation) find(name string) *stack {
	for i := len(c.stacks) - 1; i >= 0; i-- {
		st := c.stacks[i]
		if st.id == name || st.name == name && st.status != "DELETE_COMPLETE" {
			return st
		}
	}
	return nil
}

type cfnError struct {
	status         int
	typ, code, msg string
}

func (e *cfnError) Error() string { return e.code + ": " + e.msg }

func validation(format string, args ...any) *cfnError {
	return &cfnError{http.StatusBadRequest, "Sender", "ValidationError", fmt.Sprintf(format, args...)}
}

func notExist(name string) *cfnError { return validation("Stack with id %s does not exist", name) }

func (c *CloudFormation) serve(w http.ResponseWriter, form url.Values) {
	action := form.Get("Action")
	rid := c.s.requestID()
	if c.s.count("CloudFormation." + action) {
		writeCFNError(w, rid, &cfnError{http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded"})
		return
	}
	c.mu.Lock()
	c.settle()
	result, err := c.do(action, form)
	c.mu.Unlock()
	if err != nil {
		writeCFNError(w, rid, err)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", rid)
	fmt.Fprintf(w, `<%sResponse xmlns="%s">`, action, cfnNS)
	enc := xml.NewEncoder(w)
	if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		c.s.violation("encode %s: %v", action, err)
	}
	fmt.Fprintf(w, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, rid, action)
}

func writeCFNError(w http.ResponseWriter, rid string, e *cfnError) {
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", rid)
	w.WriteHeader(e.status)
	var msg strings.Builder
	_ = xml.EscapeText(&msg, []byte(e.msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		cfnNS, e.typ, e.code, msg.String(), rid)
}

func (c *CloudFormation) do(action string, form url.Values) (any, *cfnError) {
	switch action {
	case "CreateStack":
		return c.createStack(form)
	case "DescribeStacks":
		return c.describeStacks(form)
	case "DescribeStackEvents":
		return c.describeStackEvents(form)
	case "DeleteStack":
		return c.deleteStack(form)
	case "ListStackResources":
		return c.listStackResources(form)
	case "GetTemplateSummary":
		return c.getTemplateSummary(form)
	}
	c.s.violation("CloudFormation action %q is not served", action)
	return nil, &cfnError{http.StatusBadRequest, "Sender", "InvalidAction", "Could not find operation " + action}
}

// members reads a query-protocol list: Name.member.1, Name.member.2, ...
// (or, with field set, Name.member.1.Field).
// live counts the stacks whose instance of a type and market exists or is
// being created: what EC2's quotas count.
func (c *CloudFormation) live(typ, market string) int {
	n := 0
	for _, st := range c.stacks {
		if st.fail != nil || st.instType != typ || st.instMarket != market || st.status == "DELETE_COMPLETE" {
			continue
		}
		for _, r := range st.resources {
			if r.typ == "AWS::EC2::Instance" && r.status != "DELETE_COMPLETE" {
				n++
			}
		}
	}
	return n
}

func members(form url.Values, name, field string) []string {
	var out []string
	for i := 1; ; i++ {
		k := name + ".member." + strconv.Itoa(i)
		if field != "" {
			k += "." + field
		}
		if _, ok := form[k]; !ok {
			return out
		}
		out = append(out, form.Get(k))
	}
}

func (c *CloudFormation) createStack(form url.Values) (any, *cfnError) {
	name, body, token := form.Get("StackName"), form.Get("TemplateBody"), form.Get("ClientRequestToken")
	tk, tv := members(form, "Tags", "Key"), members(form, "Tags", "Value")
	var tags [][2]string
	for i := range tk {
		tags = append(tags, [2]string{tk[i], tv[i]})
	}
	if msg := CheckCreateStack(name, token, body, tags); msg != "" {
		return nil, validation("%s", msg)
	}
	if st := c.find(name); st != nil {
		if token != "" && token == st.token {
			return struct{ StackId string }{st.id}, nil // a retried request: same stack
		}
		return nil, &cfnError{http.StatusBadRequest, "Sender", "AlreadyExistsException", "Stack [" + name + "] already exists"}
	}
	t, err := parseTemplate(body)
	if err != nil {
		return nil, validation("%v", err)
	}
	keys, vals := members(form, "Parameters", "ParameterKey"), members(form, "Parameters", "ParameterValue")
	given := map[string]string{}
	for i, k := range keys {
		given[k] = vals[i]
	}
	params, perr := t.checkParams(given)
	if perr != nil {
		return nil, validation("%v", perr)
	}
	need, _ := t.capabilities()
	have := members(form, "Capabilities", "")
	for _, n := range need {
		// CAPABILITY_NAMED_IAM covers CAPABILITY_IAM, not the other way round.
		if !contains(have, n) && !contains(have, "CAPABILITY_NAMED_IAM") {
			return nil, &cfnError{http.StatusBadRequest, "Sender", "InsufficientCapabilitiesException", "Requires capabilities : [" + n + "]"}
		}
	}
	if v := form.Get("TimeoutInMinutes"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return nil, validation("TimeoutInMinutes must be a positive integer")
		}
	}
	st := &stack{name: name, token: token, created: c.now(), params: params, caps: have, tmpl: t, fail: c.nextFail,
		id: fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%08x-0000-4000-8000-%012x", Region, Account, name, len(c.stacks)+1, len(c.stacks)+1)}
	c.nextFail = nil
	st.tags = tags
	for _, r := range t.Resources {
		// EC2 decides whether an instance launches: the type must be offered
		// in its zone, the account's quota allow one more, and the zone have
		// capacity (for spot: spot capacity, at the maximum price).
		if typ := st.eval(r.Props["InstanceType"]); st.fail == nil && r.Type == "AWS::EC2::Instance" && typ != "" {
			st.instType = typ
			st.instMarket, st.maxPrice = st.market(r)
			l := launch{typ: typ, zone: st.zone(), market: st.instMarket, maxPrice: st.maxPrice, live: c.live(typ, st.instMarket)}
			reason := ""
			if st.instMarket == "spot" {
				reason = c.s.spotRoleFailure(len(c.stacks) + 1)
			}
			if reason == "" {
				reason = c.s.EC2.launchFailure(l, len(c.stacks)+1)
			}
			if reason != "" {
				st.fail = &Failure{Resource: r.Logical, Reason: reason}
			}
		}
	}
	for _, r := range t.Resources {
		st.resources = append(st.resources, &resource{logical: r.Logical, typ: r.Type})
	}
	c.stacks = append(c.stacks, st)
	c.creates = append(c.creates, form)
	c.checkCreateHandlers(st)
	c.planCreate(st)
	return struct{ StackId string }{st.id}, nil
}
