#!/usr/bin/env bash
# Runs every gpipe test on a fresh machine: installs the tools the tests need
# (shellcheck, zsh, fish, versitygw, actionlint, the Mermaid parser for node) when they are missing, then
# runs the whole suite with the race detector. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"

gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

# Tests run shellcheck on rendered scripts, and zsh and fish on the completion scripts.
missing=()
for tool in shellcheck zsh fish; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} (Debian packages)" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq "${missing[@]}" >/dev/null; fi
fi
if ! command -v versitygw >/dev/null 2>&1; then
  echo "test.sh: installing versitygw v1.8.0 (S3 server for the store tests)" >&2
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
if ! command -v actionlint >/dev/null 2>&1; then
  echo "test.sh: installing actionlint v1.7.12 (GitHub Actions workflow linter)" >&2
  go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
fi
mermaid_check=pipeline/report/testdata/mermaid-check
if [ -f "$mermaid_check/package.json" ] && [ ! -d "$mermaid_check/node_modules" ]; then
  echo "test.sh: installing the Mermaid parser for node" >&2
  npm ci --prefix "$mermaid_check" --no-audit --no-fund >/dev/null
fi

go test -race -timeout 30m "$@" ./...
