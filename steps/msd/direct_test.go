package msd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

// TestDirectFileFallsBack: a direct write the kernel refuses (here: memory
// not aligned as O_DIRECT needs) goes through the page cache instead, and
// nothing is lost or written twice.
func TestDirectFileFallsBack(t *testing.T) {
	name := filepath.Join(directDir(t), "f")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|oDirect, 0o644)
	if err != nil {
		t.Fatal(err)
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

// directDir returns an empty directory on a filesystem that accepts O_DIRECT:
// the test's temporary directory, or else one beside the package (the
// temporary directory is often a tmpfs, which refuses O_DIRECT). Where none
// does, the test cannot prove direct I/O (testtool.Unavailable).
func directDir(t *testing.T) string {
	t.Helper()
	if oDirect == 0 {
		testtool.Unavailable(t, "no O_DIRECT on this system")
	}
	var refusals []string
	for _, mk := range []func() (string, error){
		func() (string, error) { return t.TempDir(), nil },
		func() (string, error) {
			d, err := os.MkdirTemp(".", "direct-test-")
			if err == nil {
				t.Cleanup(func() { os.RemoveAll(d) })
			}
			return d, err
		},
	} {
		dir, err := mk()
		if err != nil {
			refusals = append(refusals, err.Error())
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_WRONLY|os.O_CREATE|oDirect, 0o644)
		if err != nil {
			refusals = append(refusals, fmt.Sprintf("%s: %v", dir, err))
			continue
		}
		f.Close()
		if err := os.Remove(filepath.Join(dir, "probe")); err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	testtool.Unavailable(t, "no filesystem here accepts O_DIRECT: "+strings.Join(refusals, "; "))
	return ""
}
