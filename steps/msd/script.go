package msd

import (
	"fmt"
	"strings"

	"github.com/gpipe/gpipe/steps/host"
)

// render writes the script a remote host runs: the AWS CLI streams the
// archive once through tee into md5sum (via a FIFO) and GNU tar, into a
// staging directory that is renamed into place only when the MD5 matches.
// GNU tar refuses members with "..", strips leading "/", and creates symlinks
// that point outside only after everything else (as placeholders), so nothing
// can be written through them.
func (c *Config) render() string {
	var b strings.Builder
	q := func(name, v string) { fmt.Fprintf(&b, "%s=%s\n", name, quote(v)) }
	b.WriteString("#!/usr/bin/env bash\n")
	fmt.Fprintf(&b, "# gpipe fetch-msd: %s → %s/%s (every value below is a quoted literal)\n", c.Task.Name, c.Dest, c.Task.Name)
	b.WriteString("set -euo pipefail\n\n")
	q("source", c.Source())
	q("md5", c.MD5)
	q("dest", c.Dest)
	q("task", c.Task.Name)
	q("marker_json", c.markerJSON())
	b.WriteString("aws_args=(--only-show-errors")
	if c.Region != "" {
		b.WriteString(" --region " + quote(c.Region))
	}
	if c.Anonymous {
		b.WriteString(" --no-sign-request")
	}
	b.WriteString(")\n")
	b.WriteString(fetchScript)
	return b.String()
}

// quote is host.Quote, always in quotes (a bare word reads like a command).
func quote(s string) string {
	q := host.Quote(s)
	if !strings.HasPrefix(q, "'") {
		q = "'" + q + "'"
	}
	return q
}

const fetchScript = `aws="${GPIPE_AWS_CLI:-aws}"
final="$dest/$task"
stage="$dest/.gpipe-msd-$task.staging"

outputs() {
  local ds="$final/dataset.json" num_training num_test
  num_training=$(sed -n 's/.*"numTraining"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$ds" | head -n 1)
  num_test=$(sed -n 's/.*"numTest"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$ds" | head -n 1)
  {
    echo "data_dir=$final"
    echo "num_training=$num_training"
    echo "num_test=$num_test"
    echo "md5=$md5"
    echo "skipped=$1"
  } >>"$GPIPE_OUTPUT"
}

if [ -f "$final/.gpipe-msd.json" ] && grep -Eq "\"md5\": ?\"$md5\"" "$final/.gpipe-msd.json"; then
  echo "fetch-msd: $final already extracted and verified (md5 $md5)"
  outputs true
  exit 0
fi

mkdir -p "$dest"
rm -rf "$stage" "$stage.fifo" "$stage.md5"
mkdir -p "$stage"
trap 'rm -rf "$stage" "$stage.fifo" "$stage.md5"' EXIT
mkfifo "$stage.fifo"
md5sum <"$stage.fifo" >"$stage.md5" &
md5_pid=$!
echo "fetch-msd: streaming $source into md5sum and tar"
"$aws" s3 cp "${aws_args[@]}" "$source" - |
  tee "$stage.fifo" |
  {
    tar -x -C "$stage" --no-same-owner --no-same-permissions --exclude='._*'
    cat >/dev/null # the MD5 must see the bytes after the end-of-archive marker too
  }
wait "$md5_pid"
got=$(cut -d' ' -f1 <"$stage.md5")
if [ "$got" != "$md5" ]; then
  echo "fetch-msd: $source has MD5 $got, want $md5; nothing was kept" >&2
  exit 1
fi
if [ ! -f "$stage/$task/dataset.json" ]; then
  echo "fetch-msd: the archive has no $task/dataset.json" >&2
  exit 1
fi
printf '%s\n' "$marker_json" >"$stage/$task/.gpipe-msd.json"
if [ -e "$final" ]; then
  rm -rf "$final.gpipe-old"
  mv "$final" "$final.gpipe-old"
fi
mv "$stage/$task" "$final"
rm -rf "$final.gpipe-old"
echo "fetch-msd: $final verified and in place"
outputs false
`
