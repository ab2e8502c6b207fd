package msd

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
)

func TestExtractSkipsAppleDouble(t *testing.T) {
	data, _ := buildTar(t, msdArchive(t, "Task04_Hippocampus", 2, 1000))
	dir := t.TempDir()
	skipped, err := extractTar(bytes.NewReader(data), dir)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 3 {
		t.Errorf("skipped %d ._ files, want 3", skipped)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "Task04_Hippocampus", "*", "._*"))
	if len(matches) != 0 {
		t.Errorf("._ files extracted: %v", matches)
	}
	if _, err := os.Stat(filepath.Join(dir, "Task04_Hippocampus", "imagesTr", "case_001.nii.gz")); err != nil {
		t.Error(err)
	}
}

func TestExtractRejectsHostileEntries(t *testing.T) {
	ok := entry{name: "T/a.nii.gz", typ: tar.TypeReg, data: []byte("x")}
	cases := map[string][]entry{
		"dotdot":               {ok, {name: "T/../../escape", typ: tar.TypeReg, data: []byte("x")}},
		"absolute":             {{name: "/tmp/escape", typ: tar.TypeReg, data: []byte("x")}},
		"symlink out":          {{name: "T/link", typ: tar.TypeSymlink, link: "../../.."}},
		"symlink absolute":     {{name: "T/link", typ: tar.TypeSymlink, link: "/etc"}},
		"hardlink out":         {{name: "T/hl", typ: tar.TypeLink, link: "../outside"}},
		"hardlink to nothing":  {{name: "T/hl", typ: tar.TypeLink, link: "T/missing"}},
		"write through link":   {{name: "T/d", typ: tar.TypeSymlink, link: "sub"}, {name: "T/sub/", typ: tar.TypeDir}, {name: "T/d/x", typ: tar.TypeReg, data: []byte("x")}},
		"dir through link":     {{name: "T/d", typ: tar.TypeSymlink, link: "."}, {name: "T/d/sub/", typ: tar.TypeDir}},
		"overwrite link entry": {{name: "T/l", typ: tar.TypeSymlink, link: "a.nii.gz"}, {name: "T/l", typ: tar.TypeReg, data: []byte("x")}},
	}
	for name, es := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "stage")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			data, _ := buildTar(t, es)
			_, err := extractTar(bytes.NewReader(data), dir)
			var ue *UnsafeEntryError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want an *UnsafeEntryError", err)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("something was written next to the staging dir: %v", entries)
			}
		})
	}
}

func TestExtractAllowsLinksInside(t *testing.T) {
	es := []entry{
		{name: "T/imagesTr/a.nii.gz", typ: tar.TypeReg, data: []byte("vol")},
		{name: "T/latest", typ: tar.TypeSymlink, link: "imagesTr/a.nii.gz"},
		{name: "T/copy.nii.gz", typ: tar.TypeLink, link: "T/imagesTr/a.nii.gz"},
	}
	data, _ := buildTar(t, es)
	dir := t.TempDir()
	if _, err := extractTar(bytes.NewReader(data), dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"T/latest", "T/copy.nii.gz"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != "vol" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
}

// TestExtractResumeReplacesLeftovers: a resumed extraction replays entries an
// interrupted run may already have written; what it finds at their names (a
// hardlink to an earlier file, a symlink the journal does not know) must be
// replaced, never written through.
func TestExtractResumeReplacesLeftovers(t *testing.T) {
	first := []entry{{name: "T/a.nii.gz", typ: tar.TypeReg, data: []byte("aaa")}}
	rest := []entry{
		{name: "T/b.nii.gz", typ: tar.TypeReg, data: []byte("bbb")},
		{name: "T/d/c.nii.gz", typ: tar.TypeReg, data: []byte("ccc")},
	}
	whole, _ := buildTar(t, append(first, rest...))
	head, _ := buildTar(t, first)
	resumeAt := int64(len(head)) - 1024 // the end-of-archive blocks are not part of it
	dir := t.TempDir()
	if _, err := extractTar(bytes.NewReader(head), dir); err != nil {
		t.Fatal(err)
	}
	// Leftovers: b is a hardlink to a, d a symlink to the directory T.
	if err := os.Link(filepath.Join(dir, "T/a.nii.gz"), filepath.Join(dir, "T/b.nii.gz")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(dir, "T/d")); err != nil {
		t.Fatal(err)
	}
	x, err := newExtractor(dir, extractState{Files: []string{"T/a.nii.gz"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := x.run(bytes.NewReader(whole[resumeAt:]), resumeAt); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"T/a.nii.gz": "aaa", "T/b.nii.gz": "bbb", "T/d/c.nii.gz": "ccc"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", p, b, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "T/d")); err != nil || !fi.IsDir() {
		t.Errorf("T/d is not a directory: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "T/c.nii.gz")); err == nil {
		t.Error("c written through the leftover symlink")
	}
	if got := x.state(); len(got.Files) != 3 {
		t.Errorf("state after resume: %+v", got)
	}
}

// largeFilesTar has files of directMin and more, several buffers long, with
// and without an unaligned tail, and small ones.
// It returns the archive and how many of its bytes direct I/O writes: the
// aligned part of each large file.
func largeFilesTar(t *testing.T) (data []byte, direct int64) {
	var es []entry
	for i, n := range []int{directMin, directMin + 1, writeBuf, writeBuf + directAlign - 1, 2*writeBuf + 100, directMin - 1, 0} {
		es = append(es, entry{name: fmt.Sprintf("T/f%d", i), typ: tar.TypeReg, data: random(t, n)})
		if n >= directMin {
			direct += int64(n &^ (directAlign - 1))
		}
	}
	data, _ = buildTar(t, es)
	return data, direct
}

// TestExtractLargeFilesDirect writes the large files with direct I/O, on a
// filesystem that takes it, and proves it did: the extractor never fell
// back to the page cache, and the files are the archive's byte for byte.
func TestExtractLargeFilesDirect(t *testing.T) {
	data, wantDirect := largeFilesTar(t)
	dir := directDir(t)
	x, err := newExtractor(dir, extractState{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !x.direct {
		t.Fatal("extractor does not try direct I/O")
	}
	if err := x.run(bytes.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
	if !x.direct || x.directBytes != wantDirect {
		t.Errorf("%d bytes written with O_DIRECT (still trying: %v), want %d: the extractor fell back to the page cache on a filesystem that takes O_DIRECT",
			x.directBytes, x.direct, wantDirect)
	}
	sameAsArchive(t, data, dir)
}

// TestExtractLargeFilesPageCache: with direct I/O off (a filesystem that
// refused it, such as tmpfs) the same files come out byte for byte.
func TestExtractLargeFilesPageCache(t *testing.T) {
	data, _ := largeFilesTar(t)
	dir := t.TempDir()
	x, err := newExtractor(dir, extractState{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	x.direct = false
	if err := x.run(bytes.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
	if x.directBytes != 0 {
		t.Errorf("%d bytes written with O_DIRECT with direct I/O off", x.directBytes)
	}
	sameAsArchive(t, data, dir)
}

// What no retry can fix says so, so the engine does not retry it.
func TestErrorsArePermanent(t *testing.T) {
	_, badParam := Decode(map[string]any{"task": "01", "concurrency": 0})
	for _, err := range []error{&UnsafeEntryError{Name: "../x", Reason: "escapes"}, &ChecksumError{Got: "a", Want: "b"}, badParam} {
		if !pipeline.IsPermanent(fmt.Errorf("fetch: %w", err)) {
			t.Errorf("%T is not permanent", err)
		}
	}
}
