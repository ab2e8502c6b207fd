package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// DefaultModelReferences is the HabanaAI/Model-References tag the UNet steps
// check out. The UNet lives in PyTorch/computer_vision/segmentation/Unet up to
// 1.22.0 (it was removed in 1.23.0), but 1.22 supports Gaudi 2 and Gaudi 3
// only: 1.21 is the last Intel Gaudi release whose support matrix lists the
// first-gen Gaudi of dl1.24xlarge, gpipe's default instance. On a Gaudi 2 host,
// set model_references 1.22.0 and its image.
const DefaultModelReferences = "1.21.0"

// DefaultImage is the Gaudi PyTorch container of the same software release as
// DefaultModelReferences (PyTorch 2.6.0 on Ubuntu 22.04, as in the 1.21.0
// support matrix). The version directory pins the release; ":latest" inside it
// only moves between builds of 1.21.0. prepare-host fails when the host's
// Habana driver is of another release, and so do the UNet scripts.
const DefaultImage = "vault.habana.ai/gaudi-docker/1.21.0/ubuntu22.04/habanalabs/pytorch-installer-2.6.0:latest"

// ModelReferencesURL is where the pinned tag is cloned from (inside the image
// build, so the host needs nothing but the container runtime).
const ModelReferencesURL = "https://github.com/HabanaAI/Model-References"

// container is the image configuration shared by preprocess, train-unet and
// evaluate.
type container struct {
	Image           string
	ModelReferences string
}

func decodeContainer(p *param.Reader) container {
	// An empty value is not given: the defaults apply (steps/internal/param).
	return container{
		Image:           p.String("image", DefaultImage),
		ModelReferences: p.String("model_references", DefaultModelReferences),
	}
}

// dockerfile builds the derived image. The pins reach it only as --build-arg
// values. PYTHONPATH extends the base image's (/root:/usr/lib/habanalabs/,
// where Habana's Python modules live) rather than replacing it.
const dockerfile = `ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG MODEL_REFERENCES_TAG
ARG MODEL_REFERENCES_URL
RUN git clone --depth 1 --branch "${MODEL_REFERENCES_TAG}" "${MODEL_REFERENCES_URL}" /Model-References
WORKDIR /Model-References/PyTorch/computer_vision/segmentation/Unet
RUN . /etc/os-release; req="requirements_u${VERSION_ID%%.*}.txt"; \
    if [ ! -f "$req" ]; then req=requirements.txt; fi; \
    python3 -m pip install --no-cache-dir -r "$req"
ENV PYTHONPATH=/Model-References:${PYTHONPATH}
`

