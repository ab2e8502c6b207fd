package secret

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/pipeline/spec"
)

func TestMaskerString(t *testing.T) {
	m := NewMasker("hunter2", "", "hunter2-long", `q"uote`, "-----BEGIN KEY-----\nAAAABBBB\nx\n-----END KEY-----")
	for in, want := range map[string]string{
		"pw=hunter2.":                    "pw=***.",
		"pw=hunter2-long":                "pw=***", // the longer value wins
		`{"v":"q\"uote"}`:                `{"v":"***"}`,
		"line AAAABBBB here":             "line *** here", // a line of a multi-line value
		"x marks":                        "x marks",       // too short a line to mask alone
		"-----BEGIN KEY-----":            "***",
		"nothing secret":                 "nothing secret",
		"hunter2hunter2":                 "******",
		"two: hunter2 and q\"uote, done": "two: *** and ***, done",
	} {
		if got := m.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	if !NewMasker().Empty() || !NewMasker("").Empty() || (*Masker)(nil).String("a") != "a" {
		t.Error("a masker without values masks something")
	}
}

func TestMaskerErrorKeepsChain(t *testing.T) {
	m := NewMasker("TopSecretPin")
	err := m.Error(&fs.PathError{Op: "open", Path: "/x/TopSecretPin", Err: fs.ErrNotExist})
	if strings.Contains(err.Error(), "TopSecretPin") || !strings.Contains(err.Error(), "***") {
		t.Errorf("masked error %q", err)
	}
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
		t.Error("masking broke errors.Is/As")
	}
	plain := errors.New("nothing here")
	if m.Error(plain) != plain || m.Error(nil) != nil {
		t.Error("an error without the secret was replaced")
	}
}

// TestWriterSplitWrites: a value that arrives in pieces, in any split, is
// masked; text is released at line ends, held lines at Close.
func TestWriterSplitWrites(t *testing.T) {
	m := NewMasker("TopSecretTok")
	text := "start\nthe token is TopSecretTok, again TopSecretTok\rprogress TopSecretTok\nend TopSecretTok"
	want := strings.ReplaceAll(text, "TopSecretTok", "***")
	for cut1 := 0; cut1 <= len(text); cut1 += 3 {
		for cut2 := cut1; cut2 <= len(text); cut2 += 5 {
			var b strings.Builder
			w := NewWriter(m, &b)
			for _, part := range []string{text[:cut1], text[cut1:cut2], text[cut2:]} {
				if _, err := w.Write([]byte(part)); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(b.String(), "Top") {
					t.Fatalf("a piece of the secret was released: %q", b.String())
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if b.String() != want {
				t.Fatalf("cuts %d,%d: got %q, want %q", cut1, cut2, b.String(), want)
			}
		}
	}
}

// TestWriterLongLine: a line that never ends is released past maxHold, but
// never a prefix of the secret that the next write could complete.
func TestWriterLongLine(t *testing.T) {
	m := NewMasker("TopSecretTok")
	var b strings.Builder
	w := NewWriter(m, &b)
	filler := strings.Repeat("=", maxHold)
	w.Write([]byte(filler + "TopSec"))
	if b.Len() == 0 {
		t.Fatal("nothing released from a line longer than maxHold")
	}
	if strings.Contains(b.String(), "Top") {
		t.Fatalf("released the start of a secret: ...%q", b.String()[max(0, b.Len()-20):])
	}
	w.Write([]byte("retTok and more"))
	w.Close()
	if got, want := b.String(), filler+"*** and more"; got != want {
		t.Fatalf("got ...%q, want ...%q", got[len(got)-20:], want[len(want)-20:])
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"token": "GPIPE_SECRET_TOKEN", "results-token": "GPIPE_SECRET_RESULTS_TOKEN", "a.b_c9": "GPIPE_SECRET_A_B_C9"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

type fakeResolver map[string]string

func (f fakeResolver) Resolve(_ context.Context, ref string) (string, error) {
	if v, ok := f[ref]; ok {
		return v, nil
	}
	return "", errors.New("no such reference")
}

// TestGatherPrecedence: -p beats the environment beats from:; params that
// are not secret are never looked up; a reference that cannot be read is an
// error naming the param and the reference.
func TestGatherPrecedence(t *testing.T) {
	s := &spec.Spec{Params: []spec.Param{
		{Name: "a", Secret: true, From: "ssm:/a"},
		{Name: "b", Secret: true, From: "ssm:/b"},
		{Name: "c", Secret: true, From: "ssm:/c"},
		{Name: "d", Secret: true},
		{Name: "plain"},
	}}
	env := map[string]string{"GPIPE_SECRET_A": "env-a", "GPIPE_SECRET_B": "env-b", "GPIPE_SECRET_PLAIN": "env-plain"}
	r := fakeResolver{"ssm:/a": "ref-a", "ssm:/b": "ref-b", "ssm:/c": "ref-c"}
	got, err := Gather(t.Context(), s, map[string]string{"a": "flag-a"}, func(k string) string { return env[k] }, r)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "flag-a", "b": "env-b", "c": "ref-c"}
	if len(got) != len(want) {
		t.Errorf("Gather = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Gather[%s] = %q, want %q", k, got[k], v)
		}
	}
	delete(r, "ssm:/c")
	_, err = Gather(t.Context(), s, nil, func(string) string { return "" }, r)
	var re *ResolveError
	if !errors.As(err, &re) || re.Param != "c" || re.Ref != "ssm:/c" {
		t.Errorf("got %v", err)
	}
}

func TestPublic(t *testing.T) {
	s := &spec.Spec{Params: []spec.Param{{Name: "token", Secret: true}, {Name: "rows"}}}
	got := Public(s, map[string]string{"token": "x", "rows": "3"})
	if len(got) != 1 || got["rows"] != "3" {
		t.Errorf("Public = %v", got)
	}
}
