#!/usr/bin/env bash
# gpipe prepare-host: Habana driver and container runtime of release 1.21.0 (rendered; every value below is a quoted literal)
set -euo pipefail

release='1.21.0'
release_line='1.21'
install='true'
artifactory='https://vault.habana.ai/artifactory'
runtime="${GPIPE_CONTAINER_RUNTIME:-docker}"
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