// derivedImage names the image that adds the pinned Model-References checkout
// and its requirements to the base image. The name is derived from both pins
// and the Dockerfile, so a changed pin or recipe builds a new image instead of
// reusing a stale one.
func (c container) derivedImage() string {
	sum := sha256.Sum256([]byte(c.Image + "\x00" + c.ModelReferences + "\x00" + dockerfile))
	tag := dockerName(c.ModelReferences)
	if len(tag) > 40 {
		tag = tag[:40]
	}
	return "gpipe-unet:" + tag + "-" + hex.EncodeToString(sum[:])[:12]
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// dockerName turns s into something valid as a container name or image tag.
func dockerName(s string) string {
	s = unsafeName.ReplaceAllString(s, "-")
	s = strings.Trim(s, "-.")
	if s == "" {
		return "x"
	}
	return s
}

// containerName is unique per run and step so that a rerun of this step can
// remove a container a crashed attempt left behind without touching another
// run's containers on the same host.
func containerName(runID, stepID string) string {
	sum := sha256.Sum256([]byte(runID + "\x00" + stepID))
	id := dockerName(stepID)
	if len(id) > 40 {
		id = id[:40]
	}
	return "gpipe-" + id + "-" + hex.EncodeToString(sum[:])[:8]
}

// header starts every rendered script.
func header(b *strings.Builder, title string) {
	b.WriteString("#!/usr/bin/env bash\n")
	fmt.Fprintf(b, "# gpipe %s (rendered; every value below is a quoted literal)\n", title)
	b.WriteString("set -euo pipefail\n\n")
}

// assign writes name=<quoted value>.
func assign(b *strings.Builder, name, value string) {
	fmt.Fprintf(b, "%s=%s\n", name, lit(value))
}

// lit is host.Quote, always in quotes: a bare word such as test or 0,1 is
// correct bash but reads (to people and shellcheck) like a command or a list.
func lit(s string) string {
	q := host.Quote(s)
	if !strings.HasPrefix(q, "'") {
		q = "'" + q + "'"
	}
	return q
}

// ensureImage writes the part that builds the derived image once per host.
// The Dockerfile is constant; the pins reach it only as --build-arg values.
func ensureImage(b *strings.Builder, c container) {
	b.WriteString("runtime=\"${GPIPE_CONTAINER_RUNTIME:-docker}\"\n")
	assign(b, "base_image", c.Image)
	assign(b, "model_references", c.ModelReferences)
	assign(b, "model_references_url", ModelReferencesURL)
	assign(b, "unet_image", c.derivedImage())
	release, _ := ImageRelease(c.Image)
	assign(b, "image_release_line", minorRelease(release))
	b.WriteString(`
# The image and the host driver must be of the same Gaudi software release.
# prepare-host checks it before the image is pulled; this guards specs without
# that step (an image named without its release is not checked here).
driver_version=$(cat "${GPIPE_SYS_MODULE:-/sys/module}/habanalabs/version" 2>/dev/null || true)
driver_release=${driver_version%%-*}
if [ -n "$driver_version" ] && [ -n "$image_release_line" ] && [ "${driver_release%.*}" != "$image_release_line" ]; then
  echo "gpipe: the host's habanalabs driver $driver_version is not of release $image_release_line of image $base_image: a container runs only on a driver of its own release (run prepare-host first)" >&2
  exit 1
fi

if ! "$runtime" image inspect "$unet_image" >/dev/null 2>&1; then
  echo "gpipe: building $unet_image from $base_image with Model-References $model_references"
  build_dir=$(mktemp -d)
  cat >"$build_dir/Dockerfile" <<'DOCKERFILE'
` + dockerfile + `DOCKERFILE
  "$runtime" build --build-arg BASE_IMAGE="$base_image" \
    --build-arg MODEL_REFERENCES_TAG="$model_references" \
    --build-arg MODEL_REFERENCES_URL="$model_references_url" \
    -t "$unet_image" "$build_dir"
  rm -rf "$build_dir"
fi

`)
}

// runSpec describes one `docker run` of a UNet script.
type runSpec struct {
	Cards  []int    // HABANA_VISIBLE_MODULES; nil: all
	Mounts []string // host paths bind-mounted at the same path
	Env    [][2]string
	Cmd    []string // argv inside the container
}

// containerPrelude names the step's container. A rerun first removes a
// container of that name that a killed attempt left running (it would hold the
// cards), and an interrupted script stops its container: killing the docker
// client alone leaves the container running.
func containerPrelude(b *strings.Builder, name string) {
	assign(b, "container", name)
	b.WriteString(`stop_container() { "$runtime" rm -f "$container" >/dev/null 2>&1 || true; }
stop_container
trap 'stop_container; exit 130' INT
trap 'stop_container; exit 143' TERM

`)
}

// writeRunArgs writes the run_args array for one `docker run`.
func writeRunArgs(b *strings.Builder, r runSpec) {
	b.WriteString(`run_args=(
  run --rm --name "$container"
  --runtime=habana
  -e HABANA_VISIBLE_DEVICES=all
`)
	if len(r.Cards) > 0 {
		idx := make([]string, len(r.Cards))
		for i, c := range r.Cards {
			idx[i] = strconv.Itoa(c)
		}
		fmt.Fprintf(b, "  -e %s\n", lit("HABANA_VISIBLE_MODULES="+strings.Join(idx, ",")))
	}
	b.WriteString("  -e OMPI_MCA_btl_vader_single_copy_mechanism=none\n")
	for _, kv := range r.Env {
		fmt.Fprintf(b, "  -e %s\n", host.Quote(kv[0]+"="+kv[1]))
	}
	b.WriteString("  --cap-add=sys_nice --net=host --ipc=host\n")
	for _, m := range r.Mounts {
		fmt.Fprintf(b, "  -v %s\n", host.Quote(m+":"+m))
	}
	b.WriteString("  \"$unet_image\"\n")
	for _, a := range r.Cmd {
		fmt.Fprintf(b, "  %s\n", host.Quote(a))
	}
	b.WriteString(")\n")
}

// checkPath validates a host path that is bind-mounted into the container:
// docker's -v syntax cannot express a ':' in it.
func checkPath(p *param.Reader, key, path string) {
	switch {
	case !strings.HasPrefix(path, "/"):
		p.Fail(key, "%q: want an absolute path", path)
	case strings.ContainsAny(path, ":\n"):
		p.Fail(key, "%q: a mounted path cannot contain ':' or a newline", path)
	}
}

// checkS3 validates an optional s3:// URL.
func checkS3(p *param.Reader, key, url string) {
	if url != "" && !strings.HasPrefix(url, "s3://") {
		p.Fail(key, "%q: want an s3:// URL", url)
	}
}
