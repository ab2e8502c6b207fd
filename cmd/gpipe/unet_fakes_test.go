package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnetFakeDockerMounts holds the fake docker of testdata/unet/bin to the
// rules the end-to-end tests rely on: a container reaches the host only
// through its -v mounts (a container path maps to the mount's host path; no
// mount, no access; :ro, no writes), and the CLI needs a running daemon.
func TestUnetFakeDockerMounts(t *testing.T) {
	dir := t.TempDir()
	fake, disk := filepath.Join(dir, "docker"), filepath.Join(dir, "disk")
	image := "gpipe-unet:1.21.0-0123456789ab"
	writeFile(t, filepath.Join(fake, "images", image), "")
	for _, u := range []string{"docker.service", "docker.socket"} {
		writeFile(t, filepath.Join(disk, "units", u), "")
	}
	hostData, hostResults := filepath.Join(dir, "host-data"), filepath.Join(dir, "host-results")
	writeFile(t, filepath.Join(hostData, "Task01_BrainTumour", "dataset.json"), "{}")
	docker := filepath.Join(repoRoot(t), "testdata", "unet", "bin", "docker")
	run := func(mounts ...string) (string, error) {
		args := []string{"run", "--rm", "--name", "c", "--runtime=habana", "-e", "HABANA_VISIBLE_DEVICES=all",
			"-e", "OMPI_MCA_btl_vader_single_copy_mechanism=none", "--cap-add=sys_nice", "--net=host", "--ipc=host"}
		for _, m := range mounts {
			args = append(args, "-v", m)
		}
		args = append(args, image, "python3", "preprocess.py", "--task", "01", "--dim", "2", "--data", "/data",
			"--results", "/results", "--exec_mode", "training")
		cmd := exec.Command(docker, args...)
		cmd.Env = append(os.Environ(), "FAKE_DIR="+fake, "FAKE_DISK_STATE="+disk)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := run(hostData+":/data:ro", hostResults+":/results"); err != nil {
		t.Fatalf("mounted at other paths: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(hostResults, "01_2d", "config.pkl")); err != nil {
		t.Errorf("the container's /results/01_2d/config.pkl is not at the mount's host path: %v", err)
	}
	for name, c := range map[string]struct {
		mounts []string
		want   string
	}{
		"no mount of the results": {[]string{hostData + ":/data"}, "which no -v mounts"},
		"results read-only":       {[]string{hostData + ":/data", hostResults + ":/results:ro"}, "mounted read-only"},
		"data elsewhere":          {[]string{hostData + ":/other", hostResults + ":/results"}, "which no -v mounts"},
	} {
		if out, err := run(c.mounts...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v, want a failure saying %q:\n%s", name, err, c.want, out)
		}
	}

	for _, u := range []string{"docker.service", "docker.socket"} {
		if err := os.Remove(filepath.Join(disk, "units", u)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := run(hostData+":/data", hostResults+":/results"); err == nil || !strings.Contains(out, "Cannot connect to the Docker daemon") {
		t.Errorf("with docker stopped: %v\n%s", err, out)
	}
}
