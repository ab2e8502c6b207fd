package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
)

const completionSpec = `version: 1
name: comp
steps:
  - id: prep
    type: shell
    with: {run: "true"}
  - id: train
    type: shell
    needs: [prep]
    matrix:
      fold: [0, 1]
    with: {run: "true"}
`

// completionDir makes a working directory with spec files, other files, a
// directory, and a state store (.gpipe) holding runs comp-a and then
// comp-b; it becomes the test's working directory.
func completionDir(t *testing.T) string {
	dir := t.TempDir()
	t.Chdir(dir)
	for name, body := range map[string]string{"pipe.yaml": completionSpec, "other.yml": completionSpec, "notes.txt": "x", "specs/deep.yaml": completionSpec} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"comp-a", "comp-b"} {
		var out bytes.Buffer
		if code := runMain([]string{"run", "--run-id", id, "pipe.yaml"}, nil, &out, &out, func(string) string { return "" }); code != 0 {
			t.Fatalf("run %s: exit %d\n%s", id, code, out.String())
		}
		time.Sleep(10 * time.Millisecond) // distinct creation times
	}
	return dir
}

// TestComplete: what `gpipe __complete WORDS...` offers for the last word.
func TestComplete(t *testing.T) {
	completionDir(t)
	lines := func(s ...string) string { return strings.Join(s, "\n") }
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{""}, lines(visibleCommands((&App{}).commands())...)},
		{[]string{"ru"}, lines("run", "runs")},
		{[]string{"-"}, lines("--help", "--version")},
		{[]string{"help", "sta"}, lines("status")},
		{[]string{"run", ""}, lines("other.yml", "pipe.yaml", "specs/")},
		{[]string{"validate", "pipe.yaml", "sp"}, lines("specs/")},
		{[]string{"run", "specs/"}, lines("specs/deep.yaml")},
		{[]string{"run", "--run-id"}, lines("--run-id")},
		{[]string{"resume", "--f"}, lines("--force", "--from")},
		{[]string{"resume", ""}, lines("comp-b", "comp-a", "latest")},
		{[]string{"status", "--json", "comp-"}, lines("comp-b", "comp-a")},
		{[]string{"logs", "comp-a", ""}, lines("train", "prep", "train-fold-0", "train-fold-1")},
		{[]string{"logs", "latest", "train-"}, lines("train-fold-0", "train-fold-1")},
		{[]string{"resume", "--from", "tr", "comp-a"}, lines("comp-a")},
		{[]string{"resume", "comp-a", "--from", "tr"}, lines("train", "train-fold-0", "train-fold-1")},
		{[]string{"resume", "--spec", "p"}, lines("pipe.yaml")},
		{[]string{"plan", "--format", ""}, lines("text", "mermaid", "dot", "json")},
		{[]string{"report", "--format=json", ""}, lines("comp-b", "comp-a", "latest")},
		{[]string{"completion", ""}, lines("bash", "zsh", "fish")},
		{[]string{"status", "comp-a", ""}, ""},
		{[]string{"nosuch", ""}, ""},
		{[]string{"runs", "--state", "sp"}, lines("specs/")},
	} {
		var out, errb bytes.Buffer
		code := runMain(append([]string{"__complete"}, tc.words...), nil, &out, &errb, func(string) string { return "" })
		if got := strings.TrimSuffix(out.String(), "\n"); code != 0 || got != tc.want || errb.Len() > 0 {
			t.Errorf("__complete %q: exit %d, stderr %q, got\n%s\nwant\n%s", tc.words, code, errb.String(), got, tc.want)
		}
	}
}

// completionEnv is the environment the shells run the scripts in: the test
// binary is gpipe on PATH (testscript.Main puts it there).
func completionEnv(t *testing.T) []string {
	if _, err := exec.LookPath("gpipe"); err != nil {
		t.Fatalf("gpipe is not on PATH (testscript.Main puts the test binary there): %v", err)
	}
	return append(os.Environ(), "GPIPE_STATE=", "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
}

func completionScript(t *testing.T, shell string) string {
	var out bytes.Buffer
	if code := runMain([]string{"completion", shell}, nil, &out, &out, func(string) string { return "" }); code != 0 {
		t.Fatalf("completion %s: exit %d: %s", shell, code, out.String())
	}
	path := filepath.Join(t.TempDir(), "gpipe."+shell)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCompletionBash loads the bash script as a user would and completes
// through it, as bash would call it; shellcheck passes it.
func TestCompletionBash(t *testing.T) {
	completionDir(t)
	script := completionScript(t, "bash")
	if out, err := exec.Command(testtool.Shellcheck(t), "--shell=bash", "--severity=style", script).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	for _, tc := range []struct{ line, want string }{
		{"gpipe ru", "run|runs|"},
		{"gpipe resume comp-", "comp-b|comp-a|"},
		{"gpipe logs comp-a train-fold-", "train-fold-0|train-fold-1|"},
		{"gpipe run sp", "specs/|nospace"},
		{"gpipe run --concu", "--concurrency|"},
	} {
		words := strings.Fields(tc.line)
		// COMP_WORDS as bash fills it; a trailing space would add "".
		prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
compopt() { NOSPACE=1; }
_gpipe
printf '%s|' "${COMPREPLY[@]}"; [[ -n ${NOSPACE:-} ]] && printf nospace; true`
		cmd := exec.Command("bash", append([]string{"-c", prog, "bash", script}, words...)...)
		cmd.Env = completionEnv(t)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("bash completion of %q: %q (%v), want %q", tc.line, out, err, tc.want)
		}
	}
}

// TestCompletionFish completes through fish's own completion machinery
// (complete -C), the script loaded as `gpipe completion fish | source`.
func TestCompletionFish(t *testing.T) {
	fish := testtool.Find(t, "fish", "apt-get install -y fish")
	completionDir(t)
	script := completionScript(t, "fish")
	for _, tc := range []struct{ line, want string }{
		{"gpipe ru", "run\nruns\n"},
		{"gpipe resume comp-", "comp-a\ncomp-b\n"}, // fish sorts
		{"gpipe logs comp-a train", "train\ntrain-fold-0\ntrain-fold-1\n"},
		{"gpipe run p", "pipe.yaml\n"},
	} {
		cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, tc.line)
		cmd.Env = completionEnv(t)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("fish completion of %q: %q (%v), want %q", tc.line, out, err, tc.want)
		}
	}
}

// TestCompletionZsh runs the zsh script's function as the completion system
// would call it (words, CURRENT), with compadd, which only works inside a
// real completion widget, replaced by one that prints what it is given.
func TestCompletionZsh(t *testing.T) {
	zsh := testtool.Find(t, "zsh", "apt-get install -y zsh")
	completionDir(t)
	script := completionScript(t, "zsh")
	for _, tc := range []struct{ line, want string }{
		{"gpipe ru", "run runs"},
		{"gpipe resume comp-", "comp-b comp-a"},
		{"gpipe run sp", "[nospace] specs/"},
	} {
		prog := `compdef() { }
compadd() { local -a a; a=("$@"); [[ ${a[(I)-S]} -gt 0 ]] && print -n "[nospace] "; print -rn -- "${a[$((${a[(I)--]}+1)),-1]}"; }
source "$1"; shift; words=("$@"); CURRENT=$#; _gpipe`
		cmd := exec.Command(zsh, append([]string{"-f", "-c", prog, "zsh", script}, strings.Fields(tc.line)...)...)
		cmd.Env = completionEnv(t)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("zsh completion of %q: %q (%v), want %q", tc.line, out, err, tc.want)
		}
	}
}
