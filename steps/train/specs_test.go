package train

import (
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/msd"
)

// TestExampleSpecsLoad checks that the unet-brain specs validate and expand
// to the steps and cards this package expects.
func TestExampleSpecsLoad(t *testing.T) {
	for file, wantTrain := range map[string]int{"../../specs/unet-brain.yaml": 1, "../../specs/unet-brain-5fold.yaml": 5} {
		s, err := spec.NewLoader(spec.Options{
			HostSchemes:    []spec.Scheme{aws.HostScheme()},
			SecretSources:  aws.SecretSources(),
			PatternPhrases: []spec.PatternPhrase{msd.PatternPhrase()},
		}).Load(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if _, err := spec.ResolveParams(s, map[string]string{"results_bucket": "my-results"}); err != nil {
			t.Errorf("%s: params: %v", file, err)
		}
		cards := 0
		for i := range s.Steps {
			st := &s.Steps[i]
			if st.Type != TypeTrainUNet {
				continue
			}
			inst, err := spec.Expand(st)
			if err != nil {
				t.Fatal(err)
			}
			if len(inst) != wantTrain {
				t.Errorf("%s: %d training copies, want %d", file, len(inst), wantTrain)
			}
			cards = len(inst) * (&TrainUNet{}).Cards(st.With)
			if len(st.Retry.On) == 0 || st.Retry.On[0] != "synStatus" {
				t.Errorf("%s: train retry.on = %v", file, st.Retry.On)
			}
		}
		if cards < 1 || cards > 8 {
			t.Errorf("%s: training demands %d cards of 8", file, cards)
		}
	}
}
