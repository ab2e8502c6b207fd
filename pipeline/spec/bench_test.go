package spec

import (
	"fmt"
	"strings"
	"testing"
)

// bigSpec writes a layered DAG of n shell steps; each step needs up to three
// steps of the previous layer and reads an output of one of them.
func bigSpec(n int) []byte {
	var b strings.Builder
	b.WriteString("# yaml-language-server: $schema=../schemas/pipeline.schema.json\nversion: 1\nname: big\nparams:\n  msg: {default: hi}\nsteps:\n")
	const width = 50
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - id: s%d\n    type: shell\n", i)
		layer := i / width
		if layer > 0 {
			prev := (layer-1)*width + i%width
			fmt.Fprintf(&b, "    needs: [s%d, s%d]\n", prev, (layer-1)*width+(i+7)%width)
			fmt.Fprintf(&b, "    with:\n      run: echo ${{ params.msg }} ${{ steps.s%d.outputs.x }}\n", prev)
		} else {
			b.WriteString("    with:\n      run: echo x=1 >> \"$GPIPE_OUTPUT\"\n")
		}
		b.WriteString("    retry: {attempts: 2, backoff: 1s}\n    timeout: 5m\n")
	}
	return []byte(b.String())
}

func TestBigSpecLoads(t *testing.T) {
	s, err := testLoader().Parse("big.yaml", bigSpec(2000))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 2000 {
		t.Fatalf("steps = %d", len(s.Steps))
	}
}

// TestBigSpecErrors covers the parallel validation of big specs: errors in
// late steps keep their step's name and position.
func TestBigSpecErrors(t *testing.T) {
	src := string(bigSpec(400))
	src = strings.Replace(src, "  - id: s399\n    type: shell\n", "  - id: s399\n    type: shel\n", 1)
	src = strings.Replace(src, "  - id: s300\n    type: shell\n", "  - id: s300\n    type: shell\n    colour: red\n", 1)
	_, err := testLoader().Parse("big.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(src, "\n")
	lineOf := func(prefix string) int {
		for i, l := range lines {
			if l == prefix {
				return i + 1
			}
		}
		return -1
	}
	want1 := fmt.Sprintf("big.yaml:%d:5: unknown field \"colour\" in step \"s300\"", lineOf("    colour: red"))
	want2 := fmt.Sprintf("big.yaml:%d:11: step \"s399\": unknown step type \"shel\"", lineOf("    type: shel"))
	for _, w := range []string{want1, want2} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%.2000s", w, err)
		}
	}
}

// BenchmarkLoad10000 measures loading (parse, schema, semantic checks) of a
// 10,000-step spec with a fresh Loader each time, as `gpipe validate` does.
func BenchmarkLoad10000(b *testing.B) {
	src := bigSpec(10000)
	b.SetBytes(int64(len(src)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := testLoader().Parse("big.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}
