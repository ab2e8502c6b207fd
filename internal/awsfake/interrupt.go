package awsfake

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// instance is what EC2 knows of an instance a stack launched.
type instance struct {
	zone, state    string // pending/running, shutting-down, terminated
	reasonCode     string // stateReason, once it is no longer running
	reasonMessage  string
	notice         string // spot/instance-action document once interrupted
	terminateTimer *time.Timer
}

// launched records an instance CloudFormation started.
func (e *EC2) launched(id, zone string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.instances == nil {
		e.instances = map[string]*instance{}
	}
	e.instances[id] = &instance{zone: zone, state: "running"}
}

// terminated records an instance's end (its stack deleted it); EC2 keeps
// terminated instances visible for a while, so it stays listed.
func (e *EC2) terminated(id, code, message string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in := e.instances[id]; in != nil && in.state != "terminated" {
		in.state, in.reasonCode, in.reasonMessage = "terminated", code, message
	}
}

// Interrupt interrupts a spot instance as EC2 does (EC2 User Guide "Spot
// Instance interruption notices"): at once, instance metadata's
// spot/instance-action returns {"action": "terminate", "time": T}; after
// `after` (two minutes in EC2; tests pass less) the instance is terminated,
// its state reason Server.SpotInstanceTermination. Its SSM agent goes with
// it: commands running there stop, and their invocations stay InProgress,
// for no agent reports their end (until they would expire; see ssmhost).
func (e *EC2) Interrupt(id string, after time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.instances[id]
	if in == nil {
		e.s.violation("Interrupt: no instance %s", id)
		return
	}
	at := e.s.now().Add(after).UTC().Format("2006-01-02T15:04:05Z")
	in.notice = `{"action": "terminate", "time": "` + at + `"}`
	in.terminateTimer = time.AfterFunc(after, func() {
		e.mu.Lock()
		if in.state == "running" {
			in.state = "terminated"
			in.reasonCode, in.reasonMessage = "Server.SpotInstanceTermination", "Server.SpotInstanceTermination: Spot instance termination"
		}
		e.mu.Unlock()
		e.s.SSM.vanish(id)
	})
}

// Instances returns the ids of the instances EC2 knows, with their state.
func (e *EC2) Instances() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for id, in := range e.instances {
		out[id] = in.state
	}
	return out
}

// Zone returns the availability zone of an instance ("" when unknown).
func (e *EC2) Zone(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in := e.instances[id]; in != nil {
		return in.zone
	}
	return ""
}

// describeInstances serves DescribeInstances by InstanceId.N (EC2 API
// Reference: an unknown id fails the call with InvalidInstanceID.NotFound;
// instanceState codes 0 pending, 16 running, 32 shutting-down,
// 48 terminated). e.mu is held.
func (e *EC2) describeInstances(w http.ResponseWriter, rid string, form url.Values) (any, bool) {
	type state struct {
		Code int    `xml:"code"`
		Name string `xml:"name"`
	}
	type reason struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	}
	type item struct {
		InstanceID string  `xml:"instanceId"`
		State      state   `xml:"instanceState"`
		Zone       string  `xml:"placement>availabilityZone"`
		Reason     *reason `xml:"stateReason,omitempty"`
	}
	type reservation struct {
		ID        string `xml:"reservationId"`
		Instances []item `xml:"instancesSet>item"`
	}
	codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
	ids := indexed(form, "InstanceId")
	if len(ids) == 0 || len(form) > len(ids)+2 {
		e.s.violation("DescribeInstances is modelled by InstanceId only: %v", form)
	}
	var rs []reservation
	for _, id := range ids {
		in := e.instances[id]
		if in == nil {
			ec2Error(w, rid, http.StatusBadRequest, "InvalidInstanceID.NotFound", fmt.Sprintf("The instance ID '%s' does not exist", id))
			return nil, false
		}
		it := item{InstanceID: id, State: state{codes[in.state], in.state}, Zone: in.zone}
		if in.reasonCode != "" {
			it.Reason = &reason{in.reasonCode, in.reasonMessage}
		}
		rs = append(rs, reservation{ID: "r-" + strings.TrimPrefix(id, "i-"), Instances: []item{it}})
	}
	return struct {
		XMLName      xml.Name      `xml:"DescribeInstancesResponse"`
		NS           string        `xml:"xmlns,attr"`
		RequestID    string        `xml:"requestId"`
		Reservations []reservation `xml:"reservationSet>item"`
	}{NS: ec2NS, RequestID: rid, Reservations: rs}, true
}

// IMDSPath is where the fake serves an instance's metadata; commands run
// for it get GPIPE_IMDS_ENDPOINT=<server URL>/imds/<instance id>.
const IMDSPath = "/imds/"

// serveIMDS answers the metadata calls of the wrapper as IMDSv2 does (EC2
// User Guide "Use the Instance Metadata Service"): PUT /latest/api/token
// with X-aws-ec2-metadata-token-ttl-seconds (1 to 21600) returns a token, a
// GET must carry it (401 otherwise), and spot/instance-action is 404 until
// an interruption notice exists.
func (e *EC2) serveIMDS(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, IMDSPath)
	id, p, _ := strings.Cut(rest, "/")
	e.mu.Lock()
	in := e.instances[id]
	notice := ""
	if in != nil {
		notice = in.notice
	}
	e.mu.Unlock()
	if in == nil {
		http.Error(w, "", http.StatusNotFound)
		return
	}
	token := "imds-token-" + id
	switch {
	case r.Method == http.MethodPut && p == "latest/api/token":
		var ttl int
		if _, err := fmt.Sscan(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"), &ttl); err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte(token))
	case r.Method == http.MethodGet && p == "latest/meta-data/spot/instance-action":
		if r.Header.Get("X-aws-ec2-metadata-token") != token {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		if notice == "" {
			http.Error(w, "", http.StatusNotFound)
			return
		}
		if !json.Valid([]byte(notice)) {
			e.s.violation("notice %q is not JSON", notice)
		}
		_, _ = w.Write([]byte(notice))
	default:
		e.s.violation("IMDS %s %s is not modelled", r.Method, r.URL.Path)
		http.Error(w, "", http.StatusNotFound)
	}
}

// vanish is an instance's end under its agent: it no longer registers, its
// commands' processes die, and their invocations stay InProgress.
func (m *SSM) vanish(id string) {
	m.mu.Lock()
	delete(m.instances, id)
	var cs []*command
	for _, c := range m.commands {
		if c.instance == id {
			c.orphaned = true
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	for _, c := range cs {
		c.kill()
	}
}
