package train

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// PrepareHost makes a host able to run the pipeline's Gaudi container, and
// proves it can before anything pulls or runs that container: the host's
// Habana driver must be of the container's software release (a container of
// one release does not run on another release's driver; the failure shows
// only at HPU initialisation, hours of paid setup later).
//
// The script installs what is missing — Habana's driver and software with
// Habana's habanalabs-installer.sh of the release, docker (Ubuntu's docker.io),
// the AWS CLI, and Habana's container runtime registered with docker — so a
// plain Ubuntu 22.04 image becomes a Gaudi host. On an image that has them (a
// user's AMI, Habana's Marketplace base AMI) it installs nothing. Either way
// it reads the driver version with hl-smi; the Go side compares it with the
// image's release and fails with a permanent *DriverMismatchError naming both
// versions and the fix. A driver of another release is never replaced: that
// is the image owner's decision, not a pipeline's.
//
// Outputs: driver_version (as hl-smi prints it), release (the container's),
// installed_driver (true when this run installed it).
//
// $GPIPE_HOST_ROOT (default empty) is put in front of the files the script
// writes (/etc/apt, /etc/docker/daemon.json, /usr/share/keyrings), so tests
// run the install paths without touching the machine.
type PrepareHost struct {
	Exec Executors
}

// DefaultArtifactory is Habana's download server: the installer of release R
// is <artifactory>/gaudi-installer/R/habanalabs-installer.sh (docs.habana.ai,
// Installation Guide, "Driver and Software Installation"), the apt repository
// <artifactory>/debian with its key at <artifactory>/api/gpg/key/public
// (HabanaAI/Setup_and_Install, dockerfiles/base/Dockerfile.ubuntu22.04).
const DefaultArtifactory = "https://vault.habana.ai/artifactory"

// HostConfig is the decoded `with` of a prepare-host step.
type HostConfig struct {
	Image       string
	Release     string // the container's, "1.21.0"
	Install     bool
	Artifactory string
}

var releaseRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// DecodeHost applies defaults and checks values.
func DecodeHost(with map[string]any) (*HostConfig, error) {
	return param.Decode(TypePrepareHost, with, decodeHost)
}

func decodeHost(p *param.Reader) *HostConfig {
	c := &HostConfig{Image: p.String("image", DefaultImage)}
	fromImage, _ := ImageRelease(c.Image)
	c.Release = p.String("release", "") // default: the image's
	if c.Release == "" {
		c.Release = fromImage
	}
	c.Install = p.Bool("install", true)
	c.Artifactory = strings.TrimSuffix(p.String("artifactory", DefaultArtifactory), "/")
	switch {
	case c.Release == "":
		p.Fail("release", "required: image %q does not name its release (…/gaudi-docker/<release>/…)", c.Image)
	case !releaseRE.MatchString(c.Release):
		p.Fail("release", "%q: want a Gaudi software release such as 1.21.0", c.Release)
	case fromImage != "" && !SameRelease(c.Release, fromImage):
		p.Fail("release", "%s contradicts image %s of release %s", c.Release, c.Image, fromImage)
	}
	if !strings.HasPrefix(c.Artifactory, "https://") || strings.ContainsAny(c.Artifactory, " '\"\n") {
		p.Fail("artifactory", "%q: want an https:// URL", c.Artifactory)
	}
	return c
}

// Script renders the host preparation script.
func (s *PrepareHost) Script(sr *pipeline.StepRun) (string, error) {
	c, err := DecodeHost(sr.With)
	if err != nil {
		return "", err
	}
	return c.render(), nil
}

func (c *HostConfig) render() string {
	var b strings.Builder
	header(&b, "prepare-host: Habana driver and container runtime of release "+c.Release)
	assign(&b, "release", c.Release)
	assign(&b, "release_line", minorRelease(c.Release))
	assign(&b, "install", fmt.Sprint(c.Install))
	assign(&b, "artifactory", c.Artifactory)
	b.WriteString(prepareHostBody)
	return b.String()
}

