package secret

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkWriter masks a chatty step's output (100-byte lines in 4 KiB
// writes, as a pipe delivers them) with two secrets registered.
func BenchmarkWriter(b *testing.B) {
	m := NewMasker("TopSecretTok", "another-secret-value")
	line := strings.Repeat("epoch 12 step 3400 loss 0.1234 dice 0.8765 ", 3)[:99] + "\n"
	chunk := []byte(strings.Repeat(line, 4096/len(line)))
	b.SetBytes(int64(len(chunk)))
	w := NewWriter(m, io.Discard)
	for b.Loop() {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}
