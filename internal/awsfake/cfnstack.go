package awsfake

import (
	"fmt"
	"strings"
	"time"
)

// stack is one CloudFormation stack and what is still to happen to it: the
// phases of its operation: the first at once, each later one PhaseTime
// after the previous one.
type stack struct {
	name, id   string
	status     string
	reason     string
	token      string
	created    time.Time
	tags       [][2]string
	params     map[string]string
	caps       []string
	resources  []*resource
	events     []event // newest first, as DescribeStackEvents returns them
	outputs    [][2]string
	tmpl       *tmpl
	phases     []func() // the operation's remaining phases
	opStart    time.Time
	phasesDone int
	fail       *Failure // creation fails on this resource
	// The instance's type and market, as EC2 was asked to launch it.
	instType, instMarket, maxPrice string
}

type resource struct {
	logical, typ, physical, status string
}

type event struct {
	id, logical, physical, typ, status, reason string
	at                                         time.Time
}

// Failure makes a resource fail with a reason, as EC2 or IAM would.
type Failure struct {
	Resource string // logical id, e.g. "Instance"
	Reason   string
}

func (c *CloudFormation) event(st *stack, logical, physical, typ, status, reason string) {
	c.evSeq++
	st.events = append([]event{{id: fmt.Sprintf("%08x-%04x-4000-8000-%012x", c.evSeq, c.evSeq, c.evSeq), logical: logical,
		physical: physical, typ: typ, status: status, reason: reason, at: c.now()}}, st.events...)
}

func (c *CloudFormation) stackEvent(st *stack, status, reason string) {
	st.status, st.reason = status, reason
	c.event(st, st.name, st.id, "AWS::CloudFormation::Stack", status, reason)
}

func (c *CloudFormation) resEvent(st *stack, r *resource, status, reason string) {
	r.status = status
	c.event(st, r.logical, r.physical, r.typ, status, reason)
}

