package main

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

const task01 = "Task01_BrainTumour"

// tarEntry is one member of a test archive.
type tarEntry struct {
	name, link string
	typ        byte
	data       []byte
}

// msdTask01 is a small MSD-style Task01: dataset.json with the case counts, a
// few random (incompressible, like real .nii.gz) volumes, and the macOS ._
// files the real archive has.
func msdTask01(t *testing.T, cases int) []tarEntry {
	es := []tarEntry{{name: task01 + "/", typ: tar.TypeDir}}
	for _, d := range []string{"imagesTr", "labelsTr", "imagesTs"} {
		es = append(es, tarEntry{name: task01 + "/" + d + "/", typ: tar.TypeDir})
	}
	var training, test []string
	for i := range cases {
		img, lbl, ts := fmt.Sprintf("imagesTr/BRATS_%03d.nii.gz", i+1), fmt.Sprintf("labelsTr/BRATS_%03d.nii.gz", i+1),
			fmt.Sprintf("imagesTs/BRATS_%03d.nii.gz", 485+i)
		es = append(es,
			tarEntry{name: task01 + "/" + img, typ: tar.TypeReg, data: randomBytes(t, 2048)},
			tarEntry{name: task01 + "/imagesTr/._" + filepath.Base(img), typ: tar.TypeReg, data: []byte("Mac OS X resource fork")},
			tarEntry{name: task01 + "/" + lbl, typ: tar.TypeReg, data: randomBytes(t, 512)},
			tarEntry{name: task01 + "/" + ts, typ: tar.TypeReg, data: randomBytes(t, 2048)},
		)
		training = append(training, fmt.Sprintf(`{"image": "./%s", "label": "./%s"}`, img, lbl))
		test = append(test, fmt.Sprintf(`"./%s"`, ts))
	}
	ds := fmt.Sprintf(`{"name": "BRATS", "tensorImageSize": "4D", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
 "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
 "numTraining": %d, "numTest": %d, "training": [%s], "test": [%s]}`,
		cases, cases, strings.Join(training, ", "), strings.Join(test, ", "))
	return append(es, tarEntry{name: task01 + "/dataset.json", typ: tar.TypeReg, data: []byte(ds)},
		tarEntry{name: task01 + "/._dataset.json", typ: tar.TypeReg, data: []byte("junk")})
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// buildTar writes entries as a tar archive and returns it with its MD5.
func buildTar(t *testing.T, entries []tarEntry) ([]byte, string) {
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
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:])
}
