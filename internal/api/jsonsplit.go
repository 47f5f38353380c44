package api

import (
	"bytes"
	"encoding/json"
	"iter"
	"unicode/utf8"
)

// The functions in this file read JSON that json.Valid has accepted, so they check nothing:
// they only find where members, elements and strings start and end, which is much cheaper
// than decoding with encoding/json. A body is validated once; every value is then handed on
// as the bytes that were sent.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the offset of the first byte at or after i that is not whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// members yields the key (quotes included) and the value of each member of the object b, in
// document order.
func members(b []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(key, value []byte) bool) { walk(b, 0, yield) }
}

// elements appends the elements of the array b to dst.
func elements(dst [][]byte, b []byte) [][]byte {
	walk(b, 0, func(_, value []byte) bool {
		dst = append(dst, value)
		return true
	})
	return dst
}

// valueEnd returns the offset just past the value that starts at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		return walk(b, i, nil)
	}
	// A number or a literal: it runs up to what follows it, if anything does.
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// walk returns the offset just past the object or array that starts at b[i]. On the way it
// calls yield, unless nil, with the key (quotes included) and the value of each member, or
// with each element and a nil key, in document order. It stops when yield returns false,
// and then returns -1.
func walk(b []byte, i int, yield func(key, value []byte) bool) int {
	object := b[i] == '{'
	end := b[i] + 2 // '}' or ']'
	i = skipSpace(b, i+1)
	if b[i] == end {
		return i + 1
	}
	for {
		var key []byte
		if object {
			k := stringEnd(b, i)
			key = b[i:k]
			i = skipSpace(b, skipSpace(b, k)+1) // past the colon
		}
		v := valueEnd(b, i)
		if yield != nil && !yield(key, b[i:v]) {
			return -1
		}
		i = skipSpace(b, v)
		if b[i] == end {
			return i + 1
		}
		i = skipSpace(b, i+1) // past the comma
	}
}

// stringEnd returns the offset just past the string that starts at b[i].
func stringEnd(b []byte, i int) int {
	for i++; ; {
		q := i + bytes.IndexByte(b[i:], '"')
		// The quote ends the string unless an odd number of backslashes escapes it. The
		// opening quote stops the count.
		n := 0
		for b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
}

// plain reports whether the contents of a valid JSON string stand for themselves: no escapes,
// and no invalid UTF-8, which encoding/json replaces with U+FFFD.
func plain(s []byte) bool { return bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) }

// unquote returns the value of the valid JSON string s (quotes included) as encoding/json
// decodes it: s's contents themselves when they are plain.
func unquote(s []byte) []byte {
	if v := s[1 : len(s)-1]; plain(v) {
		return v
	}
	var v string
	json.Unmarshal(s, &v) // s is valid, so there is no error
	return []byte(v)
}
