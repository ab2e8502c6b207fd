package train

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline"
)

// hostBin makes a PATH directory holding the fake hl-smi (of the end-to-end
// tests) unless withoutSMI, plus any extra scripts, in front of the real PATH.
func hostBin(t *testing.T, withoutSMI bool, extra map[string]string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	if !withoutSMI {
		smi, err := filepath.Abs("../../testdata/unet/bin/hl-smi")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(smi, filepath.Join(dir, "hl-smi")); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

func runPrepareHost(t *testing.T, with map[string]string, env map[string]string) (pipeline.Result, string, error) {
	t.Helper()
	f := newFakeEnv(t)
	f.Env["GPIPE_HOST_ROOT"] = t.TempDir()
	for k, v := range env {
		f.Env[k] = v
	}
	w := map[string]any{}
	for k, v := range with {
		w[k] = v
	}
	log := &syncBuf{}
	res, err := (&PrepareHost{Exec: localExecutors{}}).Run(t.Context(), stepRun(TypePrepareHost, "prepare-host", w, f.Env, log))
	return res, log.String(), err
}

// A host with the container's driver passes; the version is read from
// hl-smi's "Driver Version" line, not the NIC driver's under it.
func TestPrepareHostMatchingDriver(t *testing.T) {
	_, path := hostBin(t, false, nil)
	res, log, err := runPrepareHost(t, nil, map[string]string{"PATH": path,
		"FAKE_HL_DRIVER": "1.21.1-bfcec49", "FAKE_HL_NIC_DRIVER": "1.13.0-0000000"})
	if err != nil {
		t.Fatalf("prepare-host: %v\n%s", err, log)
	}
	for k, v := range map[string]string{"driver_version": "1.21.1-bfcec49", "release": "1.21.0", "installed_driver": "false"} {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
}

// A driver of another release stops the step with a permanent, typed error
// that names both versions and the fix — before docker is even asked about
// its runtimes (with install false and no habana runtime, going on would
// fail differently).
func TestPrepareHostDriverMismatch(t *testing.T) {
	_, path := hostBin(t, false, nil)
	res, log, err := runPrepareHost(t, map[string]string{"install": "false"}, map[string]string{"PATH": path,
		"FAKE_HL_DRIVER": "1.13.0-6e7ef62", "FAKE_NO_HABANA_RUNTIME": "1"})
	var mm *DriverMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("err = %v, want a *DriverMismatchError\n%s", err, log)
	}
	if !pipeline.IsPermanent(err) {
		t.Error("a driver mismatch is not permanent: a retry would pay for the same failure again")
	}
	for _, want := range []string{"1.13.0-6e7ef62", "release 1.21.0", DefaultImage, "Fix:", "1.21.x driver", "release 1.13"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if res.Outputs["driver_version"] != "1.13.0-6e7ef62" {
		t.Errorf("driver_version output %q", res.Outputs["driver_version"])
	}
}

// Without hl-smi the script downloads Habana's installer of the release from
// the artifactory and runs "install --type base -y", then reads the version
// of what it installed.
func TestPrepareHostInstallsMissingDriver(t *testing.T) {
	smi, err := filepath.Abs("../../testdata/unet/bin/hl-smi")
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "record")
	dir, path := hostBin(t, true, map[string]string{
		// wget -nv -O FILE URL: writes an installer that puts hl-smi in place.
		"wget": `#!/usr/bin/env bash
set -eu
[ "$1" = -nv ] && [ "$2" = -O ] || { echo "fake wget: $*" >&2; exit 2; }
echo "wget $4" >>"$RECORD"
cat >"$3" <<INSTALLER
#!/usr/bin/env bash
echo "installer \$*" >>"$RECORD"
ln -s "$SMI" "$BIN/hl-smi"
INSTALLER
`,
		"sudo": "#!/usr/bin/env bash\nexec \"$@\"\n",
	})
	res, log, err := runPrepareHost(t, map[string]string{"artifactory": "https://mirror.example/artifactory/"},
		map[string]string{"PATH": path, "RECORD": record, "SMI": smi, "BIN": dir, "FAKE_HL_DRIVER": "1.21.0-abcdef0"})
	if err != nil {
		t.Fatalf("prepare-host: %v\n%s", err, log)
	}
	if res.Outputs["installed_driver"] != "true" || res.Outputs["driver_version"] != "1.21.0-abcdef0" {
		t.Errorf("outputs %v", res.Outputs)
	}
	got, _ := os.ReadFile(record)
	want := "wget https://mirror.example/artifactory/gaudi-installer/1.21.0/habanalabs-installer.sh\ninstaller install --type base -y\n"
	if string(got) != want {
		t.Errorf("install steps:\n%s\nwant:\n%s", got, want)
	}
}

func TestPrepareHostWithoutDriverAndNoInstall(t *testing.T) {
	_, path := hostBin(t, true, nil)
	_, log, err := runPrepareHost(t, map[string]string{"install": "false"}, map[string]string{"PATH": path})
	if err == nil || !strings.Contains(log, "hl-smi not found: this host has no Habana driver (install is false)") {
		t.Fatalf("err = %v, want the missing driver named\n%s", err, log)
	}
}

func TestDecodeHost(t *testing.T) {
	c, err := DecodeHost(map[string]any{"image": "vault.habana.ai/gaudi-docker/1.20.1/ubuntu24.04/habanalabs/pytorch-installer-2.5.1:latest"})
	if err != nil || c.Release != "1.20.1" || !c.Install || c.Artifactory != DefaultArtifactory {
		t.Errorf("DecodeHost = %+v, %v", c, err)
	}
	for _, bad := range []struct {
		with map[string]any
		want string
	}{
		{map[string]any{"image": "my-registry/unet:v1"}, "with.release: required"},
		{map[string]any{"image": "my-registry/unet:v1", "release": "1.21"}, "want a Gaudi software release"},
		{map[string]any{"release": "1.20.0"}, "contradicts image"},
		{map[string]any{"install": "maybe"}, "with.install: want true or false, got maybe"},
		{map[string]any{"artifactory": "http://plain"}, "want an https:// URL"},
	} {
		if _, err := DecodeHost(bad.with); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("DecodeHost(%v) = %v, want %q", bad.with, err, bad.want)
		}
	}
	// A custom image names its release explicitly.
	if c, err := DecodeHost(map[string]any{"image": "my-registry/unet:v1", "release": "1.21.0"}); err != nil || c.Release != "1.21.0" {
		t.Errorf("custom image with release: %+v, %v", c, err)
	}
}

func TestSameRelease(t *testing.T) {
	for _, c := range []struct {
		driver, release string
		want            bool
	}{
		{"1.21.0-ca59b5a", "1.21.0", true},
		{"1.21.1-bfcec49", "1.21.0", true},
		{"1.13.0-6e7ef62", "1.21.0", false},
		{"1.2.0-585", "1.21.0", false},
		{"1.210.0-x", "1.21.0", false},
		{"", "1.21.0", false},
	} {
		if got := SameRelease(c.driver, c.release); got != c.want {
			t.Errorf("SameRelease(%q, %q) = %v", c.driver, c.release, got)
		}
	}
}

// The UNet scripts refuse (no longer only warn about) a loaded driver of
// another release, for specs that run them without prepare-host.
func TestUNetScriptRefusesDriverOfAnotherRelease(t *testing.T) {
	sys := t.TempDir()
	if err := os.MkdirAll(filepath.Join(sys, "habanalabs"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "Task01_BrainTumour"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "Task01_BrainTumour", "dataset.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		version string
		fails   bool
	}{{"1.13.0-6e7ef62\n", true}, {"1.21.2-0a1b2c3\n", false}} {
		if err := os.WriteFile(filepath.Join(sys, "habanalabs", "version"), []byte(c.version), 0o644); err != nil {
			t.Fatal(err)
		}
		f := newFakeEnv(t)
		f.Env["GPIPE_SYS_MODULE"] = sys
		with := map[string]any{"task": "01", "data": root, "results": t.TempDir()}
		log := &syncBuf{}
		_, err := (&Preprocess{Exec: localExecutors{}}).Run(t.Context(), stepRun(TypePreprocess, "preprocess", with, f.Env, log))
		refused := strings.Contains(log.String(), "is not of release 1.21 of image")
		if refused != c.fails || (err != nil) != c.fails {
			t.Errorf("driver %s: err %v, refused %v\n%s", strings.TrimSpace(c.version), err, refused, log)
		}
		if c.fails && len(f.runs(t)) > 0 {
			t.Errorf("driver %s: a container ran", strings.TrimSpace(c.version))
		}
	}
}

// A host with the driver but without the habana runtime gets Habana's
// package from Habana's apt repository, of the container's release, and the
// runtime registered in daemon.json next to what is there, then a docker
// restart (the daemon reads daemon.json only when it starts).
func TestPrepareHostRegistersHabanaRuntime(t *testing.T) {
	root := t.TempDir()
	record := filepath.Join(t.TempDir(), "record")
	loaded := filepath.Join(t.TempDir(), "loaded.json")
	for name, body := range map[string]string{
		"etc/os-release":               "NAME=\"Ubuntu\"\nVERSION_CODENAME=jammy\n",
		"etc/docker/daemon.json":       `{"data-root": "/data/docker", "runtimes": {"other": {"path": "/usr/bin/other"}}}`,
		"etc/apt/apt.conf.d/.keep":     "",
		"usr/share/keyrings/.keep":     "",
		"etc/apt/sources.list.d/.keep": "",
	} {
		writeTestFile(t, filepath.Join(root, name), body)
	}
	writeTestFile(t, loaded, `{"data-root": "/data/docker"}`)
	_, path := hostBin(t, false, map[string]string{
		"wget": "#!/usr/bin/env bash\necho \"wget $*\" >>\"$RECORD\"\necho KEY\n",
		// Records after reading its input, so after wget has written it.
		"gpg":     "#!/usr/bin/env bash\ncat\necho \"gpg $*\" >>\"$RECORD\"\n",
		"sudo":    "#!/usr/bin/env bash\nexec \"$@\"\n",
		"apt-get": "#!/usr/bin/env bash\necho \"apt-get $*\" >>\"$RECORD\"\n",
		// apt-cache madison's columns: package | version | source.
		"apt-cache": `#!/usr/bin/env bash
echo " habanalabs-container-runtime | 1.21.1-40 | https://vault.habana.ai/artifactory/debian jammy/main amd64 Packages"
echo " habanalabs-container-runtime | 1.21.0-555 | https://vault.habana.ai/artifactory/debian jammy/main amd64 Packages"
echo " habanalabs-container-runtime | 1.20.0-543 | https://vault.habana.ai/artifactory/debian jammy/main amd64 Packages"
`,
		"systemctl": "#!/usr/bin/env bash\necho \"systemctl $*\" >>\"$RECORD\"\n[ \"$*\" = \"restart docker\" ] && cp \"$GPIPE_HOST_ROOT/etc/docker/daemon.json\" \"$FAKE_DOCKER_LOADED\"\n",
	})
	res, log, err := runPrepareHost(t, nil, map[string]string{"PATH": path, "RECORD": record, "GPIPE_HOST_ROOT": root,
		"FAKE_DOCKER_LOADED": loaded, "FAKE_HL_DRIVER": "1.21.0-ca59b5a"})
	if err != nil {
		t.Fatalf("prepare-host: %v\n%s", err, log)
	}
	if res.Outputs["installed_driver"] != "false" {
		t.Errorf("outputs %v", res.Outputs)
	}
	got, _ := os.ReadFile(record)
	want := "wget -nv -O- https://vault.habana.ai/artifactory/api/gpg/key/public\ngpg --dearmor\n" +
		"apt-get update -q\napt-get install -y -q habanalabs-container-runtime=1.21.0-555\nsystemctl restart docker\n"
	if string(got) != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	list, _ := os.ReadFile(filepath.Join(root, "etc/apt/sources.list.d/habana-artifactory.list"))
	if want := "deb [signed-by=" + root + "/usr/share/keyrings/habana-artifactory.gpg] https://vault.habana.ai/artifactory/debian jammy main\n"; string(list) != want {
		t.Errorf("apt source %q, want %q", list, want)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/apt/apt.conf.d/90gpipe-lock-timeout")); string(b) != "DPkg::Lock::Timeout \"600\";\n" {
		t.Errorf("apt lock timeout %q", b)
	}
	var daemon map[string]any
	b, _ := os.ReadFile(filepath.Join(root, "etc/docker/daemon.json"))
	if err := json.Unmarshal(b, &daemon); err != nil {
		t.Fatal(err)
	}
	runtimes, _ := daemon["runtimes"].(map[string]any)
	habana, _ := runtimes["habana"].(map[string]any)
	if daemon["data-root"] != "/data/docker" || runtimes["other"] == nil || habana["path"] != "/usr/bin/habana-container-runtime" {
		t.Errorf("daemon.json %s", b)
	}
	if !strings.Contains(log, "registered the habana runtime with docker") {
		t.Errorf("log:\n%s", log)
	}
}

func writeTestFile(t *testing.T, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