const prepareHostBody = `runtime="${GPIPE_CONTAINER_RUNTIME:-docker}"
aws="${GPIPE_AWS_CLI:-aws}"
root="${GPIPE_HOST_ROOT:-}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
apt_ready=0
need_install() {
  if [ "$install" != true ]; then
    echo "gpipe: $1 (install is false)" >&2
    exit 1
  fi
  if [ "$apt_ready" = 0 ] && [ -d "$root/etc/apt/apt.conf.d" ]; then
    # A fresh instance's cloud-init and apt timers hold the dpkg lock for a
    # while after boot: let them finish, and make every apt-get (Habana's
    # installer's too) wait for the lock instead of failing.
    if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi
    echo 'DPkg::Lock::Timeout "600";' | as_root tee "$root/etc/apt/apt.conf.d/90gpipe-lock-timeout" >/dev/null
    apt_ready=1
  fi
}
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -q
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# The driver. Habana's procedure (docs.habana.ai, Installation Guide, "Driver
# and Software Installation"): download the release's habanalabs-installer.sh
# and run "install --type base"; -y answers its questions (no terminal here).
installed_driver=false
if ! command -v hl-smi >/dev/null 2>&1; then
  need_install "hl-smi not found: this host has no Habana driver"
  echo "gpipe: no Habana driver on this host: installing release $release"
  installer_dir=$(mktemp -d)
  wget -nv -O "$installer_dir/habanalabs-installer.sh" "$artifactory/gaudi-installer/$release/habanalabs-installer.sh"
  chmod +x "$installer_dir/habanalabs-installer.sh"
  as_root "$installer_dir/habanalabs-installer.sh" install --type base -y
  rm -rf "$installer_dir"
  installed_driver=true
fi

# hl-smi's header names the driver: "| Driver Version:   1.21.1-bfcec49   |"
# (the "Nic Driver Version" line under it is the NIC driver's).
if ! smi=$(hl-smi 2>&1); then
  echo "gpipe: hl-smi failed (is the habanalabs module loaded? a new driver may need a reboot):" >&2
  printf '%s\n' "$smi" >&2
  exit 1
fi
driver_version=$(printf '%s\n' "$smi" | awk -F: '/^\| *Driver Version:/ { gsub(/[ |]/, "", $2); print $2; exit }')
if [ -z "$driver_version" ]; then
  echo "gpipe: hl-smi printed no driver version:" >&2
  printf '%s\n' "$smi" >&2
  exit 1
fi
echo "gpipe: Habana driver $driver_version (hl-smi); the container is release $release"
{
  echo "driver_version=$driver_version"
  echo "release=$release"
  echo "installed_driver=$installed_driver"
} >>"$GPIPE_OUTPUT"
driver_release=${driver_version%%-*}
if [ "${driver_release%.*}" != "$release_line" ]; then
  # Another release's driver: gpipe fails the step with both versions and the
  # fix. Nothing else is worth doing on this host.
  exit 0
fi

# fetch-msd and the UNet steps copy from and to S3 with the AWS CLI.
if ! command -v "$aws" >/dev/null 2>&1; then
  need_install "the AWS CLI ($aws) is not installed"
  apt_install awscli
fi

if ! command -v "$runtime" >/dev/null 2>&1; then
  need_install "$runtime is not installed"
  echo "gpipe: installing docker (Ubuntu's docker.io)"
  apt_install docker.io
fi

# Every UNet step runs its container with --runtime=habana. Habana's procedure
# (docs.habana.ai, "Docker Installation"): install habanalabs-container-runtime,
# register /usr/bin/habana-container-runtime as "habana" in
# /etc/docker/daemon.json, restart docker.
if ! "$runtime" info --format '{{json .Runtimes}}' | grep -q '"habana"'; then
  need_install "docker has no habana runtime"
  if ! command -v habana-container-runtime >/dev/null 2>&1; then
    # From Habana's apt repository, configured the way Habana's own images
    # do it (HabanaAI/Setup_and_Install, dockerfiles/base).
    # shellcheck source=/dev/null
    codename=$(. "$root/etc/os-release" && echo "$VERSION_CODENAME")
    keyring=$root/usr/share/keyrings/habana-artifactory.gpg
    wget -nv -O- "$artifactory/api/gpg/key/public" | gpg --dearmor | as_root tee "$keyring" >/dev/null
    echo "deb [signed-by=$keyring] $artifactory/debian $codename main" |
      as_root tee "$root/etc/apt/sources.list.d/habana-artifactory.list" >/dev/null
    as_root apt-get update -q
    apt_updated=1
    package_version=$(apt-cache madison habanalabs-container-runtime |
      awk -v want="$release-" 'index($3, want) == 1 { print $3; exit }')
    if [ -z "$package_version" ]; then
      echo "gpipe: $artifactory/debian has no habanalabs-container-runtime of release $release" >&2
      exit 1
    fi
    apt_install "habanalabs-container-runtime=$package_version"
  fi
  as_root python3 - "$root/etc/docker/daemon.json" <<'PY'
import json, os, sys

path = sys.argv[1]
config = {}
if os.path.exists(path):
    with open(path) as f:
        config = json.load(f)
config.setdefault("runtimes", {})["habana"] = {
    "path": "/usr/bin/habana-container-runtime",
    "runtimeArgs": [],
}
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".gpipe", "w") as f:
    json.dump(config, f, indent=2)
os.replace(path + ".gpipe", path)
PY
  as_root systemctl restart docker
  if ! "$runtime" info --format '{{json .Runtimes}}' | grep -q '"habana"'; then
    echo "gpipe: docker still lists no habana runtime after the restart" >&2
    exit 1
  fi
  echo "gpipe: registered the habana runtime with docker"
fi
`

// Run prepares the host and fails with a *DriverMismatchError when its
// driver is of another release than the container.
func (s *PrepareHost) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	c, err := DecodeHost(sr.With)
	if err != nil {
		return pipeline.Result{}, err
	}
	out, err := renderAndRun(ctx, s.Exec, sr, s)
	if err != nil {
		return pipeline.Result{}, err
	}
	driver := out["driver_version"]
	if driver == "" {
		return pipeline.Result{Outputs: out}, fmt.Errorf("%s: the script reported no driver version", sr.StepID)
	}
	if !SameRelease(driver, c.Release) {
		return pipeline.Result{Outputs: out}, fmt.Errorf("%s: %w", sr.StepID,
			&DriverMismatchError{Driver: driver, Release: c.Release, Image: c.Image})
	}
	return pipeline.Result{Outputs: out}, nil
}
