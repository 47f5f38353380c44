package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// object is a request body decoded into its members, so each field can be checked on its own
// and every error can name the field it is about.
type object map[string]json.RawMessage

// readObject reads the body as one JSON object whose members are all in allowed. On failure it
// has answered (400 or 413) and returns false.
func readObject(w http.ResponseWriter, r *http.Request, allowed ...string) (object, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "could not read the request body: "+err.Error())
		return nil, false
	}
	if len(b) > MaxBodySize {
		tooLarge(w, r)
		return nil, false
	}
	obj, err := parseObject(b, allowed)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return obj, true
}

// drainLimit is how much of an oversized body is read and dropped before answering 413: a
// client still sending when the answer comes would otherwise see a reset connection, not the 413.
const drainLimit = 16 << 20

func tooLarge(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, io.LimitReader(r.Body, drainLimit))
	w.Header().Set("Connection", "close")
	writeError(w, r, http.StatusRequestEntityTooLarge, "request body must be at most 1 MiB (1048576 bytes)")
}

func parseObject(b []byte, allowed []string) (object, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("request body must be a JSON object, got an empty body")
	}
	if b[0] != '{' {
		if !json.Valid(b) {
			return nil, syntaxError(b)
		}
		return nil, errors.New("request body must be a JSON object")
	}
	var obj object
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, syntaxError(b)
	}
	for name := range obj {
		if !slices.Contains(allowed, name) {
			return nil, fmt.Errorf("unknown field %q; allowed fields: %s", name, strings.Join(allowed, ", "))
		}
	}
	return obj, nil
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

func (o object) has(name string) bool { _, ok := o[name]; return ok }

func (o object) isNull(name string) bool { return string(o[name]) == "null" }

// str reads a string member.
func (o object) str(name string) (string, error) {
	raw := o[name]
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("%s must be a string", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s must be a string", name)
	}
	return s, nil
}

// boolean reads a true/false member.
func (o object) boolean(name string) (bool, error) {
	switch string(o[name]) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s must be true or false", name)
}

// integer reads an integral number member within [lo, hi].
func (o object) integer(name string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(string(o[name]), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
