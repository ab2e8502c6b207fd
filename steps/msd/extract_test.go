package msd

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
