#!/usr/bin/env bash
# Runs every gpipe test on a fresh machine: installs the tools the tests need
# (shellcheck, versitygw, actionlint, the Mermaid parser for node) when they are missing, then
# runs the whole suite with the race detector. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"

gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"

if ! command -v shellcheck >/dev/null 2>&1; then
  echo "test.sh: installing shellcheck (Debian package)" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq shellcheck >/dev/null; fi
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
