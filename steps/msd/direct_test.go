package msd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDirectFileFallsBack: a direct write the kernel refuses (here: memory
// not aligned as O_DIRECT needs) goes through the page cache instead, and
// nothing is lost or written twice.
func TestDirectFileFallsBack(t *testing.T) {
	if oDirect == 0 {
		t.Skip("no direct I/O on this system")
	}
	name := filepath.Join(t.TempDir(), "f")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|oDirect, 0o644)
	if err != nil {
		t.Skipf("filesystem refuses O_DIRECT: %v", err)
	}
	defer f.Close()
	d := &directFile{f: f, direct: true}
	aligned := alignedBuf(2 * directAlign)
	copy(aligned, random(t, len(aligned)))
	if refused, err := d.write(aligned); err != nil || refused || !d.direct {
		t.Fatalf("aligned direct write: refused %v, err %v, still direct %v", refused, err, d.direct)
	}
	misaligned := alignedBuf(2*directAlign + 100)[1:]
	copy(misaligned, random(t, len(misaligned)))
	refused, err := d.write(misaligned)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("misaligned write refused by the kernel: %v", refused)
	if d.direct {
		t.Error("still direct after an unaligned tail")
	}
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, append(append([]byte{}, aligned...), misaligned...)) {
		t.Errorf("file holds %d bytes (%v), want the %d written", len(got), err, len(aligned)+len(misaligned))
	}
}
