package awsfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	cfnVersion = "2010-05-15"
	cfnNS      = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
)

var stackNameRE = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]{0,127}$`)

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
	// CreateWaits adds DescribeStacks polls during which a creation makes no
	// progress, for tests that act while a stack is CREATE_IN_PROGRESS.
	CreateWaits int
	// RollbackWaits does the same for rollbacks.
	RollbackWaits int
}

func newCloudFormation(s *Server) *CloudFormation { return &CloudFormation{s: s, PageSize: 3} }

func (c *CloudFormation) now() time.Time { return c.s.now().UTC().Truncate(time.Millisecond) }

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
	name, body := form.Get("StackName"), form.Get("TemplateBody")
	if !stackNameRE.MatchString(name) {
		return nil, validation("1 validation error detected: Value '%s' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", name)
	}
	if body == "" {
		return nil, validation("Either Template URL or Template Body must be specified.")
	}
	token := form.Get("ClientRequestToken")
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
	tk, tv := members(form, "Tags", "Key"), members(form, "Tags", "Value")
	for i := range tk {
		st.tags = append(st.tags, [2]string{tk[i], tv[i]})
	}
	for _, r := range t.Resources {
		st.resources = append(st.resources, &resource{logical: r.Logical, typ: r.Type})
	}
	c.stacks = append(c.stacks, st)
	c.creates = append(c.creates, form)
	c.planCreate(st)
	return struct{ StackId string }{st.id}, nil
}

type xmlKV struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type xmlOutput struct {
	OutputKey   string
	OutputValue string
}

type xmlParam struct {
	ParameterKey   string
	ParameterValue string
}

type xmlStack struct {
	StackId           string
	StackName         string
	Description       string     `xml:",omitempty"`
	Parameters        []xmlParam `xml:"Parameters>member"`
	CreationTime      string
	StackStatus       string
	StackStatusReason string      `xml:",omitempty"`
	Capabilities      []string    `xml:"Capabilities>member"`
	Outputs           []xmlOutput `xml:"Outputs>member"`
	Tags              []xmlKV     `xml:"Tags>member"`
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (st *stack) view() xmlStack {
	x := xmlStack{StackId: st.id, StackName: st.name, Description: st.tmpl.Description, CreationTime: timestamp(st.created),
		StackStatus: st.status, StackStatusReason: st.reason, Capabilities: st.caps}
	keys := make([]string, 0, len(st.params))
	for k := range st.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Parameters = append(x.Parameters, xmlParam{k, st.params[k]})
	}
	for _, o := range st.outputs {
		x.Outputs = append(x.Outputs, xmlOutput{o[0], o[1]})
	}
	for _, t := range st.tags {
		x.Tags = append(x.Tags, xmlKV{t[0], t[1]})
	}
	return x
}

// page returns the items of one page and the next token ("" at the end).
func page(n int, token string, size int) (start, end int, next string) {
	start, _ = strconv.Atoi(token)
	end = min(start+size, n)
	if end < n {
		next = strconv.Itoa(end)
	}
	return min(start, n), end, next
}

type describeStacksResult struct {
	Stacks    []xmlStack `xml:"Stacks>member"`
	NextToken string     `xml:",omitempty"`
}

func (c *CloudFormation) describeStacks(form url.Values) (any, *cfnError) {
	if name := form.Get("StackName"); name != "" {
		st := c.find(name)
		if st == nil {
			return nil, notExist(name)
		}
		st.advance()
		return describeStacksResult{Stacks: []xmlStack{st.view()}}, nil
	}
	var live []*stack
	for _, st := range c.stacks {
		if st.status != "DELETE_COMPLETE" {
			live = append(live, st)
		}
	}
	start, end, next := page(len(live), form.Get("NextToken"), c.PageSize)
	res := describeStacksResult{NextToken: next}
	for _, st := range live[start:end] {
		res.Stacks = append(res.Stacks, st.view())
	}
	return res, nil
}

type xmlEvent struct {
	StackId              string
	EventId              string
	StackName            string
	LogicalResourceId    string
	PhysicalResourceId   string `xml:",omitempty"`
	ResourceType         string
	Timestamp            string
	ResourceStatus       string
	ResourceStatusReason string `xml:",omitempty"`
}

func (c *CloudFormation) describeStackEvents(form url.Values) (any, *cfnError) {
	name := form.Get("StackName")
	st := c.find(name)
	if st == nil {
		return nil, notExist(name)
	}
	start, end, next := page(len(st.events), form.Get("NextToken"), c.PageSize)
	res := struct {
		StackEvents []xmlEvent `xml:"StackEvents>member"`
		NextToken   string     `xml:",omitempty"`
	}{NextToken: next}
	for _, e := range st.events[start:end] {
		res.StackEvents = append(res.StackEvents, xmlEvent{StackId: st.id, EventId: e.id, StackName: st.name, LogicalResourceId: e.logical,
			PhysicalResourceId: e.physical, ResourceType: e.typ, Timestamp: timestamp(e.at), ResourceStatus: e.status, ResourceStatusReason: e.reason})
	}
	return res, nil
}

func (c *CloudFormation) deleteStack(form url.Values) (any, *cfnError) {
	st := c.find(form.Get("StackName"))
	if st == nil || st.status == "DELETE_COMPLETE" || st.status == "DELETE_IN_PROGRESS" {
		return struct{}{}, nil // deleting what is gone or going is a no-op
	}
	if strings.HasSuffix(st.status, "_IN_PROGRESS") && st.status != "CREATE_IN_PROGRESS" {
		return nil, validation("Stack [%s] cannot be deleted while in status %s", st.name, st.status)
	}
	c.planDelete(st)
	return struct{}{}, nil
}

type xmlResourceSummary struct {
	LogicalResourceId    string
	PhysicalResourceId   string `xml:",omitempty"`
	ResourceType         string
	LastUpdatedTimestamp string
	ResourceStatus       string
}

func (c *CloudFormation) listStackResources(form url.Values) (any, *cfnError) {
	name := form.Get("StackName")
	st := c.find(name)
	if st == nil || st.status == "DELETE_COMPLETE" {
		return nil, notExist(name)
	}
	var started []*resource
	for _, r := range st.resources {
		if r.status != "" {
			started = append(started, r)
		}
	}
	start, end, next := page(len(started), form.Get("NextToken"), c.PageSize)
	res := struct {
		Summaries []xmlResourceSummary `xml:"StackResourceSummaries>member"`
		NextToken string               `xml:",omitempty"`
	}{NextToken: next}
	for _, r := range started[start:end] {
		res.Summaries = append(res.Summaries, xmlResourceSummary{LogicalResourceId: r.logical, PhysicalResourceId: r.physical,
			ResourceType: r.typ, LastUpdatedTimestamp: timestamp(c.now()), ResourceStatus: r.status})
	}
	return res, nil
}

type xmlParamDecl struct {
	ParameterKey  string
	DefaultValue  string `xml:",omitempty"`
	ParameterType string
	NoEcho        bool
	Description   string `xml:",omitempty"`
}

func (c *CloudFormation) getTemplateSummary(form url.Values) (any, *cfnError) {
	t, err := parseTemplate(form.Get("TemplateBody"))
	if err != nil {
		return nil, validation("%v", err)
	}
	caps, reason := t.capabilities()
	res := struct {
		Parameters         []xmlParamDecl `xml:"Parameters>member"`
		Description        string         `xml:",omitempty"`
		Capabilities       []string       `xml:"Capabilities>member"`
		CapabilitiesReason string         `xml:",omitempty"`
		ResourceTypes      []string       `xml:"ResourceTypes>member"`
		Version            string
	}{Description: t.Description, Capabilities: caps, CapabilitiesReason: reason, Version: "2010-09-09"}
	seen := map[string]bool{}
	for _, r := range t.Resources {
		if !seen[r.Type] {
			seen[r.Type] = true
			res.ResourceTypes = append(res.ResourceTypes, r.Type)
		}
	}
	for _, p := range t.Params {
		d := xmlParamDecl{ParameterKey: p.Key, ParameterType: p.Type, Description: p.Description}
		if p.Default != nil {
			d.DefaultValue = *p.Default
		}
		res.Parameters = append(res.Parameters, d)
	}
	return res, nil
}
