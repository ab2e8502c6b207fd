package awsfake

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SSM is Run Command on instances that are this machine: SendCommand starts
// the AWS-RunShellScript commands with sh, as the agent does, and their
// output lines go to CloudWatch Logs as they are printed.
type SSM struct {
	s         *Server
	mu        sync.Mutex
	instances map[string]int // instance id → DescribeInstanceInformation polls before it registers
	commands  map[string]*command
	seq       int
	// BootPolls is how many DescribeInstanceInformation calls an instance a
	// stack creates stays unregistered (default 2).
	BootPolls int
	// HiddenPolls is how many GetCommandInvocation calls of a new command
	// answer InvocationDoesNotExist (default 1), as right after SendCommand.
	HiddenPolls int
	// Env, when set, adds to the environment of the commands an instance
	// runs: tests give each instance folders of its own, as each real
	// instance is a machine of its own. Set it before commands are sent.
	Env func(instance string) []string
}

type command struct {
	id, instance, logGroup string
	comment                string
	requested              time.Time
	script                 string
	polls                  int
	proc                   *exec.Cmd
	done                   chan struct{}
	stdout, stderr         strings.Builder // guarded by SSM.mu
	exit                   int
	cancelled, timedOut    bool
	orphaned               bool // its instance vanished under it (interrupt.go)
	timer                  *time.Timer
}

func newSSM(s *Server) *SSM {
	return &SSM{s: s, instances: map[string]int{}, commands: map[string]*command{}, HiddenPolls: 1, BootPolls: 2}
}

// SetParameter puts a String parameter in the fake's Parameter Store, such as
// a public one (/aws/service/canonical/...) that GetParameter then serves.
func (m *SSM) SetParameter(name, value string) {
	m.s.Secrets.PutParameter(name, value, false)
}

// AddInstance registers an instance whose agent comes online after
// offlinePolls DescribeInstanceInformation calls.
func (m *SSM) AddInstance(id string, offlinePolls int) {
	m.mu.Lock()
	m.instances[id] = offlinePolls
	m.mu.Unlock()
	// A managed instance is an EC2 instance too; a stack's says its zone.
	m.s.EC2.launched(id, Region+"a")
}

// terminate removes a terminated instance: its agent is gone, and so are the
// commands running on it.
func (m *SSM) terminate(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.instances, id)
	for _, c := range m.commands {
		if c.instance == id {
			c.kill()
		}
	}
}

// Sent returns how many SendCommand requests were accepted.
func (m *SSM) Sent() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.commands)
}

// Status returns a command's status as GetCommandInvocation would report it
// once visible ("" for an unknown command).
func (m *SSM) Status(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.commands[id]
	if c == nil {
		return ""
	}
	st, _ := c.status()
	return st
}

// Wait blocks until a command's script has ended.
func (m *SSM) Wait(id string) {
	m.mu.Lock()
	c := m.commands[id]
	m.mu.Unlock()
	if c != nil {
		<-c.done
	}
}

