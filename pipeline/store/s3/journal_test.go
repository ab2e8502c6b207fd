package s3

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// countingProxy forwards to an S3 server and counts the PUT requests that
// reach it and their body bytes.
type countingProxy struct {
	up                *httputil.ReverseProxy
	puts, bytes, gets atomic.Int64
}

func newCountingProxy(t *testing.T, target string) (*countingProxy, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{up: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		p.puts.Add(1)
		p.bytes.Add(r.ContentLength)
	}
	if r.Method == http.MethodGet && !r.URL.Query().Has("list-type") {
		p.gets.Add(1)
	}
	p.up.ServeHTTP(w, r)
}

// TestBytesPerStepStayConstant drives runs of 200 and 2,000 steps through a
// Journal, one durable change per step as the engine makes when steps finish
// one by one, and counts what the S3 store sends. Rewriting state.json on
// every change made the bytes per change grow with the run (about tenfold
// here); with the journal a change costs its record plus its share of the
// snapshots, which are taken when the records outweigh the last one.
func TestBytesPerStepStayConstant(t *testing.T) {
	srv := testtool.Versitygw(t)
	cc, endpoint := newCountingProxy(t, srv.Endpoint)
	s := openTest(t, srv, endpoint, "s3://constant/runs", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	perStep := map[int]float64{}
	for _, n := range []int{200, 2000} {
		r := &state.Run{ID: fmt.Sprintf("run-%d", n), Pipeline: "p", Status: state.RunRunning, Steps: map[string]*state.Step{}}
		for i := range n {
			id := fmt.Sprintf("step-%05d", i)
			r.Steps[id] = &state.Step{ID: id, Type: "shell", Status: state.StepPending,
				DefDigest: strings.Repeat("d", 64), Needs: []string{fmt.Sprintf("step-%05d", i/2)}}
			r.Order = append(r.Order, id)
		}
		j, err := state.Create(ctx, s, r, state.LeaseOptions{Owner: "counter"})
		if err != nil {
			t.Fatal(err)
		}
		puts0, bytes0 := cc.puts.Load(), cc.bytes.Load()
		for _, id := range r.Order {
			if err := j.UpdateStep(ctx, id, func(r *state.Run) {
				r.Steps[id].Status = state.StepSucceeded
				r.Steps[id].Outputs = map[string]string{"result": "ok"}
			}); err != nil {
				t.Fatal(err)
			}
		}
		puts, bytes := cc.puts.Load()-puts0, cc.bytes.Load()-bytes0
		if err := j.Close(ctx); err != nil {
			t.Fatal(err)
		}
		perStep[n] = float64(bytes) / float64(n)
		t.Logf("%d steps: %d PUTs, %d bytes, %.0f bytes/step", n, puts, bytes, perStep[n])
		got, err := state.Read(ctx, s, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st := got.Steps[r.Order[n-1]].Status; st != state.StepSucceeded {
			t.Fatalf("the last step reads as %s", st)
		}
	}
	if perStep[2000] > 2*perStep[200] {
		t.Errorf("bytes per step grew from %.0f at 200 steps to %.0f at 2000: a change rewrites the run", perStep[200], perStep[2000])
	}
}

// TestCrashBeforeStateCopy: a Save that wrote its snapshot slot and died
// before copying it to state.json. A load rolls forward to the snapshot; a
// writer still at the version before it loses; writing goes on from there.
func TestCrashBeforeStateCopy(t *testing.T) {
	srv := testtool.Versitygw(t)
	s := openTest(t, srv, srv.Endpoint, "s3://crash/runs", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	v0, err := s.Create(ctx, "r", []byte("snap-0"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.Append(ctx, "r", []byte("rec-1"), v0)
	if err != nil {
		t.Fatal(err)
	}
	pv := parseVersion(v1)
	// The dead Save's first half.
	if err := s.writeSlot(ctx, s.slotKey("r", pv.jid, pv.next), []byte("snap-1"), kindSnapshot); err != nil {
		t.Fatal(err)
	}
	if doc, _, err := s.Load(ctx, "r"); err != nil || string(doc) != "snap-0" {
		t.Fatalf("state.json = %q, %v; want the snapshot before the crash", doc, err)
	}
	fresh := New(s.api, s.bucket, s.prefix)
	doc, recs, v2, err := fresh.LoadJournal(ctx, "r")
	if err != nil || string(doc) != "snap-1" || len(recs) != 0 {
		t.Fatalf("LoadJournal = %q, %q, %v; want the snapshot in the slot and no records", doc, recs, err)
	}
	if _, err := s.Append(ctx, "r", []byte("stale"), v1); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Append at the version before the crashed Save: %v, want ErrConflict", err)
	}
	if _, err := s.Save(ctx, "r", []byte("stale"), v1); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Save at the version before the crashed Save: %v, want ErrConflict", err)
	}
	v3, err := fresh.Append(ctx, "r", []byte("rec-2"), v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Save(ctx, "r", []byte("snap-2"), v3); err != nil {
		t.Fatalf("Save after the roll-forward: %v", err)
	}
	if doc, _, err := s.Load(ctx, "r"); err != nil || string(doc) != "snap-2" {
		t.Fatalf("state.json = %q, %v; want the last snapshot", doc, err)
	}
	if doc, recs, _, err := s.LoadJournal(ctx, "r"); err != nil || string(doc) != "snap-2" || len(recs) != 0 {
		t.Fatalf("LoadJournal = %q, %q, %v; want the last snapshot alone", doc, recs, err)
	}
}

// TestOldRunGetsAJournal: a run whose state.json an older gpipe wrote (no
// journal metadata) is read as it is, and its first Append gives it a
// journal.
func TestOldRunGetsAJournal(t *testing.T) {
	srv := testtool.Versitygw(t)
	s := openTest(t, srv, srv.Endpoint, "s3://old/runs", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	key := s.runKey("r") + stateObject
	if _, err := s.api.PutObject(ctx, &s3sdk.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: strings.NewReader("old")}); err != nil {
		t.Fatal(err)
	}
	doc, recs, v, err := s.LoadJournal(ctx, "r")
	if err != nil || string(doc) != "old" || len(recs) != 0 {
		t.Fatalf("LoadJournal of an old run = %q, %q, %v", doc, recs, err)
	}
	v1, err := s.Append(ctx, "r", []byte("rec"), v)
	if err != nil {
		t.Fatalf("Append to an old run: %v", err)
	}
	if _, err := s.Append(ctx, "r", []byte("stale"), v); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second Append at the old run's version: %v, want ErrConflict", err)
	}
	doc, recs, v2, err := s.LoadJournal(ctx, "r")
	if err != nil || string(doc) != "old" || len(recs) != 1 || string(recs[0]) != "rec" || v2 != v1 {
		t.Fatalf("LoadJournal = %q, %q, %q, %v; want old, [rec], %q", doc, recs, v2, err, v1)
	}
}

// TestDeleteRemovesJournal: Delete takes the slots with the run, in batches.
func TestDeleteRemovesJournal(t *testing.T) {
	srv := testtool.Versitygw(t)
	s := openTest(t, srv, srv.Endpoint, "s3://del/runs", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	v, err := s.Create(ctx, "r", []byte("doc"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if v, err = s.Append(ctx, "r", fmt.Appendf(nil, "rec-%d", i), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	out, err := s.api.ListObjectsV2(ctx, &s3sdk.ListObjectsV2Input{Bucket: &s.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 0 {
		t.Fatalf("%d objects left after Delete, e.g. %s", len(out.Contents), aws.ToString(out.Contents[0].Key))
	}
	if _, err := s.Save(ctx, "r", []byte("late"), v); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Save after Delete: %v, want ErrNotFound", err)
	}
	if ids, err := s.List(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("List after a Save to the deleted run = %q, %v; want nothing (its slot dropped)", ids, err)
	}
}

// TestSegments: a load reads the records of full segments with one GET each
// instead of one per slot, and gets the same records, also across a snapshot
// slot and when the segment was completed by another Store that loaded the
// first part.
func TestSegments(t *testing.T) {
	srv := testtool.Versitygw(t)
	cp, endpoint := newCountingProxy(t, srv.Endpoint)
	s := openTest(t, srv, endpoint, "s3://seg/runs", Options{})
	makeBucket(t, s)
	ctx := t.Context()
	v, err := s.Create(ctx, "r", []byte("snap-0"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	appendN := func(s *Store, n int) {
		t.Helper()
		for range n {
			rec := fmt.Sprintf(`{"n":%d}`, len(want))
			if v, err = s.Append(ctx, "r", []byte(rec), v); err != nil {
				t.Fatal(err)
			}
			want = append(want, rec)
		}
	}
	load := func(what, wantDoc string, maxGets int64) {
		t.Helper()
		fresh := New(s.api, s.bucket, s.prefix)
		gets0 := cp.gets.Load()
		doc, recs, lv, err := fresh.LoadJournal(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, string(r))
		}
		if string(doc) != wantDoc || strings.Join(got, " ") != strings.Join(want, " ") || lv != v {
			t.Fatalf("%s: LoadJournal = %q, %d records %q, %q; want %q, %d records, %q", what, doc, len(got), got, lv, wantDoc, len(want), v)
		}
		if gets := cp.gets.Load() - gets0; gets > maxGets {
			t.Errorf("%s: %d GETs, want at most %d", what, gets, maxGets)
		}
	}
	appendN(s, 150)
	// state.json, segments 0 and 1, slots 128..149.
	load("150 records", "snap-0", 1+2+22)

	// A Save that died after its slot (150), then a Store that loaded the
	// journal completes segment 2 (slots 128..191).
	pv := parseVersion(v)
	if err := s.writeSlot(ctx, s.slotKey("r", pv.jid, pv.next), []byte("snap-1"), kindSnapshot); err != nil {
		t.Fatal(err)
	}
	other := New(s.api, s.bucket, s.prefix)
	if _, _, v, err = other.LoadJournal(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	want = nil
	appendN(other, 50)
	// state.json, segments 0..2 (2 written by the other Store), slot 150
	// (the snapshot, which segments leave out) and slots 192..200, which
	// no segment holds yet.
	load("after a crashed Save", "snap-1", 1+3+1+9)
}
