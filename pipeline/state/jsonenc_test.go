package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// appendJSONer is what every hand-encoded state type implements.
type appendJSONer interface {
	appendJSON([]byte) ([]byte, error)
}

// handEncoded lists the types with a hand-written encoder (see jsonenc.go):
// a new state type nested in one of them needs its own appendJSON and a line
// here, or the tests below fail on its field.
// Parts come before wholes, so that a failure names the innermost type.
var handEncoded = []appendJSONer{&Attempt{}, &Lease{}, &HostLoss{}, &Step{}, &Run{}}

// sameAsMarshal fails t unless v's hand encoding is json.Marshal's, byte for
// byte, or both fail.
func sameAsMarshal(t *testing.T, v appendJSONer, what string) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, gerr := v.appendJSON([]byte("prefix"))
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%s: json.Marshal error %v, appendJSON error %v\nvalue %#v", what, werr, gerr, v)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("%s: appendJSON dropped what dst held", what)
	}
	if got := got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Fatalf("%s: appendJSON differs from json.Marshal%s", what, diff(got, want))
	}
}

// diff shows where got and want part, around the first byte that differs.
func diff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-100)
	return fmt.Sprintf(" at byte %d:\n got ...%s\nwant ...%s", i, got[from:min(len(got), i+60)], want[from:min(len(want), i+60)])
}

// gen builds random values of the state types by reflection, so that a field
// added to a type is filled without anyone touching this test; a field of a
// kind gen does not know stops the test instead of being left zero.
type gen struct {
	t   *testing.T
	rnd *rand.Rand
	// nonZero forces every value gen makes to be non-zero (no nil, no
	// empty string, no zero time).
	nonZero bool
	// extra strings to draw from (fuzz inputs).
	extra []string
	// short leaves out huge, for tests that encode a lot.
	short bool
}

var edgeStrings = []string{
	"", "a", "shell", "s0001", `"quoted"`, `back\slash`, "<script>&amp;</script>", "line\nbreak\r\ttab",
	"\x00\x01\x1f\x7f", "\b\f", "caf\u00e9", "\u2028\u2029", "emoji \U0001F600", "\xff\xfe invalid", "\xe2\x82",
	"trunc\xe2\x82\xac\xe2", "\xed\xa0\x80 surrogate", "\uFEFF bom", "\ufffd", "日本語", "steps", `"steps":null`,
	`{"run":1}`, "null", "a/b/1", "s3://bucket/key?x=1&y=2",
}

// huge is a string far longer than any buffer's first guess.
var huge = strings.Repeat("x<\u00e9\u2028\x01", 8000)

