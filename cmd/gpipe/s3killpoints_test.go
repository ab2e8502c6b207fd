package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// holdProxy forwards requests to an S3 server, except the first that match
// hold: it never answers that one and closes held instead, so the test can
// kill the runner while exactly that write is in flight and has not landed.
type holdProxy struct {
	URL  string
	held chan struct{}

	upstream *httputil.ReverseProxy
	hold     func(r *http.Request, body []byte) bool
	once     sync.Once
	mu       sync.Mutex
	done     bool
}

func newHoldProxy(t *testing.T, target string, hold func(r *http.Request, body []byte) bool) *holdProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{held: make(chan struct{}), upstream: httputil.NewSingleHostReverseProxy(u), hold: hold}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *holdProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mu.Lock()
	match := !p.done && p.hold(r, body)
	p.done = p.done || match
	p.mu.Unlock()
	if match {
		p.once.Do(func() { close(p.held) })
		<-r.Context().Done() // the runner is killed: its connection closes
		return
	}
	p.upstream.ServeHTTP(w, r)
}

// TestS3KillPoints kills the runner while one chosen write to S3 is in
// flight (held by a proxy, never landing), for the writes where a crash is
// most likely to leave something behind: the spec snapshot, the first state
// document, the snapshot that adds the steps (its journal slot, and its copy
// to state.json after the slot landed), a log chunk, a step's success, and
// the final save of a finished run. Afterwards the run either does not exist
// (then running it again works) or loads; resuming it completes it; no step
// recorded succeeded runs again.
func TestS3KillPoints(t *testing.T) {
	h := newS3Harness(t)
	path := func(r *http.Request, suffix string) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix)
	}
	// A change is a record in a journal slot, or a snapshot in a slot
	// and then in state.json (pipeline/store/s3/journal.go).
	stateWrite := func(r *http.Request) bool {
		return path(r, "/state.json") || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/journal/"))
	}
	points := []struct {
		name string
		hold func(r *http.Request, body []byte) bool
	}{
		{"spec snapshot", func(r *http.Request, _ []byte) bool {
			return path(r, ".yaml") && strings.Contains(r.URL.Path, "/spec")
		}},
		{"state created", func(r *http.Request, _ []byte) bool {
			return path(r, "/state.json") && r.Header.Get("If-None-Match") == "*"
		}},
		{"steps added to the journal", func(r *http.Request, _ []byte) bool {
			return stateWrite(r) && r.Header.Get("X-Amz-Meta-Gpipe-Kind") == "snapshot"
		}},
		{"steps added to state.json", func(r *http.Request, _ []byte) bool {
			return path(r, "/state.json") && r.Header.Get("If-Match") != ""
		}},
		{"log chunk", func(r *http.Request, _ []byte) bool {
			return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/logs/b.1/")
		}},
		{"success of b", func(r *http.Request, body []byte) bool {
			return stateWrite(r) && bytes.Contains(body, []byte(`"id":"b","type":"shell","status":"succeeded"`))
		}},
		{"final save", func(r *http.Request, body []byte) bool {
			return stateWrite(r) && bytes.Contains(body, []byte(`"status":"succeeded","created"`))
		}},
	}
	for i, pt := range points {
		t.Run(strings.ReplaceAll(pt.name, " ", "-"), func(t *testing.T) {
			h := *h
			h.t = t
			id := fmt.Sprintf("point-%d", i)
			ledger := h.path(id + ".ledger")
			spec := fmt.Sprintf(`version: 1
name: points
steps:
  - {id: a, type: shell, with: {run: "echo \"a $%[1]s\" >> '%[2]s'"}}
  - {id: b, type: shell, needs: [a], with: {run: "echo b says hi; echo \"b $%[1]s\" >> '%[2]s'"}}
  - {id: c, type: shell, needs: [a], with: {run: "echo \"c $%[1]s\" >> '%[2]s'"}}
  - {id: d, type: shell, needs: [b, c], with: {run: "echo \"d $%[1]s\" >> '%[2]s'"}}
`, runnerVar, ledger)
			h.writeFile(id+".yaml", spec)
			proxy := newHoldProxy(t, h.srv.Endpoint, pt.hold)
			killed, r := h.runKillWhen(h.withEndpoint(proxy.URL), 1, []string{"run", "--run-id", id, id + ".yaml"}, proxy.held)
			if !killed {
				t.Fatalf("the runner never made the held write:\n%s", r)
			}
			before := map[string][]int{}
			if st := h.gpipe("status", "--json", id); st.code != 0 {
				if !strings.Contains(st.stderr, "no run "+id) {
					t.Fatalf("after the kill the run neither loads nor is absent:\n%s", st)
				}
				t.Logf("killed before the run was stored: running it again")
				if r := h.gpipeEnv(append(h.env, runnerVar+"=2"), "run", "--run-id", id, id+".yaml"); r.code != 0 {
					t.Fatalf("run again: %s", r)
				}
			} else {
				run := h.status(id)
				got := readLedger(t, ledger)
				for sid, s := range run.Steps {
					if s.Status == state.StepSucceeded {
						before[sid] = got[sid]
					}
				}
				t.Logf("after the kill: run %s, %d steps succeeded", run.Status, len(before))
				if r := h.gpipeEnv(append(h.env, runnerVar+"=2"), "resume", id); r.code != 0 {
					t.Fatalf("resume: %s", r)
				}
			}
			run := h.status(id)
			got := readLedger(t, ledger)
			if run.Status != state.RunSucceeded || run.Lease != nil {
				t.Errorf("run ended %s, lease %+v", run.Status, run.Lease)
			}
			for _, sid := range []string{"a", "b", "c", "d"} {
				if s := run.Steps[sid]; s == nil || s.Status != state.StepSucceeded {
					t.Errorf("step %s did not succeed: %+v", sid, s)
				}
				if b, ok := before[sid]; ok && fmt.Sprint(b) != fmt.Sprint(got[sid]) {
					t.Errorf("step %s was recorded succeeded after %v but ran again: %v", sid, b, got[sid])
				}
				// Once, or once more by the second runner after the kill.
				if runs := fmt.Sprint(got[sid]); runs != "[1]" && runs != "[2]" && runs != "[1 2]" {
					t.Errorf("step %s ran under runners %v", sid, got[sid])
				}
			}
			if logs := h.must("logs", id, "b").stdout; !strings.Contains(logs, "b says hi") {
				t.Errorf("b's log after resume:\n%s", logs)
			}
		})
	}
}
