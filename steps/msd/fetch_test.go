package msd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline"
)

// s3Env starts versitygw, points the SDK's default configuration at it and
// uploads objects into a bucket.
func s3Env(t *testing.T, objects map[string][]byte) string {
	t.Helper()
	srv := testtool.Versitygw(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	bucket := srv.Bucket(t, "msd-mirror")
	client, err := SDKClient(t.Context(), "us-east-1", false)
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range objects {
		c := client.(*s3.Client)
		if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	return bucket
}

func fetchRun(with map[string]any) *pipeline.StepRun {
	return &pipeline.StepRun{RunID: "r", StepID: "fetch", Type: Type, Attempt: 1, With: with,
		Host: pipeline.Host{Name: "local", Address: "local"}, Log: &bytes.Buffer{}}
}

func TestFetchFromVersitygw(t *testing.T) {
	good, goodMD5 := buildTar(t, msdArchive(t, "Task09_Spleen", 6, 700<<10))
	hostile, hostileMD5 := buildTar(t, append(msdArchive(t, "Task09_Spleen", 1, 1000),
		entry{name: "Task09_Spleen/imagesTr/link", typ: '2', link: "../../../.."},
		entry{name: "Task09_Spleen/imagesTr/link/pwned", typ: '0', data: []byte("x")}))
	bucket := s3Env(t, map[string][]byte{"Task09_Spleen.tar": good, "hostile/Task09_Spleen.tar": hostile})
	dest := filepath.Join(t.TempDir(), "data")
	f := New(nil)
	with := map[string]any{"task": "09", "source": "s3://" + bucket + "/Task09_Spleen.tar", "md5": goodMD5,
		"dest": dest, "concurrency": 3, "part_size_mib": 1}

	res, err := f.Run(t.Context(), fetchRun(with))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dest, "Task09_Spleen")
	want := map[string]string{"data_dir": dataDir, "num_training": "6", "num_test": "6", "md5": goodMD5, "skipped": "false"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "imagesTs", "case_105.nii.gz")); err != nil {
		t.Error(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dataDir, "*", "._*")); len(m) > 0 {
		t.Errorf("._ files extracted: %v", m)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 1 {
		t.Errorf("dest holds more than the task folder (spool, staging left?): %v", entries)
	}

	// Second run: verified marker, nothing fetched.
	res, err = f.Run(t.Context(), fetchRun(with))
	if err != nil || res.Outputs["skipped"] != "true" || res.Outputs["num_training"] != "6" {
		t.Errorf("rerun: %v %v", res.Outputs, err)
	}

	// A wrong MD5 keeps nothing in place.
	dest2 := filepath.Join(t.TempDir(), "data")
	bad := map[string]any{"task": "09", "source": with["source"], "md5": strings.Repeat("0", 32), "dest": dest2, "part_size_mib": 1}
	_, err = f.Run(t.Context(), fetchRun(bad))
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Got != goodMD5 {
		t.Errorf("wrong md5: err %v", err)
	}
	if entries, _ := os.ReadDir(dest2); len(entries) != 0 {
		t.Errorf("wrong md5 left %v in dest", entries)
	}

	// A hostile archive fails clearly and leaves nothing outside dest.
	outer := t.TempDir()
	dest3 := filepath.Join(outer, "a", "b", "data")
	_, err = f.Run(t.Context(), fetchRun(map[string]any{"task": "09", "source": "s3://" + bucket + "/hostile/Task09_Spleen.tar",
		"md5": hostileMD5, "dest": dest3}))
	var ue *UnsafeEntryError
	if !errors.As(err, &ue) {
		t.Fatalf("hostile archive: err %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest3, "Task09_Spleen")); err == nil {
		t.Error("hostile archive extracted into place")
	}
	filepath.Walk(outer, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "pwned" {
			t.Errorf("file written through a link: %s", p)
		}
		return nil
	})
}

func TestDecode(t *testing.T) {
	c, err := Decode(map[string]any{"task": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Source() != "s3://msd-for-monai/Task01_BrainTumour.tar" || c.MD5 != "240a19d752f0d9e9101544901065d872" ||
		!c.Anonymous || c.Region != "us-west-2" || c.Dest != "/data" || c.Concurrency != 8 || c.PartSizeMiB != 16 {
		t.Errorf("defaults: %+v", c)
	}
	c, err = Decode(map[string]any{"task": "Task04_Hippocampus", "source": "s3://msd-for-monai-eu/Task04_Hippocampus.tar"})
	if err != nil || c.Region != "eu-west-2" || c.MD5 != "9d24dba78a72977dbd1d2e110310f31b" || !c.Anonymous {
		t.Errorf("mirror: %+v %v", c, err)
	}
	for _, bad := range []map[string]any{
		{},
		{"task": "11"},
		{"task": "01", "source": "s3://private/x.tar"},
		{"task": "01", "md5": "xyz"},
		{"task": "01", "source": "https://x/y"},
		{"task": "01", "concurrency": 0},
		{"task": "01", "dest": "data"},
		{"task": "01", "colour": "red"},
	} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%v): want an error", bad)
		}
	}
}
