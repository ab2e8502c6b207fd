package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/file"
)

// TestResumeScrubsSavedSecret: a run saved by a gpipe that kept secret
// params in its state loses the value at its next resume, keeping the name,
// and the resume uses the value it is given now.
func TestResumeScrubsSavedSecret(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	spec := "version: 1\nname: old\nparams:\n  token: {secret: true}\nsteps:\n  - id: a\n    type: shell\n" +
		"    env: {TOKEN: \"${{ params.token }}\"}\n    with: {run: 'printf \"%s\\n\" \"$TOKEN\" > got.txt'}\n"
	if err := os.WriteFile("spec.yaml", []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GPIPE_SECRET_TOKEN": "NewSecret-1"}
	getenv := func(k string) string { return env[k] }
	gpipe := func(args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := runMain(args, nil, &out, &errb, getenv); code != 0 {
			t.Fatalf("gpipe %v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
	}
	gpipe("run", "--run-id", "r1", "spec.yaml")
	// What an older gpipe saved: the value in params, no secret_params, in
	// one document (no journal).
	path := filepath.Join(".gpipe", "runs", "r1", "state.json")
	journal := filepath.Join(".gpipe", "runs", "r1", "state.journal")
	run, err := state.Read(t.Context(), file.New(".gpipe"), "r1")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(mustMarshal(t, run), &doc); err != nil {
		t.Fatal(err)
	}
	doc["params"] = map[string]any{"token": "OldSecret-0"}
	delete(doc, "secret_params")
	if err := os.WriteFile(path, mustMarshal(t, doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(journal); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	env["GPIPE_SECRET_TOKEN"] = "NewSecret-2"
	gpipe("resume", "--from", "a", "r1")
	if got, _ := os.ReadFile("got.txt"); string(got) != "NewSecret-2\n" {
		t.Errorf("the resumed step got %q, want the value given now", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := os.ReadFile(journal)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	b = append(b, jb...)
	if strings.Contains(string(b), "OldSecret-0") || strings.Contains(string(b), "NewSecret") {
		t.Errorf("state still holds a secret: %s", b)
	}
	if !strings.Contains(string(b), `"secret_params":["token"]`) {
		t.Errorf("state does not name the secret param: %s", b)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
