package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Record is one line of a dllogger JSON stream ("DLLL {json}"), as written by
// Model-References' UNet to <results>/logs.json (per epoch) and to the
// evaluate --logname file.
type Record struct {
	Type string          // LOG, METADATA, ...
	Step json.RawMessage // "PARAMETER", [], or an epoch number
	Data map[string]float64
}

// Python's json.dumps writes NaN and Infinity, which are not JSON.
var nonJSONNumber = regexp.MustCompile(`(:\s*)(-?Infinity|NaN)\b`)

// ParseDLLogger reads DLLL lines; other lines (a log that mixes stdout in)
// are skipped. Non-numeric data values are dropped.
func ParseDLLogger(r io.Reader) ([]Record, error) {
	var recs []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		body, ok := strings.CutPrefix(line, "DLLL ")
		if !ok {
			continue
		}
		body = nonJSONNumber.ReplaceAllString(body, "${1}null")
		var raw struct {
			Type string                     `json:"type"`
			Step json.RawMessage            `json:"step"`
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			return nil, fmt.Errorf("dllogger line %d: %w", n, err)
		}
		rec := Record{Type: raw.Type, Step: raw.Step, Data: map[string]float64{}}
		for k, v := range raw.Data {
			var f float64
			if json.Unmarshal(v, &f) == nil && string(v) != "null" {
				rec.Data[k] = f
			}
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dllogger: %w", err)
	}
	return recs, nil
}

// EvalResult is what evaluate reports: the mean Dice over labels and each
// label's Dice (L1 is label 1; background is not scored).
type EvalResult struct {
	MeanDice float64
	Labels   []float64
}

// EvalDice finds the last record with "Mean dice" (main.py --exec_mode
// evaluate writes {"Mean dice": m, "L1": .., "L2": ..}).
func EvalDice(recs []Record) (EvalResult, error) {
	for i := len(recs) - 1; i >= 0; i-- {
		// Exactly this key: the per-epoch training records say "mean dice".
		mean, ok := recs[i].Data["Mean dice"]
		if !ok {
			continue
		}
		res := EvalResult{MeanDice: mean}
		labels := map[int]float64{}
		for k, v := range recs[i].Data {
			if len(k) > 1 && k[0] == 'L' {
				if n, err := strconv.Atoi(k[1:]); err == nil && n >= 1 {
					labels[n] = v
				}
			}
		}
		for n := 1; ; n++ {
			v, ok := labels[n]
			if !ok {
				break
			}
			res.Labels = append(res.Labels, v)
		}
		return res, nil
	}
	return EvalResult{}, fmt.Errorf("no \"Mean dice\" record in %d dllogger records", len(recs))
}

func lookupFold(m map[string]float64, key string) (float64, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.EqualFold(k, key) {
			return m[k], true
		}
	}
	return 0, false
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
