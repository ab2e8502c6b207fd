package console

import "strings"

// sanitize makes a step's output line safe to print between our own lines:
// a carriage return (progress bars) keeps only what a terminal would show last,
// and escape sequences that move the cursor or clear the screen are dropped,
// since they would corrupt the live view. Colour sequences (SGR, ESC[...m) are
// kept when keepSGR is set; other control characters are dropped.
func sanitize(line string, keepSGR bool) string {
	line = strings.TrimRight(line, "\r\n")
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	if !strings.ContainsFunc(line, isControl) {
		return line
	}
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == 0x1b {
			end, sgr := escapeEnd(line, i)
			if sgr && keepSGR {
				b.WriteString(line[i:end])
			}
			i = end - 1
			continue
		}
		if c == '\t' {
			b.WriteString("    ")
			continue
		}
		if c < 0x20 || c == 0x7f {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// escapeEnd returns the index just past the escape sequence starting at i,
// and whether it is a colour (SGR) sequence.
func escapeEnd(s string, i int) (int, bool) {
	if i+1 >= len(s) {
		return len(s), false
	}
	switch s[i+1] {
	case '[': // CSI: parameters and intermediates, then a final byte 0x40-0x7e
		j := i + 2
		for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
			j++
		}
		if j >= len(s) {
			return len(s), false
		}
		return j + 1, s[j] == 'm'
	case ']': // OSC: up to BEL or ESC \
		for j := i + 2; j < len(s); j++ {
			if s[j] == 0x07 {
				return j + 1, false
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 2, false
			}
		}
		return len(s), false
	default:
		return i + 2, false
	}
}

// visibleWidth counts the runes of s that take space on screen, skipping
// escape sequences; wide characters count as one (close enough for ids and logs).
func visibleWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i, _ = escapeEnd(s, i)
			continue
		}
		_, size := decodeRune(s[i:])
		i += size
		n++
	}
	return n
}
