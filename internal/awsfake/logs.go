package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Logs is CloudWatch Logs' GetLogEvents over the streams SSM commands write.
// Pages hold PageSize events (default 3); a forward token at the end of the
// stream is returned unchanged, as CloudWatch does, so a reader knows it has
// caught up.
type Logs struct {
	s        *Server
	mu       sync.Mutex
	streams  map[string]*stream // "group\x00stream"
	PageSize int
}

type stream struct {
	events []logEvent
}

type logEvent struct {
	at      int64
	message string
}

func (l *Logs) put(group, name, message string) {
	at := l.s.now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := group + "\x00" + name
	st := l.streams[k]
	if st == nil {
		st = &stream{}
		l.streams[k] = st
	}
	st.events = append(st.events, logEvent{at: at, message: message})
}

// Messages returns a stream's messages (tests compare them with what a step
// printed).
func (l *Logs) Messages(group, name string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	if st := l.streams[group+"\x00"+name]; st != nil {
		for _, e := range st.events {
			out = append(out, e.message)
		}
	}
	return out
}

func (l *Logs) serve(w http.ResponseWriter, op string, body []byte) {
	w.Header().Set("X-Amzn-RequestId", l.s.requestID())
	if l.s.count("Logs." + op) {
		jsonError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	if op != "GetLogEvents" {
		l.s.violation("Logs operation %q is not served", op)
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	var in struct {
		LogGroupName, LogStreamName, NextToken string
		StartFromHead                          *bool
		Limit                                  int
	}
	if err := json.Unmarshal(body, &in); err != nil {
		l.s.violation("GetLogEvents body %q: %v", body, err)
		jsonError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	if in.LogGroupName == "" || in.LogStreamName == "" {
		jsonError(w, http.StatusBadRequest, "InvalidParameterException", "logGroupName and logStreamName are required")
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.streams[in.LogGroupName+"\x00"+in.LogStreamName]
	if st == nil {
		// Namespaced, as some services send it; the SDK must strip the prefix.
		jsonError(w, http.StatusBadRequest, "com.amazonaws.logs#ResourceNotFoundException", "The specified log stream does not exist.")
		return
	}
	start := 0
	switch {
	case in.NextToken != "":
		n, err := strconv.Atoi(strings.TrimPrefix(in.NextToken, "f/"))
		if err != nil || !strings.HasPrefix(in.NextToken, "f/") {
			jsonError(w, http.StatusBadRequest, "InvalidParameterException", "The specified nextToken is invalid.")
			return
		}
		start = n
	case in.StartFromHead == nil || !*in.StartFromHead:
		l.s.violation("GetLogEvents without startFromHead reads the stream's tail, not its beginning")
	}
	size := l.PageSize
	if size == 0 {
		size = 3
	}
	if in.Limit > 0 {
		size = min(size, in.Limit)
	}
	end := min(start+size, len(st.events))
	events := []map[string]any{}
	for _, e := range st.events[min(start, end):end] {
		events = append(events, map[string]any{"timestamp": e.at, "message": e.message, "ingestionTime": e.at})
	}
	writeJSON(w, map[string]any{"events": events, "nextForwardToken": fmt.Sprintf("f/%d", end),
		"nextBackwardToken": fmt.Sprintf("b/%d", start)})
}
