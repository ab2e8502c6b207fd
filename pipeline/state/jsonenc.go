package state

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Hand-written JSON encoders for the state types. The Journal encodes a step
// and the run's own fields on every save; encoding/json's reflection and
// allocations were most of that cost. Each appendJSON produces exactly the
// bytes json.Marshal produces for the same value (field order, omitempty,
// escaping, key order, null for nil). TestAppendJSONMatchesMarshal fills
// every field of every type with random values by reflection and
// TestAppendJSONCoversEveryField sets each field alone, so a field added to
// a type but not here fails them. Decoding stays encoding/json.

// appendJSON appends r's encoding, as json.Marshal(r) would.
func (r *Run) appendJSON(dst []byte) ([]byte, error) {
	return r.appendJSONWith(dst, nil)
}

// appendJSONWith appends r's encoding with steps, when not nil, writing the
// value of the "steps" field in place of r.Steps.
func (r *Run) appendJSONWith(dst []byte, steps func([]byte) ([]byte, error)) ([]byte, error) {
	var err error
	dst = append(dst, `{"schema_version":`...)
	dst = strconv.AppendInt(dst, int64(r.SchemaVersion), 10)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"pipeline":`...)
	dst = appendString(dst, r.Pipeline)
	dst = append(dst, `,"spec_file":`...)
	dst = appendString(dst, r.SpecFile)
	dst = append(dst, `,"spec_digest":`...)
	dst = appendString(dst, r.SpecDigest)
	if len(r.Params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = appendStringMap(dst, r.Params)
	}
	if len(r.SecretParams) > 0 {
		dst = append(dst, `,"secret_params":`...)
		dst = appendStrings(dst, r.SecretParams)
	}
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, string(r.Status))
	dst = append(dst, `,"created":`...)
	if dst, err = appendTime(dst, r.Created); err != nil {
		return nil, err
	}
	dst = append(dst, `,"updated":`...)
	if dst, err = appendTime(dst, r.Updated); err != nil {
		return nil, err
	}
	if r.Lease != nil {
		dst = append(dst, `,"lease":`...)
		if dst, err = r.Lease.appendJSON(dst); err != nil {
			return nil, err
		}
	}
	if len(r.Runners) > 0 {
		dst = append(dst, `,"runners":`...)
		dst = appendStrings(dst, r.Runners)
	}
	dst = append(dst, `,"steps":`...)
	switch {
	case steps != nil:
		if dst, err = steps(dst); err != nil {
			return nil, err
		}
	case r.Steps == nil:
		dst = append(dst, "null"...)
	default:
		ids := make([]string, 0, len(r.Steps))
		for id := range r.Steps {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		dst = append(dst, '{')
		for i, id := range ids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
			dst = append(dst, ':')
			if dst, err = r.Steps[id].appendJSON(dst); err != nil {
				return nil, err
			}
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"order":`...)
	if r.Order == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendStrings(dst, r.Order)
	}
	if len(r.HostLosses) > 0 {
		if dst, err = appendArray(append(dst, `,"host_losses":`...), r.HostLosses, (*HostLoss).appendJSON); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendArray appends xs as a JSON array, each element by enc.
func appendArray[T any](dst []byte, xs []T, enc func(*T, []byte) ([]byte, error)) ([]byte, error) {
	dst = append(dst, '[')
	for i := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = enc(&xs[i], dst); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// appendJSON appends s's encoding, as json.Marshal(s) would; null for nil.
func (s *Step) appendJSON(dst []byte) ([]byte, error) {
	if s == nil {
		return append(dst, "null"...), nil
	}
	var err error
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, s.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, s.Type)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, string(s.Status))
	dst = append(dst, `,"def_digest":`...)
	dst = appendString(dst, s.DefDigest)
	if len(s.Needs) > 0 {
		dst = append(dst, `,"needs":`...)
		dst = appendStrings(dst, s.Needs)
	}
	if len(s.Attempts) > 0 {
		if dst, err = appendArray(append(dst, `,"attempts":`...), s.Attempts, (*Attempt).appendJSON); err != nil {
			return nil, err
		}
	}
	if len(s.Outputs) > 0 {
		dst = append(dst, `,"outputs":`...)
		dst = appendStringMap(dst, s.Outputs)
	}
	if len(s.Resume) > 0 {
		dst = append(dst, `,"resume":`...)
		dst = appendStringMap(dst, s.Resume)
	}
	if s.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, s.Reason)
	}
	if s.Released != nil {
		dst = append(dst, `,"released":`...)
		if dst, err = appendTime(dst, *s.Released); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSON appends a's encoding, as json.Marshal(a) would.
func (a *Attempt) appendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = append(dst, `{"n":`...)
	dst = strconv.AppendInt(dst, int64(a.N), 10)
	dst = append(dst, `,"start":`...)
	if dst, err = appendTime(dst, a.Start); err != nil {
		return nil, err
	}
	if a.End != nil {
		dst = append(dst, `,"end":`...)
		if dst, err = appendTime(dst, *a.End); err != nil {
			return nil, err
		}
	}
	if a.ExitCode != nil {
		dst = append(dst, `,"exit_code":`...)
		dst = strconv.AppendInt(dst, int64(*a.ExitCode), 10)
	}
	if a.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, a.Error)
	}
	dst = append(dst, `,"log":`...)
	dst = appendString(dst, a.Log)
	if a.Token != "" {
		dst = append(dst, `,"token":`...)
		dst = appendString(dst, a.Token)
	}
	return append(dst, '}'), nil
}

