package secret

import (
	"bytes"
	"io"
	"sync"
)

// maxHold bounds how much of a line without an end a Writer holds back (a
// progress bar that never prints a newline); past it, what cannot be the
// start of a secret is released.
const maxHold = 16 << 10

// Writer masks secret values in a stream before passing it on. It releases
// text at line ends ('\n' or '\r', so progress bars drawn with '\r' still flow)
// and masks each piece whole, so a value that arrives split across writes is
// masked all the same. A line still open is held until it ends, grows past
// maxHold, or Close. Safe for concurrent use.
type Writer struct {
	m   *Masker
	out io.Writer

	mu   sync.Mutex
	hold []byte
	err  error
}

// NewWriter returns a Writer that masks m's values on their way to out.
func NewWriter(m *Masker, out io.Writer) *Writer { return &Writer{m: m, out: out} }

// Write implements io.Writer. It reports len(p) unless out failed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.hold = append(w.hold, p...)
	n := 0
	if i := bytes.LastIndexAny(w.hold, "\r\n"); i >= 0 {
		n = i + 1
	} else if len(w.hold) > maxHold {
		n = w.m.safeCut(string(w.hold))
	}
	if n > 0 {
		w.emit(n)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// emit masks and writes the first n held bytes. The caller holds mu.
func (w *Writer) emit(n int) {
	s := w.m.String(string(w.hold[:n]))
	w.hold = append(w.hold[:0], w.hold[n:]...)
	if _, err := io.WriteString(w.out, s); err != nil {
		w.err = err
	}
}

// Close writes what is held, masked. It does not close out.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil && len(w.hold) > 0 {
		w.emit(len(w.hold))
	}
	w.hold = nil
	return w.err
}
