package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// The training's epoch history. Model-References' main.py (branch 1.21.0 at
// da5f246c, PyTorch/computer_vision/segmentation/Unet) logs per-epoch validation Dice
// with dllogger to <results>/logs.json, which it opens with mode "w" each
// time it starts (utils/utils.py get_dllogger → NVIDIA dllogger
// JSONStreamBackend, append=False): a resumed training starts that file
// empty. The train-unet script therefore gives every attempt a file of its
// own, logs-attempt-<n>.json (logs.json links to it), keeps the earlier ones
// (locally and in S3) and hands them all back, each after an
// "attemptMarker <n>" line; History merges them.

// attemptMarker starts each attempt's file in the script's dllogger output.
const attemptMarker = "gpipe-attempt"

// Attempt is the dllogger file of one training attempt.
type Attempt struct {
	N       int
	Records []Record
}

// ParseAttempts splits the script's dllogger output at the marker lines and
// parses each attempt's records. The last line of an attempt may be cut
// short (the attempt was killed while dllogger wrote it): it is dropped.
func ParseAttempts(r io.Reader) ([]Attempt, error) {
	var (
		atts  []Attempt
		lines []string
	)
	flush := func() error {
		if len(atts) == 0 {
			if len(strings.TrimSpace(strings.Join(lines, ""))) > 0 {
				return fmt.Errorf("dllogger output does not start with a %q line", attemptMarker)
			}
			return nil
		}
		a := &atts[len(atts)-1]
		recs, err := ParseDLLogger(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil && len(lines) > 0 {
			// Retry without the last line: a torn write is only ever there.
			recs, err = ParseDLLogger(strings.NewReader(strings.Join(lines[:len(lines)-1], "\n")))
		}
		if err != nil {
			return fmt.Errorf("attempt %d: %w", a.N, err)
		}
		a.Records = recs
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, attemptMarker+" ")
		if !ok {
			if strings.TrimSpace(line) != "" {
				lines = append(lines, line)
			}
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad attempt line %q", line)
		}
		atts = append(atts, Attempt{N: n})
		lines = lines[:0]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dllogger output: %w", err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return atts, nil
}

// EpochRecord is one validated epoch of the merged history.
type EpochRecord struct {
	Epoch   int
	Attempt int
	Data    map[string]float64
}

// History merges the attempts' per-epoch records (those whose step is an
// epoch number and that carry a "mean dice"), in attempt order. An attempt
// supersedes every earlier record from its first logged epoch on: it resumed
// from a checkpoint older than those epochs (or started afresh), so they
// belong to a line of training that no longer leads to the model.
func History(atts []Attempt) []EpochRecord {
	sorted := append([]Attempt(nil), atts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].N < sorted[j].N })
	var hist []EpochRecord
	for _, a := range sorted {
		var own []EpochRecord
		for _, r := range a.Records {
			var epoch int
			if json.Unmarshal(r.Step, &epoch) != nil || epoch < 0 {
				continue
			}
			if _, ok := lookupFold(r.Data, "mean dice"); !ok {
				continue
			}
			own = append(own, EpochRecord{Epoch: epoch, Attempt: a.N, Data: r.Data})
		}
		if len(own) == 0 {
			continue
		}
		first := own[0].Epoch
		for _, e := range own {
			first = min(first, e.Epoch)
		}
		kept := hist[:0]
		for _, e := range hist {
			if e.Epoch < first {
				kept = append(kept, e)
			}
		}
		hist = append(kept, own...)
	}
	sort.SliceStable(hist, func(i, j int) bool { return hist[i].Epoch < hist[j].Epoch })
	return hist
}

// TrainSummary is what train-unet reports of its history.
type TrainSummary struct {
	// Epochs is the number of epochs trained up to the last logged one
	// (epochs count from 0). main.py logs only every second epoch
	// (models/nn_unet.py on_validation_epoch_end: `if not
	// self.current_epoch % 2`), so a training that ended on an odd epoch
	// ran one more than this.
	Epochs       int
	BestEpoch    int
	BestMeanDice float64
	BestLabels   []float64 // L1..Ln of the best epoch
}

// Summarize finds the best epoch by mean Dice (ModelCheckpoint keeps the
// best by dice_sum, the labels' sum, so the same epoch); ok is false
// without any epoch.
func Summarize(hist []EpochRecord) (s TrainSummary, ok bool) {
	best := -1
	for i, e := range hist {
		v, _ := lookupFold(e.Data, "mean dice")
		if best < 0 || v > s.BestMeanDice {
			s.BestMeanDice, s.BestEpoch, best = v, e.Epoch, i
		}
		s.Epochs = max(s.Epochs, e.Epoch+1)
	}
	if best < 0 {
		return TrainSummary{}, false
	}
	for n := 1; ; n++ {
		v, has := hist[best].Data["L"+strconv.Itoa(n)]
		if !has {
			break
		}
		s.BestLabels = append(s.BestLabels, v)
	}
	return s, true
}
