// Package action_test tests the installer that action.yml runs
// (action/install.sh) and its contract with the release build
// (.goreleaser.yaml): the archive names and the checksums file.
package action_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/gpipe/gpipe/internal/testtool"
)

const script = "install.sh"

// runInstall runs install.sh with only the given environment (plus PATH and
// HOME), so the runner's own GITHUB_* variables cannot leak in.
func runInstall(t *testing.T, cmd string, env map[string]string) (outputs map[string]string, log string, err error) {
	t.Helper()
	// Reading the script makes go test's cache key on its contents: the test
	// result depends on it, though only bash opens it.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "github_output")
	c := exec.Command("bash", script, cmd)
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GITHUB_OUTPUT=" + out}
	for k, v := range env {
		c.Env = append(c.Env, k+"="+v)
	}
	b, err := c.CombinedOutput()
	outputs = map[string]string{}
	if data, rerr := os.ReadFile(out); rerr == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				outputs[k] = v
			}
		}
	}
	return outputs, string(b), err
}

func TestInstallResolve(t *testing.T) {
	linux := map[string]string{"RUNNER_OS": "Linux", "RUNNER_ARCH": "X64"}
	with := func(extra map[string]string) map[string]string {
		env := map[string]string{}
		for k, v := range linux {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    map[string]string
		wantErr string
	}{
		{"the action's release tag", with(map[string]string{"GPIPE_ACTION_REF": "v1.2.3", "GPIPE_ACTION_REPOSITORY": "acme/gpipe"}),
			map[string]string{"mode": "download", "version": "v1.2.3", "repository": "acme/gpipe",
				"asset": "gpipe_1.2.3_linux_amd64.tar.gz", "cache-key": "gpipe-v1.2.3-linux_amd64"}, ""},
		{"ref and repository from the action path when the context is empty (actions/runner#2473)",
			with(map[string]string{"GPIPE_ACTION_PATH": "/home/runner/work/_actions/acme/gpipe/v2.0.0-rc.1"}),
			map[string]string{"mode": "download", "version": "v2.0.0-rc.1", "repository": "acme/gpipe",
				"asset": "gpipe_2.0.0-rc.1_linux_amd64.tar.gz", "cache-key": "gpipe-v2.0.0-rc.1-linux_amd64"}, ""},
		{"a branch builds from source", with(map[string]string{"GPIPE_ACTION_REF": "main"}),
			map[string]string{"mode": "source"}, ""},
		{"a commit builds from source", with(map[string]string{"GPIPE_ACTION_REF": "f521146538b9eb531cb8d4905e1b8af651625353"}),
			map[string]string{"mode": "source"}, ""},
		{"the version input wins over a branch ref", with(map[string]string{"GPIPE_ACTION_REF": "main",
			"GPIPE_ACTION_REPOSITORY": "acme/gpipe", "GPIPE_VERSION_INPUT": "v1.0.0"}),
			map[string]string{"mode": "download", "version": "v1.0.0", "repository": "acme/gpipe",
				"asset": "gpipe_1.0.0_linux_amd64.tar.gz", "cache-key": "gpipe-v1.0.0-linux_amd64"}, ""},
		{"version: source wins over a release ref", with(map[string]string{"GPIPE_ACTION_REF": "v1.2.3", "GPIPE_VERSION_INPUT": "source"}),
			map[string]string{"mode": "source"}, ""},
		{"arm64 Linux", map[string]string{"RUNNER_OS": "Linux", "RUNNER_ARCH": "ARM64", "GPIPE_ACTION_REF": "v1.2.3", "GPIPE_ACTION_REPOSITORY": "acme/gpipe"},
			map[string]string{"mode": "download", "version": "v1.2.3", "repository": "acme/gpipe",
				"asset": "gpipe_1.2.3_linux_arm64.tar.gz", "cache-key": "gpipe-v1.2.3-linux_arm64"}, ""},
		{"Apple silicon", map[string]string{"RUNNER_OS": "macOS", "RUNNER_ARCH": "ARM64", "GPIPE_ACTION_REF": "v1.2.3", "GPIPE_ACTION_REPOSITORY": "acme/gpipe"},
			map[string]string{"mode": "download", "version": "v1.2.3", "repository": "acme/gpipe",
				"asset": "gpipe_1.2.3_darwin_arm64.tar.gz", "cache-key": "gpipe-v1.2.3-darwin_arm64"}, ""},
		{"no release for Intel macs", map[string]string{"RUNNER_OS": "macOS", "RUNNER_ARCH": "X64", "GPIPE_ACTION_REF": "v1.2.3"},
			nil, "no gpipe release for darwin/amd64"},
		{"no release for Windows", map[string]string{"RUNNER_OS": "Windows", "RUNNER_ARCH": "X64", "GPIPE_ACTION_REF": "v1.2.3"},
			nil, "no gpipe release for Windows"},
		{"a version that is no release tag", with(map[string]string{"GPIPE_VERSION_INPUT": "latest; rm -rf /"}),
			nil, `version "latest; rm -rf /": want a release tag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, log, err := runInstall(t, "resolve", tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(log, tt.wantErr) || !strings.Contains(log, "::error") {
					t.Fatalf("want an ::error with %q, got err=%v, log:\n%s", tt.wantErr, err, log)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve: %v\n%s", err, log)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("outputs = %v, want %v\nlog:\n%s", got, tt.want, log)
			}
		})
	}
}

// release serves a fake release the way GitHub serves release assets
// (<base>/<tag>/<asset>), built as GoReleaser builds it: a tar.gz holding the
// binary, and checksums.txt with "<sha256>  <asset>" lines.
type release struct {
	dir  string
	base string
}

func newRelease(t *testing.T, tag string, binary string) *release {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, tag), 0o755); err != nil {
		t.Fatal(err)
	}
	var checksums []string
	for _, plat := range []string{"linux_amd64", "linux_arm64", "darwin_arm64"} {
		asset := fmt.Sprintf("gpipe_%s_%s.tar.gz", strings.TrimPrefix(tag, "v"), plat)
		data := tarGz(t, map[string]string{"gpipe": binary, "README.md": "# gpipe\n"})
		if err := os.WriteFile(filepath.Join(dir, tag, asset), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		checksums = append(checksums, hex.EncodeToString(sum[:])+"  "+asset)
	}
	sort.Strings(checksums)
	writeFile(t, filepath.Join(dir, tag, "checksums.txt"), strings.Join(checksums, "\n")+"\n")
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return &release{dir: dir, base: srv.URL}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const fakeGpipe = "#!/bin/sh\necho 'gpipe v1.2.3 (go1.26.8, linux/amd64)'\n"

func downloadEnv(rel *release, bin string) map[string]string {
	return map[string]string{
		"GPIPE_VERSION": "v1.2.3", "GPIPE_ASSET": "gpipe_1.2.3_linux_amd64.tar.gz",
		"GPIPE_REPOSITORY": "acme/gpipe", "GPIPE_RELEASE_BASE_URL": rel.base, "GPIPE_BIN_DIR": bin,
	}
}

func TestInstallDownloadVerifiesChecksum(t *testing.T) {
	testtool.Find(t, "curl", "sudo apt-get install -y curl")
	rel := newRelease(t, "v1.2.3", fakeGpipe)
	bin := filepath.Join(t.TempDir(), "bin")
	_, log, err := runInstall(t, "download", downloadEnv(rel, bin))
	if err != nil {
		t.Fatalf("download: %v\n%s", err, log)
	}
	fi, err := os.Stat(filepath.Join(bin, "gpipe"))
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable gpipe in %s (%v)", bin, err)
	}
	if !strings.Contains(log, "installed gpipe v1.2.3") || !strings.Contains(log, "verified") {
		t.Errorf("log does not show the installed version and the verified checksum:\n%s", log)
	}
}

func TestInstallDownloadRefuses(t *testing.T) {
	testtool.Find(t, "curl", "sudo apt-get install -y curl")
	tests := []struct {
		name   string
		tamper func(t *testing.T, rel *release)
		want   string
	}{
		{"an archive that does not match checksums.txt", func(t *testing.T, rel *release) {
			writeFile(t, filepath.Join(rel.dir, "v1.2.3", "gpipe_1.2.3_linux_amd64.tar.gz"),
				string(tarGz(t, map[string]string{"gpipe": "#!/bin/sh\necho evil\n"})))
		}, "SHA-256 of gpipe_1.2.3_linux_amd64.tar.gz is"},
		{"checksums.txt that does not list the archive", func(t *testing.T, rel *release) {
			writeFile(t, filepath.Join(rel.dir, "v1.2.3", "checksums.txt"), "0000  gpipe_1.2.3_linux_arm64.tar.gz\n")
		}, "checksums.txt of v1.2.3 lists no gpipe_1.2.3_linux_amd64.tar.gz"},
		{"a release without checksums.txt", func(t *testing.T, rel *release) {
			if err := os.Remove(filepath.Join(rel.dir, "v1.2.3", "checksums.txt")); err != nil {
				t.Fatal(err)
			}
		}, "checksums.txt failed"},
		{"a release without the archive", func(t *testing.T, rel *release) {
			if err := os.Remove(filepath.Join(rel.dir, "v1.2.3", "gpipe_1.2.3_linux_amd64.tar.gz")); err != nil {
				t.Fatal(err)
			}
		}, "gpipe_1.2.3_linux_amd64.tar.gz failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := newRelease(t, "v1.2.3", fakeGpipe)
			tt.tamper(t, rel)
			bin := filepath.Join(t.TempDir(), "bin")
			_, log, err := runInstall(t, "download", downloadEnv(rel, bin))
			if err == nil || !strings.Contains(log, "::error") || !strings.Contains(log, tt.want) {
				t.Fatalf("want an ::error with %q, got err=%v, log:\n%s", tt.want, err, log)
			}
			if _, err := os.Stat(filepath.Join(bin, "gpipe")); err == nil {
				t.Errorf("a refused download left %s/gpipe behind", bin)
			}
		})
	}
}

func TestInstallScriptShellcheck(t *testing.T) {
	sc := testtool.Shellcheck(t)
	if out, err := exec.Command(sc, "--severity=style", script).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck %s: %v\n%s", script, err, out)
	}
}

// goreleaserConfig is the part of .goreleaser.yaml that the installer relies on.
type goreleaserConfig struct {
	Builds []struct {
		Binary  string   `yaml:"binary"`
		Ldflags []string `yaml:"ldflags"`
		Targets []string `yaml:"targets"`
	} `yaml:"builds"`
	Archives []struct {
		Formats      []string `yaml:"formats"`
		NameTemplate string   `yaml:"name_template"`
	} `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	ProjectName string `yaml:"project_name"`
}

// TestReleaseConfigMatchesInstaller keeps the release build and the installer
// in step: every target the release builds is an asset name the installer
// asks for, the checksums are SHA-256 in checksums.txt, and the tag reaches
// the binary's version.
func TestReleaseConfigMatchesInstaller(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg goreleaserConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if len(cfg.Builds) != 1 || len(cfg.Archives) != 1 {
		t.Fatalf(".goreleaser.yaml: want one build and one archive, got %d and %d", len(cfg.Builds), len(cfg.Archives))
	}
	build, archive := cfg.Builds[0], cfg.Archives[0]
	if got, want := strings.Join(build.Targets, " "), "linux_amd64 linux_arm64 darwin_arm64"; got != want {
		t.Errorf("release targets = %s, want %s (the installer's platforms)", got, want)
	}
	if build.Binary != "gpipe" || fmt.Sprint(archive.Formats) != "[tar.gz]" {
		t.Errorf("binary %q in %v archives; the installer extracts gpipe from a tar.gz", build.Binary, archive.Formats)
	}
	if cfg.Checksum.NameTemplate != "checksums.txt" || cfg.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum %s/%s; the installer verifies SHA-256 from checksums.txt", cfg.Checksum.NameTemplate, cfg.Checksum.Algorithm)
	}
	if !strings.Contains(strings.Join(build.Ldflags, " "), "-X main.releaseVersion={{ .Tag }}") {
		t.Errorf("ldflags %q do not embed the tag as main.releaseVersion", build.Ldflags)
	}
	src, err := os.ReadFile(filepath.Join("..", "cmd", "gpipe", "version.go"))
	if err != nil || !strings.Contains(string(src), "var releaseVersion string") {
		t.Errorf("cmd/gpipe/version.go has no var releaseVersion for the ldflags to set (%v)", err)
	}
	runner := map[string][2]string{"linux_amd64": {"Linux", "X64"}, "linux_arm64": {"Linux", "ARM64"}, "darwin_arm64": {"macOS", "ARM64"}}
	for _, target := range build.Targets {
		goos, goarch, _ := strings.Cut(target, "_")
		// GoReleaser's template fields, filled as it fills them for tag v1.2.3.
		name := strings.NewReplacer("{{ .ProjectName }}", cfg.ProjectName, "{{ .Version }}", "1.2.3",
			"{{ .Os }}", goos, "{{ .Arch }}", goarch).Replace(archive.NameTemplate) + ".tar.gz"
		r, ok := runner[target]
		if !ok {
			t.Errorf("target %s: no GitHub runner platform maps to it", target)
			continue
		}
		got, log, err := runInstall(t, "resolve", map[string]string{"RUNNER_OS": r[0], "RUNNER_ARCH": r[1],
			"GPIPE_ACTION_REF": "v1.2.3", "GPIPE_ACTION_REPOSITORY": "acme/gpipe"})
		if err != nil {
			t.Fatalf("resolve on %s: %v\n%s", target, err, log)
		}
		if got["asset"] != name {
			t.Errorf("%s: the installer asks for %q, the release builds %q", target, got["asset"], name)
		}
	}
}