// planCreate lays out a creation: every resource starts, then half of them
// complete, then the rest (or the failure and a rollback).
func (c *CloudFormation) planCreate(st *stack) {
	c.stackEvent(st, "CREATE_IN_PROGRESS", "User Initiated")
	st.opStart, st.phasesDone = c.now(), 0
	half := len(st.resources) / 2
	st.phases = []func(){
		func() {
			for _, r := range st.resources {
				c.resEvent(st, r, "CREATE_IN_PROGRESS", "")
				r.physical = physicalID(st, r, c.evSeq)
				c.resEvent(st, r, "CREATE_IN_PROGRESS", "Resource creation Initiated")
				if r.typ == "AWS::S3::Bucket" && st.fail == nil {
					if reason := c.createBucket(r.physical); reason != "" {
						st.fail = &Failure{Resource: r.logical, Reason: reason}
					}
				}
			}
		},
		func() {
			for _, r := range st.resources[:half] {
				if st.fail == nil || r.logical != st.fail.Resource {
					c.resEvent(st, r, "CREATE_COMPLETE", "")
				}
			}
		},
	}
	for range c.CreateWaits {
		st.phases = append(st.phases, func() {}) // EC2 takes its time
	}
	if st.fail != nil {
		st.phases = append(st.phases, func() {
			var failed *resource
			for _, r := range st.resources {
				if r.logical == st.fail.Resource {
					failed = r
				}
			}
			if failed == nil {
				failed = st.resources[len(st.resources)-1]
			}
			c.resEvent(st, failed, "CREATE_FAILED", st.fail.Reason)
			for _, r := range st.resources {
				if r.status == "CREATE_IN_PROGRESS" {
					c.resEvent(st, r, "CREATE_FAILED", "Resource creation cancelled")
				}
			}
			c.stackEvent(st, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: ["+failed.logical+"]. Rollback requested by user.")
		})
		for range c.RollbackWaits {
			st.phases = append(st.phases, func() {})
		}
		st.phases = append(st.phases, func() {
			if failed := c.deleteResources(st); failed != "" {
				c.stackEvent(st, "ROLLBACK_FAILED", "The following resource(s) failed to delete: ["+failed+"]. ")
				return
			}
			c.stackEvent(st, "ROLLBACK_COMPLETE", "")
		})
		return
	}
	st.phases = append(st.phases, func() {
		for _, r := range st.resources[half:] {
			c.resEvent(st, r, "CREATE_COMPLETE", "")
		}
		for _, r := range st.resources {
			if r.typ == "AWS::EC2::Instance" {
				c.s.SSM.AddInstance(r.physical, c.s.SSM.BootPolls) // the agent registers once the instance boots
				c.s.EC2.launched(r.physical, st.zone())
			}
		}
		for _, o := range st.tmpl.Outputs {
			st.outputs = append(st.outputs, [2]string{o.Key, st.eval(o.Value)})
		}
		c.stackEvent(st, "CREATE_COMPLETE", "")
	})
}

// planDelete lays out a deletion. Deleting a stack that is being created
// cancels the creation first, as CloudFormation does.
func (c *CloudFormation) planDelete(st *stack) {
	wasCreating := st.status == "CREATE_IN_PROGRESS"
	c.stackEvent(st, "DELETE_IN_PROGRESS", "User Initiated")
	st.opStart, st.phasesDone = c.now(), 0
	st.phases = []func(){func() {
		if wasCreating {
			for _, r := range st.resources {
				if r.status == "CREATE_IN_PROGRESS" {
					c.resEvent(st, r, "CREATE_FAILED", "Resource creation cancelled")
				}
			}
		}
		for _, r := range st.resources {
			if r.status != "DELETE_COMPLETE" && r.physical != "" {
				c.resEvent(st, r, "DELETE_IN_PROGRESS", "")
			}
		}
	}}
	if c.deleteFail != nil {
		f := *c.deleteFail
		st.phases = append(st.phases, func() {
			for _, r := range st.resources {
				if r.logical == f.Resource {
					c.resEvent(st, r, "DELETE_FAILED", f.Reason)
				} else if r.status == "DELETE_IN_PROGRESS" {
					c.resEvent(st, r, "DELETE_COMPLETE", "")
				}
			}
			c.stackEvent(st, "DELETE_FAILED", "The following resource(s) failed to delete: ["+f.Resource+"]. ")
		})
		return
	}
	st.phases = append(st.phases, func() {
		if failed := c.deleteResources(st); failed != "" {
			c.stackEvent(st, "DELETE_FAILED", "The following resource(s) failed to delete: ["+failed+"]. ")
			return
		}
		c.stackEvent(st, "DELETE_COMPLETE", "")
	})
}

// deleteResources deletes what the stack created, newest first, and returns
// the logical ids of those that could not be deleted (comma-separated).
func (c *CloudFormation) deleteResources(st *stack) string {
	var failed []string
	for i := len(st.resources) - 1; i >= 0; i-- {
		r := st.resources[i]
		if r.physical == "" || r.status == "DELETE_COMPLETE" {
			continue
		}
		if reason := c.deleteRefused(st, r); reason != "" {
			c.resEvent(st, r, "DELETE_FAILED", reason)
			failed = append(failed, r.logical)
			continue
		}
		switch r.typ {
		case "AWS::EC2::Instance":
			c.s.SSM.terminate(r.physical)
			c.s.EC2.terminated(r.physical, "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown")
		case "AWS::S3::Bucket":
			if reason := c.deleteBucket(r.physical); reason != "" {
				c.resEvent(st, r, "DELETE_FAILED", reason)
				failed = append(failed, r.logical)
				continue
			}
		}
		c.resEvent(st, r, "DELETE_COMPLETE", "")
	}
	return strings.Join(failed, ", ")
}

func physicalID(st *stack, r *resource, n int) string {
	switch r.typ {
	case "AWS::EC2::Instance":
		return fmt.Sprintf("i-0%016x", n)
	case "AWS::EC2::VPC":
		return fmt.Sprintf("vpc-0%016x", n)
	case "AWS::EC2::Subnet":
		return fmt.Sprintf("subnet-0%016x", n)
	case "AWS::EC2::SecurityGroup":
		return fmt.Sprintf("sg-0%016x", n)
	case "AWS::S3::Bucket":
		// CloudFormation's generated name: stack name, logical id and a
		// random suffix, lower case, at most 63 characters (S3's limit).
		suffix := fmt.Sprintf("-%s-%x", r.logical, n)
		name := st.name
		if len(name)+len(suffix) > 63 {
			name = name[:63-len(suffix)]
		}
		return strings.ToLower(name + suffix)
	}
	return fmt.Sprintf("%s-%s-%X", st.name, r.logical, n)
}

func (st *stack) tag(key string) string {
	for _, t := range st.tags {
		if t[0] == key {
			return t[1]
		}
	}
	return ""
}
