package train

import (
	"fmt"
	"regexp"
	"strings"
)

// Habana publishes its containers under a directory per software release:
// vault.habana.ai/gaudi-docker/<release>/<os>/habanalabs/<name>:<tag>.
var imageReleaseRE = regexp.MustCompile(`(?:^|/)gaudi-docker/([0-9]+\.[0-9]+\.[0-9]+)/`)

// ImageRelease returns the Gaudi software release of a Habana container image
// ("1.21.0"), read from its path, and false for an image named otherwise.
func ImageRelease(image string) (string, bool) {
	m := imageReleaseRE.FindStringSubmatch(image)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// minorRelease cuts a version to its release line: "1.21.1-bfcec49" and
// "1.21.0" both give "1.21".
func minorRelease(v string) string {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// SameRelease reports whether a host driver (as hl-smi prints it,
// "1.21.1-bfcec49") can run a container of release ("1.21.0"). A container
// runs only on a driver of its own software release (Habana support matrix;
// opea-project/GenAIExamples#366 shows what happens otherwise); patch releases
// of one line (1.21.x) share the driver interface.
func SameRelease(driver, release string) bool {
	return driver != "" && minorRelease(driver) == minorRelease(release)
}

// DriverMismatchError reports a host whose Habana driver is of another release
// than the container the pipeline runs. It is permanent: no retry changes the
// driver, and the container would fail at HPU initialisation hours later.
type DriverMismatchError struct {
	Driver  string // as hl-smi prints it: 1.13.0-6e7ef62
	Release string // the container's: 1.21.0
	Image   string
}

// Permanent: the host's driver does not change between attempts.
func (e *DriverMismatchError) Permanent() bool { return true }

func (e *DriverMismatchError) Error() string {
	return fmt.Sprintf("host Habana driver %s (hl-smi) is not of release %s, the release of image %s: "+
		"a container runs only on a driver of its own release. Fix: run on a host with the %s.x driver "+
		"(provision-stack's default image, plain Ubuntu 22.04, gets it from prepare-host; or an AMI that has it), "+
		"or choose the image and model_references of release %s",
		e.Driver, e.Release, e.Image, minorRelease(e.Release), minorRelease(e.Driver))
}
