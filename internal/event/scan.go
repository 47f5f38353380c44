package event

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the single pass Normalize makes over a data object: it checks the JSON
// syntax as strictly as encoding/json does (json.Valid), notes invalid UTF-8 inside strings,
// writes the compacted bytes (json.Compact without escaping: insignificant whitespace
// dropped, every other byte copied as is), and records the top-level members. The checks that
// follow read only the compacted output, which is valid JSON without whitespace, so they
// need no second validation.

// maxDepth is encoding/json's limit on the nesting of arrays and objects: json.Valid rejects
// deeper data.
const maxDepth = 10000

// A member is one member of a JSON object. key is the key as spelled between its quotes, or,
// once decoded, as encoding/json would decode it; start and end delimit the value in the
// compacted bytes.
type member struct {
	key        []byte
	escaped    bool // key contains a backslash, so its spelling is not its value
	start, end int
}

// A compactor makes the pass over data.
type compactor struct {
	data    []byte
	i       int // next byte of data to read
	out     []byte
	flushed int // data[flushed:i] is yet to be appended to out; it holds no insignificant space
	badUTF8 bool
}

func isSpace(c byte) bool { return c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n') }

// plain reports the bytes that may stand for themselves in a string and need no attention:
// ASCII other than control characters, the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// space skips any whitespace at c.i, leaving it out of the output.
func (c *compactor) space() {
	if c.i < len(c.data) && isSpace(c.data[c.i]) {
		c.skipSpace()
	}
}

func (c *compactor) skipSpace() {
	c.out = append(c.out, c.data[c.flushed:c.i]...)
	i := c.i
	for i < len(c.data) && isSpace(c.data[i]) {
		i++
	}
	c.i, c.flushed = i, i
}

// pos is the offset in the output of the byte at c.i.
func (c *compactor) pos() int { return len(c.out) + c.i - c.flushed }

// object reads c.data, which must hold a single JSON object between optional whitespace, and
// reports whether it is one. On success c.out has the object compacted appended, and the
// object's top-level members, keys not yet decoded, are appended to ms in document order.
// (ms is passed along rather than kept in c so that its array can stay on the caller's stack.)
func (c *compactor) object(ms []member) ([]member, bool) {
	var stackBuf [64]byte
	stack := stackBuf[:0] // the open arrays and objects: '[' or '{'
	ok := true
	data := c.data
	c.space()
	if c.i >= len(data) || data[c.i] != '{' {
		return ms, false
	}
	for {
		// A value starts at c.i.
		if c.i >= len(data) {
			return ms, false
		}
		switch b := data[c.i]; b {
		case '{', '[':
			if len(stack) == maxDepth {
				return ms, false
			}
			stack = append(stack, b)
			c.i++
			c.space()
			if c.i < len(data) && data[c.i] == b+2 { // '}' or ']'
				stack = stack[:len(stack)-1]
				c.i++
				break
			}
			if b == '{' {
				if ms, ok = c.key(ms, len(stack) == 1); !ok {
					return ms, false
				}
			}
			continue
		case '"':
			if _, ok = c.str(); !ok {
				return ms, false
			}
		case 't':
			if !c.literal("true") {
				return ms, false
			}
		case 'f':
			if !c.literal("false") {
				return ms, false
			}
		case 'n':
			if !c.literal("null") {
				return ms, false
			}
		default:
			if !c.number() {
				return ms, false
			}
		}
		// A value ended just before c.i: see what follows it.
		for {
			switch len(stack) {
			case 0:
				c.space()
				if c.i != len(data) {
					return ms, false
				}
				c.out = append(c.out, data[c.flushed:c.i]...)
				return ms, true
			case 1:
				ms[len(ms)-1].end = c.pos()
			}
			c.space()
			if c.i >= len(data) {
				return ms, false
			}
			b, top := data[c.i], stack[len(stack)-1]
			c.i++
			if b == top+2 {
				stack = stack[:len(stack)-1]
				continue
			}
			if b != ',' {
				return ms, false
			}
			c.space()
			if top == '{' {
				if ms, ok = c.key(ms, len(stack) == 1); !ok {
					return ms, false
				}
			}
			break
		}
	}
}

// key reads an object key, the colon and the whitespace after it, and appends a member to ms
// when the object is the top-level one.
func (c *compactor) key(ms []member, top bool) ([]member, bool) {
	data := c.data
	if c.i >= len(data) || data[c.i] != '"' {
		return ms, false
	}
	start := c.i
	escaped, ok := c.str()
	if !ok {
		return ms, false
	}
	end := c.i
	c.space()
	if c.i >= len(data) || data[c.i] != ':' {
		return ms, false
	}
	c.i++
	c.space()
	if top {
		key := data[start+1 : end-1]
		ms = append(ms, member{key: key, escaped: escaped, start: c.pos()})
	}
	return ms, true
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// str reads the string that starts at c.i and reports whether it has a backslash.
func (c *compactor) str() (escaped, ok bool) {
	data := c.data
	i := c.i + 1
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			return false, false
		}
		switch b := data[i]; {
		case b == '"':
			c.i = i + 1
			return escaped, true
		case b == '\\':
			escaped = true
			if i+1 >= len(data) {
				return false, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case b < ' ':
			return false, false
		default: // b >= utf8.RuneSelf
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				c.badUTF8 = true
			}
			i += size
		}
	}
}

