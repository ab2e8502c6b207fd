package train

import (
	"strings"
	"testing"
)

// Lines as dllogger's JSONStreamBackend writes them (Model-References UNet,
// utils.log and the per-epoch logger), including Python's NaN.
const evalLog = `DLLL {"timestamp": "1689000000.123", "datetime": "2023-07-10 14:40:00.123", "elapsedtime": "0.000", "type": "METADATA", "metric": "Mean dice", "metadata": {}}
DLLL {"timestamp": "1689000042.5", "datetime": "2023-07-10 14:40:42.5", "elapsedtime": "42.4", "type": "LOG", "step": [], "data": {"Mean dice": 0.73, "L1": 0.8, "L2": 0.61, "L3": 0.78}}
`

const trainLog = `DLLL {"timestamp": "1", "datetime": "x", "elapsedtime": "0", "type": "PARAMETER", "step": "PARAMETER", "data": {"exec_mode": "train", "hpus": 8}}
some stray stdout line
DLLL {"timestamp": "2", "datetime": "x", "elapsedtime": "1", "type": "LOG", "step": 0, "data": {"mean dice": 12.5, "TOP_mean": 12.5, "L1": 20.0, "val_loss": NaN}}
DLLL {"timestamp": "3", "datetime": "x", "elapsedtime": "2", "type": "LOG", "step": 2, "data": {"mean dice": 70.25, "TOP_mean": 70.25, "L1": 75.0, "val_loss": Infinity}}
DLLL {"timestamp": "4", "datetime": "x", "elapsedtime": "3", "type": "LOG", "step": 4, "data": {"mean dice": 68.0, "TOP_mean": 70.25, "L1": 71.0, "val_loss": -Infinity}}
`

func TestEvalDice(t *testing.T) {
	recs, err := ParseDLLogger(strings.NewReader(evalLog))
	if err != nil {
		t.Fatal(err)
	}
	res, err := EvalDice(recs)
	if err != nil {
		t.Fatal(err)
	}
	if res.MeanDice != 0.73 || len(res.Labels) != 3 || res.Labels[0] != 0.8 || res.Labels[1] != 0.61 || res.Labels[2] != 0.78 {
		t.Errorf("EvalDice = %+v", res)
	}
}

func TestParseTrainLog(t *testing.T) {
	recs, err := ParseDLLogger(strings.NewReader(trainLog))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("parsed %d records, want 4 (the stray line skipped)", len(recs))
	}
	if _, ok := recs[1].Data["val_loss"]; ok {
		t.Error("NaN val_loss kept as a number")
	}
	if _, err := EvalDice(recs); err == nil {
		t.Error("a training log has no evaluation record: want an error")
	}
}

func TestParseDLLoggerErrors(t *testing.T) {
	if _, err := ParseDLLogger(strings.NewReader("DLLL {\"data\": \n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("truncated record: err %v", err)
	}
	recs, err := ParseDLLogger(strings.NewReader(""))
	if err != nil || len(recs) != 0 {
		t.Errorf("empty: %v %v", recs, err)
	}
	if _, err := EvalDice(recs); err == nil {
		t.Error("empty log: want an error")
	}
}
