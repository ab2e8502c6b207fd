package s3

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// TestJournalThroughFlakyS3 drives a Journal with many concurrent updates
// through a proxy that fails a quarter of all requests. Every Update either
// succeeds, and is then in the stored state, or fails with a clear error;
// the stored state always loads.
func TestJournalThroughFlakyS3(t *testing.T) {
	direct, flaky, proxy := flakyStores(t, "s3://flaky/runs", 1)
	ctx := t.Context()

	j, err := state.Create(ctx, flaky, &state.Run{ID: "r", Steps: map[string]*state.Step{}},
		state.LeaseOptions{TTL: 20 * time.Second})
	if err != nil {
		t.Fatalf("Create through the flaky proxy: %v", err)
	}
	const workers, each = 10, 15
	var mu sync.Mutex
	var durable []string
	var failed []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				err := j.Update(ctx, func(r *state.Run) {
					r.Steps[id] = &state.Step{ID: id, Status: state.StepSucceeded}
				})
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					durable = append(durable, id)
				}
				mu.Unlock()
				if err := flaky.AppendLog(ctx, "r", "w"+fmt.Sprint(w), []byte(id+"\n")); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	testtool.Wait(t, &wg, "the writers appending through the flaky endpoint")
	closeErr := j.Close(ctx)
	proxy.SetEnabled(false)
	t.Logf("faults injected: %v; %d updates durable, %d failed; %d PUTs reached the server",
		proxy.Faults(), len(durable), len(failed), proxy.Puts())
	for _, err := range append(failed, closeErr) {
		if err != nil && !strings.Contains(err.Error(), "run r") && !strings.Contains(err.Error(), "log w") {
			t.Errorf("unclear error: %v", err)
		}
	}
	if len(proxy.Faults()) < 4 {
		t.Errorf("too few kinds of fault injected: %v", proxy.Faults())
	}
	r, err := state.Read(ctx, direct, "r")
	if err != nil {
		t.Fatalf("stored state does not load after the faults: %v", err)
	}
	for _, id := range durable {
		if r.Steps[id] == nil {
			t.Errorf("update %s was reported durable but is not in the stored state", id)
		}
	}
	if closeErr == nil && len(failed) == 0 {
		if len(r.Steps) != workers*each || r.Lease != nil {
			t.Errorf("clean finish but stored run has %d steps, lease %+v", len(r.Steps), r.Lease)
		}
		for w := range workers {
			b, err := direct.ReadLog(ctx, "r", "w"+fmt.Sprint(w), 0)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b, []byte("\n")); n != each {
				t.Errorf("log w%d has %d lines, want %d (duplicated or lost chunks):\n%s", w, n, each, b)
			}
		}
	}
}

// TestConcurrentAcquireS3: two runners resuming one run at the same moment,
// each with its own client: exactly one drives it.
func TestConcurrentAcquireS3(t *testing.T) {
	srv := testtool.Versitygw(t)
	a := openTest(t, srv, srv.Endpoint, "s3://acq", Options{})
	makeBucket(t, a)
	b := openTest(t, srv, srv.Endpoint, "s3://acq", Options{})
	ctx := t.Context()
	for round := range 5 {
		id := fmt.Sprintf("r%d", round)
		j, err := state.Create(ctx, a, &state.Run{ID: id}, state.LeaseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var js [2]*state.Journal
		var errs [2]error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range []state.Store{a, b} {
			wg.Go(func() {
				<-start
				js[i], errs[i] = state.Acquire(ctx, s, id, state.LeaseOptions{Owner: fmt.Sprintf("runner-%d", i)})
			})
		}
		close(start)
		testtool.Wait(t, &wg, "both Acquire calls")
		won := 0
		for i := range 2 {
			var he *state.HeldError
			switch {
			case errs[i] == nil:
				won++
				js[i].Close(ctx)
			case !errors.As(errs[i], &he):
				t.Fatalf("round %d runner %d: %v", round, i, errs[i])
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d runners acquired the run", round, won)
		}
	}
}

// TestBadObjectsS3: corrupt, truncated and newer-schema state objects give
// clear errors and are left as they are.
func TestBadObjectsS3(t *testing.T) {
	srv := testtool.Versitygw(t)
	s := openTest(t, srv, srv.Endpoint, "s3://bad/p", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	j, err := state.Create(ctx, s, &state.Run{ID: "good"}, state.LeaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close(ctx)
	good, _, err := s.Load(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"truncated": strings.Replace(string(good[:len(good)-7]), `"id":"good"`, `"id":"truncated"`, 1),
		"garbage":   "\xff\xfe<html>",
		"newer":     strings.Replace(strings.Replace(string(good), `"schema_version":1`, `"schema_version":2`, 1), `"id":"good"`, `"id":"newer"`, 1),
	}
	for id, doc := range docs {
		key := s.runKey(id) + stateObject
		if _, err := s.api.PutObject(ctx, &s3sdk.PutObjectInput{Bucket: aws.String("bad"), Key: &key, Body: strings.NewReader(doc)}); err != nil {
			t.Fatal(err)
		}
		_, err := state.Acquire(ctx, s, id, state.LeaseOptions{Force: true})
		var ce *state.CorruptError
		var ne *state.NewerSchemaError
		switch {
		case id == "newer" && errors.As(err, &ne):
		case id != "newer" && errors.As(err, &ce) && strings.Contains(err.Error(), "s3://bad/p") && strings.Contains(err.Error(), "run "+id):
		default:
			t.Errorf("%s: got %v", id, err)
		}
		if got, _, _ := s.Load(ctx, id); string(got) != doc {
			t.Errorf("%s: object was overwritten", id)
		}
	}
}

// flakyStores opens a store at url (making its bucket) twice on one S3
// server: directly, and through a proxy that fails a quarter of the requests
// (some after the server handled them), its faults drawn from seed.
func flakyStores(t *testing.T, url string, seed uint64) (direct, flaky *Store, proxy *testtool.FaultProxy) {
	t.Helper()
	srv := testtool.Versitygw(t)
	direct = openTest(t, srv, srv.Endpoint, url, Options{})
	makeBucket(t, direct)
	proxy = testtool.NewFaultProxy(t, srv.Endpoint, 0.25, seed)
	return direct, openTest(t, srv, proxy.URL, url, Options{}), proxy
}