func (g *gen) string() string {
	switch n := g.rnd.IntN(100); {
	case n == 0 && !g.short:
		return huge
	case n < 40:
		i := g.rnd.IntN(len(edgeStrings))
		if g.nonZero && edgeStrings[i] == "" {
			i++
		}
		return edgeStrings[i]
	case n < 50 && len(g.extra) > 0:
		if s := g.extra[g.rnd.IntN(len(g.extra))]; s != "" || !g.nonZero {
			return s
		}
		return "x"
	default:
		// Random bytes, mostly ASCII, some of any value: control
		// characters, HTML, broken and whole UTF-8 sequences.
		b := make([]byte, g.rnd.IntN(40)+boolInt(g.nonZero))
		for i := range b {
			switch g.rnd.IntN(8) {
			case 0:
				b[i] = byte(g.rnd.IntN(256))
			case 1:
				b[i] = "\"\\<>&\x00\n\x7f\t"[g.rnd.IntN(9)]
			default:
				b[i] = byte(' ' + g.rnd.IntN(95))
			}
		}
		if g.rnd.IntN(4) == 0 {
			b = append(b, string([]rune{rune(g.rnd.IntN(0x110000))})...)
		}
		return string(b)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (g *gen) int() int64 {
	ints := []int64{1, -1, 7, 255, 1 << 31, math.MaxInt64, math.MinInt64, 0}
	if g.rnd.IntN(2) == 0 {
		return ints[g.rnd.IntN(len(ints)-boolInt(g.nonZero))]
	}
	if n := g.rnd.Int64() >> g.rnd.IntN(64); n != 0 || !g.nonZero {
		return n
	}
	return 3
}

func (g *gen) time() time.Time {
	if !g.nonZero && g.rnd.IntN(8) == 0 {
		return time.Time{}
	}
	zones := []*time.Location{
		time.UTC, time.Local, time.FixedZone("", 0), time.FixedZone("IST", 5*3600+1800), time.FixedZone("", -8*3600),
		time.FixedZone("", 23*3600+59*60), time.FixedZone("", -(23*3600 + 59*60 + 59)), time.FixedZone("", 3600+30),
	}
	if g.rnd.IntN(50) == 0 {
		// Times RFC 3339 cannot hold: json.Marshal fails, and so must appendJSON.
		zones = append(zones, time.FixedZone("", 24*3600), time.FixedZone("", -100*3600))
	}
	year := g.rnd.IntN(10000)
	if g.rnd.IntN(50) == 0 {
		year = []int{-1, 10000, 123456, -5000}[g.rnd.IntN(4)]
	}
	nsec := []int{0, 1, 999999999, 120000000, 123456789, g.rnd.IntN(1e9)}[g.rnd.IntN(6)]
	t := time.Date(year, time.Month(1+g.rnd.IntN(12)), 1+g.rnd.IntN(31), g.rnd.IntN(24), g.rnd.IntN(60), g.rnd.IntN(60),
		nsec, zones[g.rnd.IntN(len(zones))])
	if g.rnd.IntN(10) == 0 {
		t = time.Now() // with a monotonic reading, which JSON drops
	}
	return t
}

// reflectValue is the settable value p points to.
func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// fill sets v (settable) to a random value of its type.
func (g *gen) fill(v reflect.Value) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(g.time()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(g.string())
	case reflect.Int, reflect.Int64, reflect.Int32:
		n := g.int()
		if v.OverflowInt(n) {
			n = int64(int32(n))
		}
		v.SetInt(n)
	case reflect.Pointer:
		if !g.nonZero && g.rnd.IntN(3) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		g.fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		switch n := g.rnd.IntN(6); {
		case n == 0 && !g.nonZero:
			v.SetZero()
		case n == 1 && !g.nonZero:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			s := reflect.MakeSlice(v.Type(), 1+g.rnd.IntN(4), 4)
			for i := range s.Len() {
				g.fill(s.Index(i))
			}
			v.Set(s)
		}
	case reflect.Map:
		switch n := g.rnd.IntN(6); {
		case n == 0 && !g.nonZero:
			v.SetZero()
		case n == 1 && !g.nonZero:
			v.Set(reflect.MakeMap(v.Type()))
		default:
			m := reflect.MakeMap(v.Type())
			for range 1 + g.rnd.IntN(5) {
				k := reflect.New(v.Type().Key()).Elem()
				g.fill(k)
				e := reflect.New(v.Type().Elem()).Elem()
				g.fill(e)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				g.t.Fatalf("%s.%s is unexported: teach the test and appendJSON about it", v.Type(), v.Type().Field(i).Name)
			}
			g.fill(v.Field(i))
		}
	default:
		g.t.Fatalf("no generator for a %s (%s): extend gen.fill and write its encoding in jsonenc.go", v.Kind(), v.Type())
	}
}

// Random values of every state type, with every field set or not, encode
// exactly as json.Marshal encodes them.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	for seed := range uint64(400) {
		g := &gen{t: t, rnd: rand.New(rand.NewPCG(seed, 11))}
		for _, proto := range handEncoded {
			v := reflect.New(reflect.TypeOf(proto).Elem())
			g.fill(v.Elem())
			sameAsMarshal(t, v.Interface().(appendJSONer), reflect.TypeOf(proto).Elem().Name())
		}
	}
}

// Every field of every hand-encoded type, set alone to a non-zero value,
// shows in the encoding as json.Marshal shows it: a field added to a type but
// not to its appendJSON fails here.
func TestAppendJSONCoversEveryField(t *testing.T) {
	for _, proto := range handEncoded {
		typ := reflect.TypeOf(proto).Elem()
		for i := range typ.NumField() {
			for seed := range uint64(20) {
				g := &gen{t: t, rnd: rand.New(rand.NewPCG(seed, uint64(i))), nonZero: true}
				v := reflect.New(typ)
				g.fill(v.Elem().Field(i))
				if v.Elem().Field(i).IsZero() {
					t.Fatalf("gen left %s.%s zero", typ.Name(), typ.Field(i).Name)
				}
				sameAsMarshal(t, v.Interface().(appendJSONer), typ.Name()+"."+typ.Field(i).Name)
			}
		}
	}
}

// Every byte, alone and amid others, and every rune around the ones
// json.Marshal treats apart, is written as json.Marshal writes it.
func TestAppendStringEveryByte(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal %s", s, got, want)
		}
	}
	for b := range 256 {
		check(string([]byte{byte(b)}))
		check("ab" + string([]byte{byte(b)}) + "cd")
	}
	for _, r := range []rune{0x7f, 0x80, 0x7ff, 0x800, 0x2027, 0x2028, 0x2029, 0x202a, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff} {
		check(string(r))
		check("x" + string(r) + "y")
		check(string(r)[:len(string(r))-1] + "z") // cut short
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range edgeStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal %s", s, got, want)
		}
	})
}

// FuzzAppendJSON builds random runs and steps around the fuzzer's strings.
func FuzzAppendJSON(f *testing.F) {
	f.Add(uint64(1), "s1", "<&>")
	f.Add(uint64(2), "\xff", "\u2028")
	f.Fuzz(func(t *testing.T, seed uint64, a, b string) {
		g := &gen{t: t, rnd: rand.New(rand.NewPCG(seed, 7)), extra: []string{a, b}}
		for _, proto := range handEncoded {
			v := reflect.New(reflect.TypeOf(proto).Elem())
			g.fill(v.Elem())
			sameAsMarshal(t, v.Interface().(appendJSONer), reflect.TypeOf(proto).Elem().Name())
		}
	})
}
