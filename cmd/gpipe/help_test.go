package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpGolden: every command's --help, compared with
// testdata/help/COMMAND.golden (go test ./cmd/gpipe -run TestHelpGolden
// -update rewrites them). Flags show as --flag, as the README spells them,
// and every command has examples.
func TestHelpGolden(t *testing.T) {
	a := &App{}
	for _, name := range visibleCommands(a.commands()) {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runMain([]string{name, "--help"}, nil, &out, &errb, func(string) string { return "" }); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			help := out.String()
			if !strings.Contains(help, "\nexamples:\n  gpipe "+name) {
				t.Errorf("no examples of gpipe %s:\n%s", name, help)
			}
			for _, line := range strings.Split(help, "\n") {
				if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") && len(f[0]) > 2 && !strings.HasPrefix(f[0], "--") {
					t.Errorf("flag shown with one dash: %q", line)
				}
			}
			path := filepath.Join("testdata", "help", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/gpipe -run TestHelpGolden -update writes it)", err)
			}
			if help != string(want) {
				t.Errorf("gpipe %s --help differs from %s (-update rewrites it):\n--- got\n%s--- want\n%s", name, path, help, want)
			}
		})
	}
}

// TestUsageErrors: bad usage is one line naming what is wrong (with a
// did-you-mean where one is near) and a hint, exit 2, never the whole usage.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		hint string
	}{
		{[]string{"rnu"}, `gpipe: unknown command "rnu" (did you mean "run"?)`, "gpipe --help lists the commands"},
		{[]string{"stauts"}, `gpipe: unknown command "stauts" (did you mean "status"?)`, "gpipe --help"},
		{[]string{"run", "--concurency", "3", "x.yaml"}, `gpipe run: unknown flag --concurency (did you mean --concurrency?)`, "gpipe run --help lists its flags"},
		{[]string{"plan", "-formt", "json", "x.yaml"}, `gpipe plan: unknown flag --formt (did you mean --format?)`, "gpipe plan --help"},
		{[]string{"status", "--xyzzy", "r"}, `gpipe status: unknown flag --xyzzy`, "gpipe status --help"},
		{[]string{"resume"}, `gpipe resume: missing RUN_ID`, "gpipe resume --help"},
		{[]string{"run"}, `gpipe run: missing SPEC`, "gpipe run --help"},
		{[]string{"validate"}, `gpipe validate: missing SPEC`, "gpipe validate --help"},
		{[]string{"status", "a", "b"}, `gpipe status: unexpected argument "b" (usage: gpipe status [flags] RUN_ID)`, "gpipe status --help"},
		{[]string{"schema", "x"}, `gpipe schema: unexpected argument "x" (gpipe schema takes no arguments)`, "gpipe schema --help"},
		{[]string{"run", "--state"}, `gpipe run: flag needs an argument: --state`, "gpipe run --help"},
		{[]string{"run", "--concurrency", "x", "a.yaml"}, `gpipe run: invalid value "x" for flag --concurrency`, "gpipe run --help"},
	} {
		var out, errb bytes.Buffer
		code := runMain(tc.args, nil, &out, &errb, func(string) string { return "" })
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != exitUsage || len(lines) != 2 || !strings.HasPrefix(lines[0], tc.want) ||
			!strings.HasPrefix(lines[1], "gpipe: hint: "+tc.hint) || out.Len() != 0 {
			t.Errorf("gpipe %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2, nothing on stdout, and two lines:\n%s\ngpipe: hint: %s",
				strings.Join(tc.args, " "), code, out.String(), errb.String(), tc.want, tc.hint)
		}
	}
}
