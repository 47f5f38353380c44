package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// object is a request body's JSON object split into its members, so each field can be checked
// on its own and every error can name the field it is about. values[i] is the value, as sent,
// of the member named names[i], or nil when there is none. When a name is sent twice the last
// one counts, as with encoding/json.
type object struct {
	names  []string
	values [][]byte
}

func newObject(names []string) object {
	return object{names: names, values: make([][]byte, len(names))}
}

// readObject reads the body as one JSON object whose members are all in allowed. On failure it
// has answered (400 or 413) and returns false.
func readObject(w http.ResponseWriter, r *http.Request, allowed ...string) (object, bool) {
	b, ok := readBody(w, r)
	if !ok {
		return object{}, false
	}
	obj, err := parseObject(b, allowed)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return object{}, false
	}
	return obj, true
}

// readBody reads the whole body. On failure it has answered (400 or 413) and returns false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	// Sized from Content-Length when it is given, so a large batch is read without growing
	// the buffer over and over; the extra MinRead bytes are where the end of the body is seen.
	size := int64(0)
	if r.ContentLength > 0 && r.ContentLength <= MaxBodySize {
		size = r.ContentLength
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBodySize+1)); err != nil {
		writeError(w, r, http.StatusBadRequest, "could not read the request body: "+err.Error())
		return nil, false
	}
	if buf.Len() > MaxBodySize {
		tooLarge(w, r)
		return nil, false
	}
	return buf.Bytes(), true
}

// drainLimit is how much of an oversized body is read and dropped before answering 413: a
// client still sending when the answer comes would otherwise see a reset connection, not the 413.
const drainLimit = 16 << 20

func tooLarge(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, drainLimit))
	w.Header().Set("Connection", "close")
	writeError(w, r, http.StatusRequestEntityTooLarge, "request body must be at most 1 MiB (1048576 bytes)")
}

// parseObject checks that b is valid JSON, the one pass over it that does, and splits it into
// the members of the object it must be.
func parseObject(b []byte, allowed []string) (object, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return object{}, errors.New("request body must be a JSON object, got an empty body")
	}
	if !json.Valid(b) {
		return object{}, syntaxError(b)
	}
	o := newObject(allowed)
	if err := o.parse(b); err != nil {
		return object{}, err
	}
	return o, nil
}

func syntaxError(b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("request body is not valid JSON: %v (at byte %d)", se, se.Offset)
	}
	return fmt.Errorf("request body is not valid JSON: %v", err)
}

var errNotObject = errors.New("request body must be a JSON object")

// parse sets o's values from b, a valid JSON value without space around it, which must be an
// object whose members are all named in o.names. Of several members not named there, the
// first is reported.
func (o object) parse(b []byte) error {
	clear(o.values)
	if b[0] != '{' {
		return errNotObject
	}
	for key, value := range members(b) {
		if err := o.set(key, value); err != nil {
			return err
		}
	}
	return nil
}

// set stores value as the value of the member whose key, quotes included, is key.
func (o object) set(key, value []byte) error {
	name := unquote(key)
	for i, n := range o.names {
		if n == string(name) {
			o.values[i] = value
			return nil
		}
	}
	return fmt.Errorf("unknown field %q; allowed fields: %s", name, strings.Join(o.names, ", "))
}

// value returns the value of the member called name, nil when there is none.
func (o object) value(name string) []byte {
	for i, n := range o.names {
		if n == name {
			return o.values[i]
		}
	}
	return nil
}

func (o object) has(name string) bool { return o.value(name) != nil }

func (o object) isNull(name string) bool { return string(o.value(name)) == "null" }

// str reads a string member.
func (o object) str(name string) (string, error) {
	raw := o.value(name)
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("%s must be a string", name)
	}
	return string(unquote(raw)), nil
}

// oneOf reads a string member that must equal one of values, and returns that value, which
// unlike a string decoded from the body needs no allocation.
func (o object) oneOf(name string, values []string) (string, bool) {
	raw := o.value(name)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	v := unquote(raw)
	for _, s := range values {
		if s == string(v) {
			return s, true
		}
	}
	return "", false
}

// boolean reads a true/false member.
func (o object) boolean(name string) (bool, error) {
	switch string(o.value(name)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s must be true or false", name)
}

// integer reads an integral number member within [lo, hi].
func (o object) integer(name string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(string(o.value(name)), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
