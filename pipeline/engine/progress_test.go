package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/store/memory"
)

// TestLogWriterProgress: a progress bar that redraws its line with "\r"
// (as tqdm does, with a newline only at the end) reports each redraw as
// progress at once, instead of nothing until 16 KiB piled up; the line
// event that ends it carries the last redraw; the log keeps every byte.
func TestLogWriterProgress(t *testing.T) {
	ctx := context.Background()
	st := memory.New("mem")
	if _, err := st.Create(ctx, "r", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var lines, progress []string
	w := newLogWriter(ctx, st, "r", "s.1", nil, func(l string) { lines = append(lines, l) })
	w.progress = func(p string) { progress = append(progress, p) }
	writes := []string{"epoch 1\n", "\r  0%|          | 0/3", "\r 33%|###       | 1/3", "\r 33%|###       | 1/3",
		"\r 67%|######    | 2/", "3\r", "100%|##########| 3/3\n", "done\n"}
	for _, s := range writes {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantProgress := []string{"  0%|          | 0/3", " 33%|###       | 1/3", " 67%|######    | 2/", " 67%|######    | 2/3"}
	if strings.Join(progress, "\n") != strings.Join(wantProgress, "\n") {
		t.Errorf("progress %q, want %q", progress, wantProgress)
	}
	if len(lines) != 3 || lines[0] != "epoch 1" || lines[2] != "done" {
		t.Fatalf("lines %q", lines)
	}
	if last := lines[1][strings.LastIndexByte(lines[1], '\r')+1:]; last != "100%|##########| 3/3" || len(lines[1]) > 64 {
		t.Errorf("the bar's line %q, want it to end with its last redraw (and not carry every redraw)", lines[1])
	}
	log, err := st.ReadLog(ctx, "r", "s.1", 0)
	if err != nil || string(log) != strings.Join(writes, "") {
		t.Errorf("log %q (%v), want every byte written", log, err)
	}
}
