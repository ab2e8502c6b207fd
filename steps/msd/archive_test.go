package msd

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
)

// entry is one member of a test archive.
type entry struct {
	name, link string
	typ        byte
	data       []byte
}

// buildTar writes entries as a tar archive and returns it with its MD5.
func buildTar(t testing.TB, entries []entry) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:])
}

func random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// msdArchive is a small MSD-style task: dataset.json, a few random
// (incompressible, like real .nii.gz) volumes, and macOS ._ files.
func msdArchive(t testing.TB, task string, cases, volBytes int) []entry {
	es := []entry{{name: task + "/", typ: tar.TypeDir}}
	for _, d := range []string{"imagesTr", "labelsTr", "imagesTs"} {
		es = append(es, entry{name: task + "/" + d + "/", typ: tar.TypeDir})
	}
	var training, test string
	for i := range cases {
		img := fmt.Sprintf("imagesTr/case_%03d.nii.gz", i)
		lbl := fmt.Sprintf("labelsTr/case_%03d.nii.gz", i)
		ts := fmt.Sprintf("imagesTs/case_%03d.nii.gz", 100+i)
		es = append(es,
			entry{name: task + "/" + img, typ: tar.TypeReg, data: random(t, volBytes)},
			entry{name: task + "/imagesTr/._case_" + fmt.Sprintf("%03d", i) + ".nii.gz", typ: tar.TypeReg, data: []byte("Mac OS X resource fork")},
			entry{name: task + "/" + lbl, typ: tar.TypeReg, data: random(t, volBytes/4)},
			entry{name: task + "/" + ts, typ: tar.TypeReg, data: random(t, volBytes)},
		)
		if i > 0 {
			training += ", "
			test += ", "
		}
		training += fmt.Sprintf(`{"image": "./%s", "label": "./%s"}`, img, lbl)
		test += fmt.Sprintf(`"./%s"`, ts)
	}
	ds := fmt.Sprintf(`{"name": "test", "numTraining": %d, "numTest": %d, "training": [%s], "test": [%s]}`, cases, cases, training, test)
	es = append(es, entry{name: task + "/dataset.json", typ: tar.TypeReg, data: []byte(ds)},
		entry{name: task + "/._dataset.json", typ: tar.TypeReg, data: []byte("junk")})
	return es
}
