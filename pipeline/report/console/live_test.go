package console

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/engine"
	"github.com/gpipe/gpipe/pipeline/state"
)

// screen is a minimal terminal: it understands what Live writes (text, \r,
// \n, cursor up, clear to end of screen, colours) and keeps the lines.
type screen struct {
	lines []string
	row   int
	width int
}

func (s *screen) Write(p []byte) (int, error) {
	str := string(p)
	for i := 0; i < len(str); {
		switch c := str[i]; {
		case c == '\r':
			i++ // Live only writes \r at column 0 of a fresh line
		case c == '\n':
			s.row++
			i++
		case c == 0x1b:
			end, _ := escapeEnd(str, i)
			seq := str[i:end]
			switch {
			case strings.HasSuffix(seq, "A"):
				n, _ := strconv.Atoi(seq[2 : len(seq)-1])
				s.row = max(s.row-n, 0)
			case seq == "\x1b[J":
				if s.row < len(s.lines) {
					s.lines = s.lines[:s.row]
				}
			case strings.HasSuffix(seq, "m"):
			default:
				return 0, fmt.Errorf("unexpected escape sequence %q", seq)
			}
			i = end
		default:
			for len(s.lines) <= s.row {
				s.lines = append(s.lines, "")
			}
			j := i
			for j < len(str) && str[j] != '\n' && str[j] != '\r' && str[j] != 0x1b {
				j++
			}
			s.lines[s.row] += str[i:j]
			// Wrap like a terminal: text past the last column continues on
			// the next row, which the view's cursor-up count must not miss.
			for s.width > 0 && visibleWidth(s.lines[s.row]) > s.width {
				head, tail := splitColumns(s.lines[s.row], s.width)
				s.lines[s.row] = head
				s.row++
				s.lines = append(s.lines[:s.row], append([]string{tail}, s.lines[s.row:]...)...)
			}
			i = j
		}
	}
	return len(p), nil
}

// splitColumns splits s after width visible columns.
func splitColumns(s string, width int) (string, string) {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i, _ = escapeEnd(s, i)
			continue
		}
		if n == width {
			return s[:i], s[i:]
		}
		_, size := decodeRune(s[i:])
		i += size
		n++
	}
	return s, ""
}

func (s *screen) String() string { return strings.Join(s.lines, "\n") + "\n" }

func TestLiveScreens(t *testing.T) {
	for _, color := range []bool{false, true} {
		t.Run(fmt.Sprintf("color=%v", color), func(t *testing.T) {
			scr := &screen{width: 60}
			var now time.Time
			l := NewLive(scr, LiveOptions{
				Color: color, Width: func() int { return 60 }, Interval: -1,
				Now:   func() time.Time { return now },
				Steps: []string{"build", "provision", "fetch-msd", "lint", "report", "teardown"},
			})
			var snaps strings.Builder
			for _, ev := range script() {
				l.Event(ev)
				now = ev.Time.Add(2 * time.Second)
				l.Draw()
				fmt.Fprintf(&snaps, "--- after %s %s at %s\n%s", ev.Kind, ev.Step, now.Format("15:04:05"), plainText(scr.String()))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&snaps, "--- closed\n%s", plainText(scr.String()))
			golden(t, fmt.Sprintf("live-color-%v.txt", color), []byte(snaps.String()))
			final := plainText(scr.String())
			if strings.Contains(final, "running") || strings.Contains(final, "gpipe ") {
				t.Errorf("Close left the live view on screen:\n%s", final)
			}
			if n := strings.Count(final, "\n"); n != 15 {
				t.Errorf("final screen has %d lines, want the 15 log lines:\n%s", n, final)
			}
		})
	}
}

// plainText drops colour sequences so golden files stay readable; the
// screen emulator already checked every sequence.
func plainText(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, sanitize(l, false))
	}
	return strings.Join(lines, "\n")
}

func TestLiveManyRunning(t *testing.T) {
	scr := &screen{width: 40}
	l := NewLive(scr, LiveOptions{Width: func() int { return 40 }, Interval: -1, MaxRows: 3,
		Now: func() time.Time { return sec(65) }})
	for i := range 6 {
		l.Event(engine.Event{Kind: engine.StepStarted, Time: sec(float64(i)), Step: fmt.Sprintf("train-fold-%d", i), Attempt: 1})
	}
	l.Event(engine.Event{Kind: engine.StepOutput, Time: sec(6), Step: "train-fold-0",
		Line: "epoch 12/1000 loss 0.1234 dice 0.7 a very long line indeed"})
	l.Draw()
	want := "[train-fold-0] epoch 12/1000 loss 0.1234\n" +
		" dice 0.7 a very long line indeed\n" +
		"gpipe 6 running · 1m5s\n" +
		"⠋ train-fold-0    1m5s  epoch 12/1000 …\n" +
		"⠋ train-fold-1    1m4s\n" +
		"⠋ train-fold-2    1m3s\n" +
		"  … and 3 more running\n"
	if got := scr.String(); got != want {
		t.Errorf("screen:\n%s\nwant:\n%s", got, want)
	}
	// A long output line wrapped on screen; redrawing must still replace the
	// view, not the log above it.
	l.Event(engine.Event{Kind: engine.StepFinished, Time: sec(66), Step: "train-fold-5", Status: state.StepSucceeded,
		Duration: time.Minute})
	l.Draw()
	if got := strings.SplitN(scr.String(), "\n", 4); got[0]+got[1] != "[train-fold-0] epoch 12/1000 loss 0.1234 dice 0.7 a very long line indeed" ||
		got[2] != "✓ train-fold-5 succeeded in 1m" {
		t.Errorf("after a redraw the screen is:\n%s", scr.String())
	}
}

// The ticker redraws while events arrive from another goroutine.
func TestLiveConcurrentTicker(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	l := NewLive(w, LiveOptions{Interval: time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 2000 {
			l.Event(engine.Event{Kind: engine.StepOutput, Time: time.Now(), Step: "s", Line: fmt.Sprintf("line %d", i)})
		}
		l.Event(engine.Event{Kind: engine.StepFinished, Time: time.Now(), Step: "s", Status: state.StepSucceeded})
	}()
	testtool.Wait(t, &wg, "the goroutine sending 2000 events")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Event(engine.Event{Kind: engine.StepOutput, Step: "s", Line: "after close"})
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	for _, want := range []string{"[s] line 0\n", "[s] line 1999\n", "✓ s succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "after close") {
		t.Error("event after Close was printed")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