// number reads the number that starts at c.i. What may follow it is checked by the caller.
func (c *compactor) number() bool {
	data := c.data
	i := c.i
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return false
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return false
		}
		i = digits(data, i+1)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			return false
		}
		i = digits(data, i+1)
	}
	c.i = i
	return true
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// literal reads lit (true, false or null) at c.i. What may follow it is checked by the
// caller.
func (c *compactor) literal(lit string) bool {
	if len(c.data)-c.i < len(lit) || string(c.data[c.i:c.i+len(lit)]) != lit {
		return false
	}
	c.i += len(lit)
	return true
}

// The functions below read compacted output, which is valid JSON without whitespace.

// stringEnd returns the offset just past the string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
		}
	}
}

// valueEnd returns the offset just past the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// objectMembers appends the members of the compacted object obj to ms, keys decoded, value
// ranges relative to obj.
func objectMembers(obj []byte, ms []member) []member {
	i := 1
	if obj[i] == '}' {
		return ms
	}
	for {
		end := stringEnd(obj, i)
		key := obj[i+1 : end-1]
		if hasBackslash(key) {
			key = unquote(key)
		}
		i = end + 1 // past the colon
		start := i
		i = valueEnd(obj, i)
		ms = append(ms, member{key: key, start: start, end: i})
		if obj[i] == '}' {
			return ms
		}
		i++ // past the comma
	}
}

// unquote decodes the contents of a valid JSON string as encoding/json does: a lone or
// misordered surrogate escape and invalid UTF-8 become U+FFFD.
func unquote(s []byte) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					r1 := rune(-1)
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r1 = hex4(s[i+2 : i+6])
					}
					if d := utf16.DecodeRune(r, r1); d != unicode.ReplacementChar {
						i += 6
						b = utf8.AppendRune(b, d)
						continue
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	return b
}

// hex4 decodes four hexadecimal digits.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// decoded returns the value of the valid JSON string s, quotes included.
func decoded(s []byte) []byte {
	s = s[1 : len(s)-1]
	if hasBackslash(s) {
		return unquote(s)
	}
	return s
}

// firstDuplicate returns the index of the first member whose key equals an earlier member's,
// or -1.
func firstDuplicate(ms []member) int {
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			for j := range i {
				if string(ms[i].key) == string(ms[j].key) {
					return i
				}
			}
		}
		return -1
	}
	seen := make(map[string]struct{}, len(ms))
	for i, m := range ms {
		if _, ok := seen[string(m.key)]; ok {
			return i
		}
		seen[string(m.key)] = struct{}{}
	}
	return -1
}

// lookup returns the member named name.
func lookup(ms []member, name string) (member, bool) {
	for _, m := range ms {
		if string(m.key) == name {
			return m, true
		}
	}
	return member{}, false
}

// isInteger reports whether the valid JSON value v is a number with no fraction or exponent
// that fits in an int64. It reads the number's text, so no precision is lost on the way.
func isInteger(v []byte) bool {
	d := v
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false // not a number, or '.', 'e' or 'E'
		}
	}
	// Valid JSON has no leading zeros, so numbers of the same length compare as text.
	const max = "9223372036854775807" // and, negated, one less than the least int64
	switch {
	case len(d) < len(max):
		return true
	case len(d) > len(max):
		return false
	case v[0] == '-':
		return string(d) <= "9223372036854775808"
	default:
		return string(d) <= max
	}
}