// appendJSON appends l's encoding, as json.Marshal(l) would.
func (l *Lease) appendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = append(dst, `{"owner":`...)
	dst = appendString(dst, l.Owner)
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, l.Host)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(l.PID), 10)
	dst = append(dst, `,"acquired":`...)
	if dst, err = appendTime(dst, l.Acquired); err != nil {
		return nil, err
	}
	dst = append(dst, `,"renewed":`...)
	if dst, err = appendTime(dst, l.Renewed); err != nil {
		return nil, err
	}
	dst = append(dst, `,"expires":`...)
	if dst, err = appendTime(dst, l.Expires); err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// appendJSON appends h's encoding, as json.Marshal(h) would.
func (h *HostLoss) appendJSON(dst []byte) ([]byte, error) {
	var err error
	dst = append(dst, `{"step":`...)
	dst = appendString(dst, h.Step)
	dst = append(dst, `,"attempt":`...)
	dst = strconv.AppendInt(dst, int64(h.Attempt), 10)
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, h.Host)
	dst = append(dst, `,"address":`...)
	dst = appendString(dst, h.Address)
	if h.Zone != "" {
		dst = append(dst, `,"zone":`...)
		dst = appendString(dst, h.Zone)
	}
	dst = append(dst, `,"time":`...)
	if dst, err = appendTime(dst, h.Time); err != nil {
		return nil, err
	}
	dst = append(dst, `,"start":`...)
	if dst, err = appendTime(dst, h.Start); err != nil {
		return nil, err
	}
	dst = append(dst, `,"cause":`...)
	dst = appendString(dst, h.Cause)
	if len(h.Rerun) > 0 {
		dst = append(dst, `,"rerun":`...)
		dst = appendStrings(dst, h.Rerun)
	}
	if h.Failed != "" {
		dst = append(dst, `,"failed":`...)
		dst = appendString(dst, h.Failed)
	}
	if len(h.Providers) > 0 {
		dst = append(dst, `,"providers":{`...)
		for i, id := range sortedKeys(h.Providers) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, id)
			dst = append(dst, ':')
			if out := h.Providers[id]; out == nil {
				dst = append(dst, "null"...)
			} else {
				dst = appendStringMap(dst, out)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

// appendTime appends t as time.Time.MarshalJSON does: RFC 3339 with
// nanoseconds, an error for what RFC 3339 cannot hold.
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	n0 := len(dst)
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	// MarshalJSON's checks (year of four digits, zone hour below 24); when
	// one fails, MarshalJSON itself says why, as json.Marshal reports it.
	b := dst[n0+1:]
	bad := b[4] != '-'
	if !bad && b[len(b)-1] != 'Z' {
		c := b[len(b)-len("Z07:00")]
		h := 10*(b[len(b)-5]-'0') + (b[len(b)-4] - '0')
		bad = '0' <= c && c <= '9' || h >= 24
	}
	if bad {
		m, err := t.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return append(dst[:n0], m...), nil
	}
	return append(dst, '"'), nil
}

// appendStrings appends a JSON array of ss (not null: callers handle nil).
func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendStringMap appends m as a JSON object with sorted keys, null for nil.
func appendStringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	var room [16]string // on the stack for maps of a few keys
	keys := room[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// appendString appends s as a JSON string exactly as json.Marshal does:
// HTML's <, > and & escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped. (A copy of encoding/json's appendString with escapeHTML, which
// is not exported.)
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if safeBytes[b] == '1' {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// safeBytes holds a '1' for each byte json.Marshal writes as it is in a
// string: printable ASCII but for the quote, the backslash, and <, > and &
// (HTML); every other byte is escaped or starts a UTF-8 sequence.
const safeBytes = "0000000000000000000000000000000011011101111111111111111111110101" +
	"1111111111111111111111111111011111111111111111111111111111111111" +
	"0000000000000000000000000000000000000000000000000000000000000000" +
	"0000000000000000000000000000000000000000000000000000000000000000"
