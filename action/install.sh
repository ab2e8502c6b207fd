#!/usr/bin/env bash
# Installs gpipe for action.yml: resolves which gpipe to use, then downloads the
# release archive, checks its SHA-256 against the release's checksums.txt and
# installs the binary. Building from source is action.yml's other path.
#
#   install.sh resolve    writes mode=download|source, version, asset and
#                         cache-key to $GITHUB_OUTPUT
#   install.sh download   downloads and verifies $GPIPE_ASSET of
#                         $GPIPE_VERSION into $GPIPE_BIN_DIR
#
# Environment:
#   GPIPE_VERSION_INPUT      the action's version input: vX.Y.Z, "source", or
#                            empty (use the action's own ref when it is a
#                            release tag, else build from source)
#   GPIPE_ACTION_REF         github.action_ref (empty inside some composite
#                            runs: actions/runner#2473); GPIPE_ACTION_PATH's
#                            last element is the fallback
#   GPIPE_ACTION_REPOSITORY  github.action_repository (same fallback)
#   GPIPE_RELEASE_BASE_URL   where releases live; default
#                            https://github.com/<repository>/releases/download
#   GPIPE_BIN_DIR            where download puts the binary
#   RUNNER_OS, RUNNER_ARCH   the runner's platform (uname when unset)
set -euo pipefail

fail() {
  echo "::error title=gpipe install::$*"
  exit 1
}

# A release tag as GoReleaser names it: v1.2.3, optionally with a pre-release
# or build suffix (v1.2.3-rc.1).
is_release() { [[ "$1" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]]; }

# platform sets plat (not echoed: a failure inside $(...) would swallow the
# ::error line).
platform() {
  local os arch
  os="${RUNNER_OS:-$(uname -s)}"
  arch="${RUNNER_ARCH:-$(uname -m)}"
  case "$os" in
    Linux | linux) os=linux ;;
    macOS | Darwin | darwin) os=darwin ;;
    *) fail "no gpipe release for $os; set version: source to build from source" ;;
  esac
  case "$arch" in
    X64 | x86_64 | amd64) arch=amd64 ;;
    ARM64 | aarch64 | arm64) arch=arm64 ;;
    *) fail "no gpipe release for $arch; set version: source to build from source" ;;
  esac
  if [ "$os/$arch" = darwin/amd64 ]; then
    fail "no gpipe release for darwin/amd64 (releases: linux/amd64, linux/arm64, darwin/arm64); set version: source"
  fi
  plat="${os}_${arch}"
}

# The action's location under the runner's _actions folder ends in
# <owner>/<repo>/<ref>.
ref_from_path() { basename "${GPIPE_ACTION_PATH:-}"; }
repo_from_path() {
  local p="${GPIPE_ACTION_PATH:-}"
  echo "$(basename "$(dirname "$(dirname "$p")")")/$(basename "$(dirname "$p")")"
}

resolve() {
  local version="${GPIPE_VERSION_INPUT:-}" ref="${GPIPE_ACTION_REF:-}" repo="${GPIPE_ACTION_REPOSITORY:-}"
  [ -n "$ref" ] || ref="$(ref_from_path)"
  [ -n "$repo" ] || repo="$(repo_from_path)"
  if [ -z "$version" ]; then
    if is_release "$ref"; then version="$ref"; else version=source; fi
  fi
  local out="${GITHUB_OUTPUT:-/dev/stdout}"
  if [ "$version" = source ]; then
    echo "gpipe: building from source (action ref ${ref:-unknown} is not a release tag)"
    echo "mode=source" >>"$out"
    return
  fi
  is_release "$version" || fail "version \"$version\": want a release tag such as v1.2.3, or source"
  local asset
  platform
  asset="gpipe_${version#v}_${plat}.tar.gz"
  echo "gpipe: installing release $version ($asset) from $repo"
  {
    echo "mode=download"
    echo "version=$version"
    echo "repository=$repo"
    echo "asset=$asset"
    echo "cache-key=gpipe-$version-$plat"
  } >>"$out"
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

download() {
  local version="${GPIPE_VERSION:?}" asset="${GPIPE_ASSET:?}" bin="${GPIPE_BIN_DIR:?}"
  local base="${GPIPE_RELEASE_BASE_URL:-https://github.com/${GPIPE_REPOSITORY:?}/releases/download}"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  local fetch=(curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 300)
  "${fetch[@]}" -o "$tmp/checksums.txt" "$base/$version/checksums.txt" ||
    fail "download $base/$version/checksums.txt failed"
  "${fetch[@]}" -o "$tmp/$asset" "$base/$version/$asset" ||
    fail "download $base/$version/$asset failed"
  local want got
  want="$(awk -v a="$asset" '$2 == a || $2 == "*" a { print $1 }' "$tmp/checksums.txt")"
  [ -n "$want" ] || fail "checksums.txt of $version lists no $asset"
  got="$(sha256 "$tmp/$asset")"
  [ "$want" = "$got" ] || fail "SHA-256 of $asset is $got, checksums.txt says $want: refusing to install it"
  tar -xzf "$tmp/$asset" -C "$tmp" gpipe || fail "$asset holds no gpipe binary"
  mkdir -p "$bin"
  install -m 0755 "$tmp/gpipe" "$bin/gpipe"
  echo "gpipe: installed $("$bin/gpipe" version) (SHA-256 $got verified)"
}

case "${1:-}" in
  resolve) resolve ;;
  download) download ;;
  *) echo "usage: install.sh resolve|download" >&2; exit 2 ;;
esac
