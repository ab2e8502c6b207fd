package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gpipe/gpipe/schemas"
)

// TestLoadRefusesWhatIsNotARegularFile: /dev/zero never ends and a FIFO
// blocks the open until a writer comes; both, and a directory, are refused
// at once with a ReadError.
func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxSpecSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/dev/zero": "not a regular file (a character device)",
		fifo:        "not a regular file (a named pipe)",
		dir:         "not a regular file (a directory)",
		big:         "more than the 16777216 bytes (16 MiB) a spec may have",
	} {
		done := make(chan error, 1)
		go func() { _, err := testLoader().Load(path); done <- err }()
		select {
		case err := <-done:
			var re *ReadError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("Load(%s) = %v, want a ReadError saying %q", path, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Load(%s) still reading after 5s", path)
		}
	}
}

// TestErrorsEscapeControlBytes: a spec's bytes reach the terminal only as
// text; an ESC sequence or a bidi override in a value is shown escaped, and
// the caret still points at the column it names.
func TestErrorsEscapeControlBytes(t *testing.T) {
	src := "version: 1\nname: x\x1b[31mred\nsteps: [{id: \"\x01\u202e\", type: shell, with: {run: echo}, colour: 1}]\n"
	_, err := testLoader().Parse("ctl.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, bad := range []string{"\x1b", "\x01", "\u202e"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error output contains raw %q:\n%s", bad, msg)
		}
	}
	shown := `steps: [{id: "\x01\u202e", type: shell, with: {run: echo}, colour: 1}]`
	want := "    3 | " + shown + "\n      | " + strings.Repeat(" ", strings.Index(shown, "colour")) + "^\n"
	if !strings.Contains(msg+"\n", want) {
		t.Errorf("want the caret under colour:\n%s\ngot:\n%s", want, msg)
	}
	if !strings.Contains(msg, `ctl.yaml:2:7: "name" must be`) || !strings.Contains(msg, `x\x1b[31mred`) {
		t.Errorf("name error not escaped as wanted:\n%s", msg)
	}
}

// TestBOMIsAccepted: editors on Windows save UTF-8 with a byte order mark.
func TestBOMIsAccepted(t *testing.T) {
	src := "\ufeffversion: 1\nname: bom\nsteps: [{id: a, type: shell, with: {run: echo}}]\n"
	s, err := testLoader().Parse("bom.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "bom" {
		t.Errorf("name = %q", s.Name)
	}
	_, err = testLoader().Parse("bom.yaml", []byte("\ufeffversion: 1\nname: bom\nsteps: []\ncolour: red\n"))
	if err == nil || !strings.Contains(err.Error(), "bom.yaml:4:1: ") {
		t.Errorf("want an error at 4:1, got %v", err)
	}
}

// TestColumnsCountRunes: a column is the character a user's editor shows,
// not a byte offset, for every kind of error after multi-byte text.
func TestColumnsCountRunes(t *testing.T) {
	src := "version: 1\nname: x\nsteps:\n" +
		"  - {id: a, type: shell, with: {run: \"éé ${{ params.nope }}\"}, colour: 1}\n" +
		"  - {id: b, type: shell, with: {run: \"é\"}, needs: [ééé]}\n" +
		"  - {id: c, type: shell, with: {run: éé ${{ x }}}}\n"
	_, err := testLoader().Parse("mb.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	// Only the syntax error is reported: it stops parsing.
	if !strings.Contains(err.Error(), "mb.yaml:6:42: invalid YAML") {
		t.Errorf("syntax error column:\n%v", err)
	}
	_, err = testLoader().Parse("mb.yaml", []byte(src[:strings.LastIndex(src, "  - {id: c")]))
	lines := strings.Split(src, "\n")
	col := func(line int, sub string) int {
		l := lines[line-1]
		return utf8.RuneCountInString(l[:strings.Index(l, sub)]) + 1
	}
	for _, want := range []string{
		fmt.Sprintf("mb.yaml:4:%d: step \"a\": unknown param", col(4, "params")),
		fmt.Sprintf("mb.yaml:4:%d: unknown field \"colour\"", col(4, "colour")),
		fmt.Sprintf("mb.yaml:5:%d: step \"b\" needs unknown step", col(5, "ééé")),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
}

// TestMatrixCopyIDLength: a copy's id names it in state, logs and
// expressions, so it gets the step id's limit.
func TestMatrixCopyIDLength(t *testing.T) {
	var sch struct {
		Defs map[string]struct {
			MaxLength int `json:"maxLength"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.Pipeline(), &sch); err != nil {
		t.Fatal(err)
	}
	if got := sch.Defs["identifier"].MaxLength; got != MaxIDLength {
		t.Errorf("schema's identifier maxLength = %d, MaxIDLength = %d", got, MaxIDLength)
	}
	long := strings.Repeat("v", 60)
	src := "version: 1\nname: x\nsteps:\n  - id: train\n    type: shell\n    matrix: {lr: [short, " + long + "]}\n    with: {run: echo}\n"
	_, err := testLoader().Parse("m.yaml", []byte(src))
	want := fmt.Sprintf(`m.yaml:6:13: step "train": matrix copy id "train-lr-%s" is longer than the 64 characters`, long)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
	ok := strings.Replace(src, long, strings.Repeat("v", 64-len("train-lr-")), 1)
	if _, err := testLoader().Parse("m.yaml", []byte(ok)); err != nil {
		t.Fatalf("a 64-character copy id is refused: %v", err)
	}
}

func matrixChain(steps, copies int, pair bool) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: x\nsteps:\n")
	vals := make([]string, copies)
	for i := range vals {
		vals[i] = fmt.Sprint(i)
	}
	for i := range steps {
		axis := "a" + fmt.Sprint(i)
		if pair {
			axis = "fold"
		}
		fmt.Fprintf(&b, "  - id: s%d\n    type: shell\n    matrix: {%s: [%s]}\n    with: {run: echo}\n", i, axis, strings.Join(vals, ", "))
		if i > 0 {
			fmt.Fprintf(&b, "    needs: [s%d]\n", i-1)
		}
	}
	return b.String()
}

// TestPlanSizeIsBounded: twenty steps of 1,000 copies each needing the
// previous step made a valid 80 KB spec with 19 million plan edges (2.85 GB).
func TestPlanSizeIsBounded(t *testing.T) {
	cpu0 := cpuTime(t)
	_, err := testLoader().Parse("chain.yaml", []byte(matrixChain(20, 1000, false)))
	if err == nil || !strings.Contains(err.Error(), `chain.yaml:12:12: step "s1": the spec's steps have more than 200000 needs`) {
		t.Errorf("20 × 1000 copies, all to all: %.300v", err)
	}
	_, err = testLoader().Parse("chain.yaml", []byte(matrixChain(21, 1000, true)))
	if err == nil || !strings.Contains(err.Error(), `chain.yaml:105:13: step "s20": the spec expands to more than 20000 steps (matrix copies included)`) {
		t.Errorf("21 × 1000 paired copies: %.300v", err)
	}
	// Paired on a shared axis the same shape has 1,000 edges per need.
	if _, err := testLoader().Parse("chain.yaml", []byte(matrixChain(10, 1000, true))); err != nil {
		t.Errorf("10 × 1000 paired copies: %.300v", err)
	}
	if cpu := cpuTime(t) - cpu0; cpu > hostileBudget*raceSlowdown {
		t.Errorf("took %v of CPU", cpu)
	}
}
