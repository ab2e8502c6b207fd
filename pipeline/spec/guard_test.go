package spec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// hostileBudget is how long any input may take to load; the cases below took
// from 25 s to minutes, or crashed, before the token guard.
const hostileBudget = 2 * time.Second

func flatMapping(keys int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: x\nsteps: [{id: a, type: shell, with: {run: echo}}]\nenv:\n")
	for i := range keys {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	return b.String()
}

// TestHostileYAMLEndsFast feeds the shapes that make goccy/go-yaml's parser
// quadratic or overflow its stack (PRs #889, #902) and requires a clear
// error at the right place within the budget.
func TestHostileYAMLEndsFast(t *testing.T) {
	deepBlock := func(n int) string {
		var b strings.Builder
		b.WriteString("version: 1\nname: x\nsteps:\nenv:\n")
		for i := range n {
			fmt.Fprintf(&b, "%sk:\n", strings.Repeat(" ", i+2))
		}
		return b.String()
	}
	cases := []struct {
		name, src, want string
	}{
		{"100k sibling keys", flatMapping(100_000), "test.yaml:10005:3: mapping has more than 10000 keys"},
		// 20 MB of keys crashed with "fatal error: stack overflow"; 16 MiB is
		// the most a spec may be.
		{"16 MiB of sibling keys", flatMapping(1_400_000)[:MaxSpecSize], "spec has more than 500000 YAML tokens"},
		{"16 MiB flow sequence on one line", "version: 1\nname: x\nsteps: [" + strings.Repeat("a, ", MaxSpecSize/3-20) + "]\n",
			"test.yaml:3:1: spec has more than 500000 YAML tokens"},
		{"100k-deep flow sequence", "version: 1\nname: x\nsteps: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n",
			"test.yaml:3:107: values nest more than 100 levels deep"},
		{"100k-deep flow mapping", "version: 1\nname: x\nsteps: " + strings.Repeat("{a: ", 100_000) + "1" + strings.Repeat("}", 100_000) + "\n",
			"values nest more than 100 levels deep"},
		{"deep block sequence on one line", "version: 1\nname: x\nsteps: " + strings.Repeat("- ", 100_000) + "x\n",
			"values nest more than 100 levels deep"},
		{"deep block mapping", deepBlock(5000), "test.yaml:104:102: values nest more than 100 levels deep"},
		{"a million tokens", "version: 1\nname: x\nsteps: [" + strings.Repeat("a, ", 500_000) + "]\n",
			"spec has more than 500000 YAML tokens"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start, cpu0 := time.Now(), cpuTime(t)
			_, err := testLoader().Parse("test.yaml", []byte(tc.src))
			took, cpu := time.Since(start), cpuTime(t)-cpu0
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %.500v, want %q", err, tc.want)
			}
			// CPU time, not wall time: other tests and other processes on
			// a shared machine must not make this fail. Before the guard
			// these inputs took 25 s to minutes, or crashed.
			if cpu > hostileBudget*raceSlowdown {
				t.Errorf("took %v of CPU, more than %v", cpu, hostileBudget)
			}
			t.Logf("%v (%v CPU)", took, cpu)
		})
	}
}

// TestYAMLLimitsLeaveRealSpecsAlone loads what is near the limits but real:
// a mapping of 5,000 keys, values nested 90 deep, sequences of mappings at
// the mapping's own column.
func TestYAMLLimitsLeaveRealSpecsAlone(t *testing.T) {
	s, err := testLoader().Parse("ok.yaml", []byte(flatMapping(5000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Env) != 5000 {
		t.Errorf("env has %d keys", len(s.Env))
	}
	deep := "version: 1\nname: x\nsteps:\n- id: a\n  type: shell\n  with:\n    run: echo\n  env:\n    X: " +
		"\n" + "version2: " + strings.Repeat("[", 90) + strings.Repeat("]", 90) + "\n"
	_, err = testLoader().Parse("deep.yaml", []byte(deep))
	if err == nil || strings.Contains(err.Error(), "nest") || !strings.Contains(err.Error(), `unknown top-level field "version2"`) {
		t.Fatalf("want only the unknown field reported, got %v", err)
	}
	sameCol := "version: 1\nname: x\nsteps:\n- id: a\n  type: shell\n  needs:\n  - b\n  with: {run: echo}\n- id: b\n  type: shell\n  with: {run: echo}\n"
	for range 200 {
		sameCol += "- id: x\n  type: shell\n  needs:\n  - b\n  with: {run: echo}\n"
	}
	if _, err := testLoader().Parse("same.yaml", []byte(sameCol)); err == nil || strings.Contains(err.Error(), "nest") {
		t.Fatalf("want duplicate ids only, got %.300v", err)
	}
}

func TestParseStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := testLoader().ParseContext(ctx, "big.yaml", bigSpec(2000))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	took := time.Since(start)
	// Compare with a full parse of the same input on the same machine, not a
	// wall-clock budget: under -race on a loaded machine both slow down.
	start = time.Now()
	if _, err := testLoader().ParseContext(context.Background(), "big.yaml", bigSpec(2000)); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	t.Logf("cancelled parse %v, full parse %v", took, full)
	if took > full/4 {
		t.Errorf("a cancelled parse took %v, a full one %v: cancellation is not checked early", took, full)
	}
}

// TestMinTokensIsALowerBound: the byte-level count must never exceed the
// scanner's, or a valid spec could be refused.
func TestMinTokensIsALowerBound(t *testing.T) {
	srcs := map[string][]byte{"big": bigSpec(2000)}
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "../../specs/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			srcs[f] = b
		}
	}
	for name, src := range srcs {
		checkMinTokens(t, name, src)
	}
}

// checkMinTokens requires minTokens to count no more tokens than the scanner
// makes of src, when src is YAML the parser accepts (on a syntax error the
// scanner stops early, and gpipe refuses the input either way).
func checkMinTokens(t *testing.T, name string, src []byte) {
	t.Helper()
	tokens := lexer.Tokenize(string(src))
	if _, err := parser.Parse(tokens, 0); err != nil {
		return
	}
	real := 0
	for _, tk := range tokens {
		if tk.Type != token.CommentType {
			real++
		}
	}
	if line := minTokens(src, real); line > 0 {
		t.Errorf("%s: minTokens counts more than the scanner's %d tokens by line %d", name, real, line)
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
