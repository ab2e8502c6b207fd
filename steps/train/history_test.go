package train

import (
	"slices"
	"strings"
	"testing"
)

// dlll is a per-epoch record as models/nn_unet.py logs it.
func dlll(epoch, mean, l1 string) string {
	return `DLLL {"timestamp": "1", "datetime": "x", "elapsedtime": "1", "type": "LOG", "step": ` + epoch +
		`, "data": {"mean dice": ` + mean + `, "TOP_mean": ` + mean + `, "L1": ` + l1 + `, "L2": 1.5, "val_loss": NaN}}` + "\n"
}

// TestHistoryAcrossAttempts: the first attempt logged epochs 0, 2 and 4 and
// was killed while writing epoch 6 (a torn last line); the second resumed
// from the checkpoint of epoch 3 and logged 4 and 6. The best epoch is the
// first attempt's, and its epoch 4 gives way to the second attempt's.
func TestHistoryAcrossAttempts(t *testing.T) {
	out := "gpipe-attempt 1\n" + dlll("0", "41.2", "50") + dlll("2", "70.25", "75") + dlll("4", "60", "61") +
		`DLLL {"timestamp": "1", "type": "LOG", "step": 6, "da` + "\n" +
		"gpipe-attempt 2\n" + dlll("4", "55", "56") + dlll("6", "68", "69")
	atts, err := ParseAttempts(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 2 || atts[0].N != 1 || len(atts[0].Records) != 3 || atts[1].N != 2 || len(atts[1].Records) != 2 {
		t.Fatalf("attempts %+v", atts)
	}
	hist := History(atts)
	var got []string
	for _, e := range hist {
		got = append(got, string(rune('0'+e.Epoch))+"@"+string(rune('0'+e.Attempt)))
	}
	if want := []string{"0@1", "2@1", "4@2", "6@2"}; !slices.Equal(got, want) {
		t.Errorf("history (epoch@attempt) %q, want %q", got, want)
	}
	sum, ok := Summarize(hist)
	if !ok || sum.Epochs != 7 || sum.BestEpoch != 2 || sum.BestMeanDice != 70.25 || !slices.Equal(sum.BestLabels, []float64{75, 1.5}) {
		t.Errorf("Summarize = %+v, %v; want 7 epochs, best 70.25 at epoch 2 with L1 75, L2 1.5", sum, ok)
	}

	// A third attempt that started afresh (no checkpoint) logs epoch 0
	// again: the history is its own.
	atts = append(atts, Attempt{N: 3, Records: mustParse(t, dlll("0", "30", "31"))})
	if sum, ok := Summarize(History(atts)); !ok || sum.Epochs != 1 || sum.BestMeanDice != 30 {
		t.Errorf("after a fresh start: %+v, %v; want only its epoch 0", sum, ok)
	}
	// Attempts that logged nothing (an early failure) change nothing.
	atts = append(atts, Attempt{N: 4})
	if sum, _ := Summarize(History(atts)); sum.Epochs != 1 {
		t.Errorf("an empty attempt changed the history: %+v", sum)
	}
}

func mustParse(t *testing.T, s string) []Record {
	t.Helper()
	recs, err := ParseDLLogger(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestParseAttemptsErrors(t *testing.T) {
	for name, out := range map[string]string{
		"records before any attempt": dlll("0", "1", "1"),
		"bad attempt number":         "gpipe-attempt x\n",
		"broken line mid-file":       "gpipe-attempt 1\nDLLL {\"step\": \n" + dlll("2", "1", "1"),
	} {
		if _, err := ParseAttempts(strings.NewReader(out)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if atts, err := ParseAttempts(strings.NewReader("")); err != nil || len(atts) != 0 {
		t.Errorf("empty output: %v, %v", atts, err)
	}
	if _, ok := Summarize(nil); ok {
		t.Error("Summarize of no epochs: ok")
	}
}
