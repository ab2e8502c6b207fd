package shell

import (
	"os/exec"
	"testing"
)

func TestQuoteRoundTripsThroughBash(t *testing.T) {
	cases := []string{"", "plain", "/data/x.tar", "a b", "it's", `$(rm -rf /)`, "`id`", "a\nb", `"; echo pwned #`, "tab\there", "ünï", "-n"}
	for _, in := range cases {
		out, err := exec.Command("bash", "-c", "printf %s "+Quote(in)).Output()
		if err != nil {
			t.Fatalf("bash for %q: %v", in, err)
		}
		if string(out) != in {
			t.Errorf("Quote(%q) = %s, bash printed %q", in, Quote(in), out)
		}
	}
}
