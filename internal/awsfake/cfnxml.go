package awsfake

// The XML shapes of CloudFormation's answers, and the read-side operations.

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
