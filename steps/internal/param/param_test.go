package param

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

type permanent interface{ Permanent() bool }

// isPermanent is pipeline.IsPermanent (this package does not import the
// engine's).
func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) && p.Permanent()
}

// Values after expression evaluation are strings; YAML gives ints, floats
// and bools. Every getter takes both, and an absent, null or empty value
// gets the default.
func TestCoercion(t *testing.T) {
	r := New("t", map[string]any{
		"i": "7", "f": 3.0, "u": uint64(5), "n": "0.25", "b": "false", "d": "1h30m", "s": 12,
		"names": "a, b ,,c", "list": []any{"x", ""}, "m": map[string]any{"k": 1, "z": true, "a": nil},
		"empty": "", "null": nil, "price": "5.50",
	})
	if got := r.Int("i", 0, 0, 10); got != 7 {
		t.Errorf("Int(\"7\") = %d", got)
	}
	if got := r.Int("f", 0, 0, 10); got != 3 {
		t.Errorf("Int(3.0) = %d", got)
	}
	if got := r.Int("u", 0, 0, 10); got != 5 {
		t.Errorf("Int(uint64 5) = %d", got)
	}
	if got := r.Number("n", 0, 0, 1); got != 0.25 {
		t.Errorf("Number(\"0.25\") = %v", got)
	}
	if got := r.Bool("b", true); got {
		t.Error(`Bool("false") = true`)
	}
	if got := r.Duration("d", 0); got != 90*time.Minute {
		t.Errorf("Duration = %v", got)
	}
	if got := r.String("s", ""); got != "12" {
		t.Errorf("String(12) = %q", got)
	}
	if got := r.Names("names"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Names = %q", got)
	}
	if got := r.Strings("list", nil); !slices.Equal(got, []string{"x", ""}) {
		t.Errorf("Strings = %q", got)
	}
	if m, keys := r.StringMap("m"); !slices.Equal(keys, []string{"a", "k", "z"}) || m["k"] != "1" || m["z"] != "true" || m["a"] != "" {
		t.Errorf("StringMap = %v %q", m, keys)
	}
	if got := r.Int("empty", 4, 0, 10); got != 4 {
		t.Errorf("Int(\"\") = %d, want the default", got)
	}
	if got := r.String("null", "def"); got != "def" {
		t.Errorf("String(nil) = %q, want the default", got)
	}
	if f, text := r.Positive("price"); f != 5.5 || text != "5.50" {
		t.Errorf("Positive = %v %q, want 5.5 as written", f, text)
	}
	if got := r.Int("absent", 9, 0, 10); got != 9 {
		t.Errorf("absent = %d", got)
	}
	if r.Has("empty") || r.Has("null") || r.Has("absent") || !r.Has("i") {
		t.Error("Has counts an empty or null value as given")
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// Every mistake is reported at once, each as `<type>: with.<key>: ...`,
// permanent even when wrapped; unknown keys come last, sorted, once.
func TestErrors(t *testing.T) {
	r := New("train-unet", map[string]any{
		"hpus": 9, "fold": "x", "min_dice": 1.5, "precision": "fp8", "move": []any{"a", 3},
		"zones": []any{"a", "a"}, "life": "-5m", "wait": "soon", "colour": "red", "b": "maybe", "price": "0",
		"alpha": 1,
	})
	r.Int("hpus", 1, 1, 8)
	r.Int("fold", 0, 0, 4)
	r.Number("min_dice", 0, 0, 1)
	r.OneOf("precision", "bf16", "bf16", "fp32")
	r.Strings("move", nil)
	r.Names("zones")
	r.Duration("life", time.Hour)
	r.Duration("wait", time.Hour)
	r.Bool("b", true)
	r.Positive("price")
	r.Required("task")
	err := r.Err()
	want := []string{
		"train-unet: with.hpus: 9 is outside 1..8",
		`train-unet: with.fold: want an integer, got "x"`,
		"train-unet: with.min_dice: 1.5 is outside 0..1",
		`train-unet: with.precision: "fp8" is not one of bf16, fp32`,
		"train-unet: with.move[1]: want a string, got int",
		`train-unet: with.zones: "a" is listed twice`,
		"train-unet: with.life: -5m0s is negative",
		`train-unet: with.wait: "soon": want a duration such as 90s, 30m or 1h30m`,
		"train-unet: with.b: want true or false, got maybe",
		"train-unet: with.price: 0: want a number above 0",
		"train-unet: with.task: required",
		"train-unet: with.alpha: unknown parameter",
		"train-unet: with.colour: unknown parameter",
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if !isPermanent(fmt.Errorf("step train: %w", err)) {
		t.Error("a wrapped param error is not permanent")
	}
	if again := r.Err(); again.Error() != err.Error() {
		t.Errorf("a second Err reports again:\n%v", again)
	}
}

// Decls is what the schema test compares: kinds, defaults in the schema's
// form, bounds, values, required.
func TestDecls(t *testing.T) {
	decls, err := Describe("x", map[string]any{}, func(r *Reader) int {
		r.Int("n", 2, 1, 8)
		r.Duration("life", 24*time.Hour)
		r.OneOf("m", "", "on-demand")
		r.Strings("move", []string{"/a"})
		r.Positive("p")
		r.Required("task")
		r.Int("n", 2, 1, 8) // read twice, declared once
		return 0
	})
	if err == nil || !strings.Contains(err.Error(), "x: with.task: required") {
		t.Errorf("err = %v", err)
	}
	byKey := map[string]Decl{}
	var keys []string
	for _, d := range decls {
		byKey[d.Key] = d
		keys = append(keys, d.Key)
	}
	if !slices.Equal(keys, []string{"n", "life", "m", "move", "p", "task"}) {
		t.Errorf("keys %q", keys)
	}
	if d := byKey["n"]; d.Kind != Integer || d.Default != 2 || *d.Min != 1 || *d.Max != 8 {
		t.Errorf("n: %+v", d)
	}
	if d := byKey["life"]; d.Kind != Duration || d.Default != 24*time.Hour {
		t.Errorf("life: %+v", d)
	}
	if d := byKey["m"]; d.Default != nil || !slices.Equal(d.Enum, []string{"on-demand"}) {
		t.Errorf("m: %+v", d)
	}
	if d := byKey["p"]; d.Default != nil || !d.ExclusiveMin || *d.Min != 0 {
		t.Errorf("p: %+v", d)
	}
	if d := byKey["task"]; !d.Required || d.Default != nil {
		t.Errorf("task: %+v", d)
	}
}

// A required value of the wrong type is one mistake, not two; a blank one
// is missing.
func TestRequired(t *testing.T) {
	_, err := Decode("shell", map[string]any{"run": []any{"x"}}, func(r *Reader) string { return r.Required("run") })
	if err == nil || err.Error() != "shell: with.run: want a string, got []interface {}" {
		t.Errorf("err = %v", err)
	}
	_, err = Decode("shell", map[string]any{"run": "  \n"}, func(r *Reader) string { return r.Required("run") })
	if err == nil || err.Error() != "shell: with.run: required" {
		t.Errorf("err = %v", err)
	}
}