func (m *SSM) stopAll() {
	m.mu.Lock()
	var cs []*command
	for _, c := range m.commands {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	for _, c := range cs {
		c.kill()
		<-c.done
	}
}

func (c *command) kill() {
	if c.proc != nil && c.proc.Process != nil {
		_ = syscall.Kill(-c.proc.Process.Pid, syscall.SIGKILL)
	}
}

// status is the invocation's Status and StatusDetails.
func (c *command) status() (string, string) {
	select {
	case <-c.done:
	default:
		return "InProgress", "InProgress"
	}
	switch {
	case c.orphaned:
		return "InProgress", "InProgress"
	case c.cancelled:
		return "Cancelled", "Cancelled"
	case c.timedOut:
		return "TimedOut", "ExecutionTimedOut"
	case c.exit == 0:
		return "Success", "Success"
	}
	return "Failed", "Failed"
}

func jsonError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func (m *SSM) serve(w http.ResponseWriter, op string, body []byte) {
	w.Header().Set("X-Amzn-RequestId", m.s.requestID())
	if m.s.count("SSM." + op) {
		jsonError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		m.s.violation("SSM %s: body %q is not JSON: %v", op, body, err)
		jsonError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	m.mu.Lock()
	out, status, typ, msg := m.do(op, in)
	m.mu.Unlock()
	if typ != "" {
		jsonError(w, status, typ, msg)
		return
	}
	writeJSON(w, out)
}

func (m *SSM) do(op string, in map[string]any) (out any, status int, typ, msg string) {
	bad := func(typ, format string, args ...any) (any, int, string, string) {
		return nil, http.StatusBadRequest, typ, fmt.Sprintf(format, args...)
	}
	switch op {
	case "DescribeInstanceInformation":
		var ids []string
		for _, f := range list(in["Filters"]) {
			fm, _ := f.(map[string]any)
			if fm["Key"] != "InstanceIds" {
				return bad("InvalidFilterKey", "filter key %v is not valid", fm["Key"])
			}
			for _, v := range list(fm["Values"]) {
				ids = append(ids, fmt.Sprint(v))
			}
		}
		var infos []map[string]any
		for _, id := range ids {
			n, ok := m.instances[id]
			if !ok {
				continue
			}
			if n > 0 {
				m.instances[id] = n - 1
				continue // booting: the agent has not registered yet
			}
			infos = append(infos, map[string]any{"InstanceId": id, "PingStatus": "Online", "PlatformType": "Linux", "AgentVersion": "3.3.0.0"})
		}
		return map[string]any{"InstanceInformationList": infos}, 0, "", ""
	case "SendCommand":
		return m.send(in)
	case "GetParameter":
		return m.s.Secrets.getParameter(in)
	case "GetCommandInvocation":
		c := m.commands[fmt.Sprint(in["CommandId"])]
		if c == nil || c.instance != fmt.Sprint(in["InstanceId"]) {
			return bad("InvocationDoesNotExist", "")
		}
		c.polls++
		if c.polls <= m.HiddenPolls {
			return bad("InvocationDoesNotExist", "")
		}
		st, details := c.status()
		if c.polls == m.HiddenPolls+1 {
			st, details = "InProgress", "InProgress" // the first visible poll always sees it running
		}
		code := -1
		if st != "InProgress" {
			code = c.exit
		}
		return map[string]any{"CommandId": c.id, "InstanceId": c.instance, "DocumentName": "AWS-RunShellScript", "PluginName": "aws:runShellScript",
			"Status": st, "StatusDetails": details, "ResponseCode": code,
			"StandardOutputContent": truncate(c.stdout.String(), 24000), "StandardErrorContent": truncate(c.stderr.String(), 8000),
			"CloudWatchOutputConfig": map[string]any{"CloudWatchLogGroupName": c.logGroup, "CloudWatchOutputEnabled": c.logGroup != ""}}, 0, "", ""
	case "ListCommands":
		var after time.Time
		for _, f := range list(in["Filters"]) {
			fm, _ := f.(map[string]any)
			switch fm["key"] {
			case "InvokedAfter":
				t, err := time.Parse(time.RFC3339, fmt.Sprint(fm["value"]))
				if err != nil {
					return bad("InvalidFilterValue", "InvokedAfter %v: %v", fm["value"], err)
				}
				after = t
			default:
				return bad("InvalidFilterKey", "filter key %v is not served", fm["key"])
			}
		}
		cmds := []map[string]any{}
		for _, c := range m.ordered() {
			if (in["InstanceId"] == nil || in["InstanceId"] == c.instance) && (in["CommandId"] == nil || in["CommandId"] == c.id) && !c.requested.Before(after) {
				st, _ := c.status()
				cmds = append(cmds, map[string]any{"CommandId": c.id, "Comment": c.comment, "DocumentName": "AWS-RunShellScript",
					"InstanceIds": []string{c.instance}, "RequestedDateTime": float64(c.requested.UnixMilli()) / 1000, "Status": st})
			}
		}
		return map[string]any{"Commands": cmds}, 0, "", ""
	case "CancelCommand":
		c := m.commands[fmt.Sprint(in["CommandId"])]
		if c == nil {
			return bad("InvalidCommandId", "")
		}
		select {
		case <-c.done:
		default:
			c.cancelled = true
			c.kill()
		}
		return map[string]any{}, 0, "", ""
	}
	m.s.violation("SSM operation %q is not served", op)
	return bad("UnknownOperationException", "")
}

// ordered returns the commands in the order they were sent.
func (m *SSM) ordered() []*command {
	out := make([]*command, 0, len(m.commands))
	for _, c := range m.commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func list(v any) []any { l, _ := v.([]any); return l }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (m *SSM) send(in map[string]any) (any, int, string, string) {
	bad := func(typ, format string, args ...any) (any, int, string, string) {
		return nil, http.StatusBadRequest, typ, fmt.Sprintf(format, args...)
	}
	if in["DocumentName"] != "AWS-RunShellScript" {
		return bad("InvalidDocument", "document %v is not served", in["DocumentName"])
	}
	ids := list(in["InstanceIds"])
	if len(ids) != 1 {
		return bad("InvalidInstanceId", "want one instance, got %v", ids)
	}
	inst := fmt.Sprint(ids[0])
	if n, ok := m.instances[inst]; !ok || n > 0 {
		return bad("InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", inst, Account)
	}
	params, _ := in["Parameters"].(map[string]any)
	cmds := list(params["commands"])
	if len(cmds) == 0 {
		return bad("InvalidParameters", "commands is required")
	}
	timeout := 3600
	if t := list(params["executionTimeout"]); len(t) > 0 {
		n, err := strconv.Atoi(fmt.Sprint(t[0]))
		if err != nil || n < 1 || n > 172800 {
			return bad("InvalidParameters", "executionTimeout %v: want 1..172800 seconds", t[0])
		}
		timeout = n
	}
	if c, _ := in["Comment"].(string); len(c) > 100 {
		return bad("ValidationException", "Comment is longer than 100 characters")
	}
	var script []string
	for _, c := range cmds {
		script = append(script, fmt.Sprint(c))
	}
	m.seq++
	c := &command{id: fmt.Sprintf("%08x-1111-4222-8333-%012x", m.seq, m.seq), instance: inst, script: strings.Join(script, "\n"), done: make(chan struct{})}
	if cw, _ := in["CloudWatchOutputConfig"].(map[string]any); cw["CloudWatchOutputEnabled"] == true {
		c.logGroup, _ = cw["CloudWatchLogGroupName"].(string)
		if c.logGroup == "" {
			c.logGroup = "/aws/ssm/AWS-RunShellScript"
		}
	}
	c.comment, _ = in["Comment"].(string)
	c.requested = m.s.now()
	m.commands[c.id] = c
	if err := m.start(c, time.Duration(timeout)*time.Second); err != nil {
		m.s.violation("start command: %v", err)
	}
	return map[string]any{"Command": map[string]any{"CommandId": c.id, "DocumentName": "AWS-RunShellScript", "InstanceIds": []string{inst},
		"Status": "Pending", "StatusDetails": "Pending", "TargetCount": 1}}, 0, "", ""
}

// start runs the command's script with sh in a process group of its own, and
// copies its output to CloudWatch Logs line by line while it runs.
func (m *SSM) start(c *command, timeout time.Duration) error {
	c.proc = exec.Command("sh", "-c", c.script)
	c.proc.Env = append(os.Environ(), "AWS_SSM_INSTANCE_ID="+c.instance, "GPIPE_IMDS_ENDPOINT="+m.s.URL+IMDSPath+c.instance,
		"GPIPE_IMDS_POLL=0.1") // a notice is seen in a tenth of a second, not 5 s
	if m.Env != nil {
		c.proc.Env = append(c.proc.Env, m.Env(c.instance)...)
	}
	c.proc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := c.proc.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := c.proc.StderrPipe()
	if err != nil {
		return err
	}
	if err := c.proc.Start(); err != nil {
		close(c.done)
		return err
	}
	c.timer = time.AfterFunc(timeout, func() {
		m.mu.Lock()
		c.timedOut = true
		m.mu.Unlock()
		c.kill()
	})
	var copies sync.WaitGroup
	prefix := c.id + "/" + c.instance + "/aws-runShellScript/"
	copyOut := func(r io.Reader, b *strings.Builder, name string) {
		defer copies.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			m.mu.Lock()
			b.WriteString(sc.Text() + "\n")
			m.mu.Unlock()
			// CloudWatch Logs has no empty events: the agent drops empty lines.
			if c.logGroup != "" && sc.Text() != "" {
				m.s.Logs.put(c.logGroup, prefix+name, sc.Text())
			}
		}
	}
	copies.Add(2)
	go copyOut(stdout, &c.stdout, "stdout")
	go copyOut(stderr, &c.stderr, "stderr")
	go func() {
		copies.Wait()
		err := c.proc.Wait()
		c.timer.Stop()
		m.mu.Lock()
		defer m.mu.Unlock()
		c.exit = c.proc.ProcessState.ExitCode()
		if err != nil && c.exit == -1 {
			c.exit = 137 // killed by a signal
		}
		close(c.done)
	}()
	return nil
}
