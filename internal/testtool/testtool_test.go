package testtool

import (
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestVersitygw(t *testing.T) {
	srv := Versitygw(t)
	resp, err := http.Get(srv.Endpoint + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Unsigned requests are refused: the server checks signatures.
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous GET / = %d, want 403", resp.StatusCode)
	}
}

// Two test processes may probe the same free port and both start versitygw
// on it: the one that lost must not take the winner's server for its own,
// or its tests fail with "connection refused" once the winner's test ends.
func TestVersitygwProbeKnowsItsOwnServer(t *testing.T) {
	srv := Versitygw(t)
	ctx := t.Context()
	client := &http.Client{}
	resp, err := signedListBuckets(ctx, client, srv)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("own keys: %s, want 200", resp.Status)
	}
	other := &S3Server{Endpoint: srv.Endpoint, AccessKey: "gpipetestother", SecretKey: "gpipetestsecretother"}
	resp, err = signedListBuckets(ctx, client, other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("another server's keys were accepted: the probe cannot tell servers apart")
	}
}

func TestFindLooksInGopathBin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(bin, "gpipe-fake-tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOPATH", dir)
	t.Setenv("PATH", "/nonexistent")
	t.Setenv("GOFLAGS", "")
	if got, err := lookup("gpipe-fake-tool"); err != nil || got != tool {
		t.Fatalf("lookup = %q, %v; want %q", got, err, tool)
	}
	if _, err := lookup("gpipe-no-such-tool"); err == nil {
		t.Fatal("found a tool that does not exist")
	}
}

func TestFaultProxy(t *testing.T) {
	srv := Versitygw(t)
	srv.Bucket(t, "b")
	p := NewFaultProxy(t, srv.Endpoint, 1, 3)
	statuses := map[int]int{}
	resets := 0
	for range 40 {
		resp, err := http.Get(p.URL + "/b")
		if err != nil {
			resets++
			continue
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	f := p.Faults()
	if len(f) != 5 || statuses[500] == 0 || statuses[503] == 0 || resets == 0 {
		t.Fatalf("faults %v, statuses %v, resets %d", f, statuses, resets)
	}
	p.SetEnabled(false)
	resp, err := http.Get(p.URL + "/b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Server") != "VERSITYGW" || p.Requests() == 0 {
		t.Fatalf("request not forwarded: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestInCIAcceptsAnyValue(t *testing.T) {
	for v, want := range map[string]bool{"": false, "true": true, "1": true, "yes": true} {
		t.Setenv("CI", v)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI() = %v, want %v", v, got, want)
		}
	}
}

func TestRecvAndWait(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, ch, "seven"); got != 7 {
		t.Errorf("Recv = %d", got)
	}
	var wg sync.WaitGroup
	wg.Go(func() {})
	Wait(t, &wg, "nothing")
}

func TestSeedFromEnvironment(t *testing.T) {
	t.Setenv("TESTTOOL_SEED", "12345")
	if got := Seed(t, "TESTTOOL_SEED"); got != 12345 {
		t.Errorf("Seed = %d, want 12345", got)
	}
	t.Setenv("TESTTOOL_SEED", "")
	if a, b := Seed(t, "TESTTOOL_SEED"), Seed(t, "TESTTOOL_SEED"); a == b {
		t.Errorf("two clock seeds are equal: %d", a)
	}
}
