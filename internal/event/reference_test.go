package event

// This file keeps the implementation of Normalize as it was before the single-pass scanner:
// four passes of encoding/json (json.Valid, a json.Decoder token walk, json.Unmarshal per
// field, json.Compact). It is the reference the differential test and
// FuzzNormalizeMatchesReference hold Normalize to: same output bytes, same first error. Do
// not change it to make Normalize pass.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

func normalizeReference(t string, data []byte) ([]byte, error) {
	fields, ok := schemas[t]
	if !ok {
		return nil, &FieldError{"event", "event must be one of " + strings.Join(Types, ", ")}
	}
	if len(data) > MaxDataSize {
		return nil, &FieldError{"data", fmt.Sprintf("data must be at most %d bytes", MaxDataSize)}
	}
	if !json.Valid(data) || bytes.TrimLeft(data, " \t\r\n")[0] != '{' {
		return nil, &FieldError{"data", "data must be a JSON object"}
	}
	// encoding/json accepts invalid UTF-8 inside strings; a receiver's parser may not.
	if !utf8.Valid(data) {
		return nil, &FieldError{"data", "data must be valid UTF-8"}
	}
	members, err := refObjectMembers(data, "data")
	if err != nil {
		return nil, err
	}
	byName := make(map[string]json.RawMessage, len(members))
	for _, m := range members {
		byName[m.key] = m.value
	}

	typ, hasType := byName["type"]
	if hasType {
		var s string
		if !refIsString(typ) || json.Unmarshal(typ, &s) != nil || s != t {
			return nil, &FieldError{"data.type", fmt.Sprintf("data.type must equal the event name %q", t)}
		}
	}
	for _, f := range fields {
		v, ok := byName[f.name]
		if !ok {
			if f.required {
				return nil, &FieldError{"data." + f.name, "data." + f.name + " is required"}
			}
			continue
		}
		if err := refCheck(f, v); err != nil {
			return nil, err
		}
	}

	var buf bytes.Buffer
	buf.Grow(len(data) + len(`"type":"",`) + len(t))
	if err := json.Compact(&buf, data); err != nil {
		return nil, &FieldError{"data", "data must be a JSON object"} // unreachable: data is valid
	}
	if hasType {
		return buf.Bytes(), nil
	}
	compact := buf.Bytes()
	out := make([]byte, 0, len(compact)+len(`"type":"",`)+len(t))
	out = append(out, `{"type":"`...)
	out = append(out, t...) // the types need no escaping
	out = append(out, '"')
	if len(compact) > 2 { // not "{}"
		out = append(out, ',')
	}
	out = append(out, compact[1:]...)
	return out, nil
}

// refCheck reports the first way v is not what f allows.
func refCheck(f field, v json.RawMessage) error {
	path := "data." + f.name
	switch f.kind {
	case kindString:
		var s string
		if !refIsString(v) || json.Unmarshal(v, &s) != nil {
			return &FieldError{path, path + " must be a string"}
		}
		if f.required && s == "" {
			return &FieldError{path, path + " must be a non-empty string"}
		}
	case kindInteger:
		if !refIsInteger(v) {
			return &FieldError{path, path + " must be an integer"}
		}
	case kindStatus:
		var s string
		if !refIsString(v) || json.Unmarshal(v, &s) != nil || !refContains(statuses, s) {
			return &FieldError{path, path + " must be one of " + strings.Join(statuses, ", ")}
		}
	case kindTags:
		if !refIsObject(v) {
			return &FieldError{path, path + " must be an object of string values"}
		}
		tags, err := refObjectMembers(v, path)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			if !refIsString(tag.value) {
				p := refMemberPath(path, tag.key)
				return &FieldError{p, p + " must be a string"}
			}
		}
	case kindStringArray:
		var elems []json.RawMessage
		if !refIsArray(v) || json.Unmarshal(v, &elems) != nil {
			return &FieldError{path, path + " must be an array of strings"}
		}
		for i, e := range elems {
			if !refIsString(e) {
				p := fmt.Sprintf("%s[%d]", path, i)
				return &FieldError{p, p + " must be a string"}
			}
		}
	}
	return nil
}

type refMember struct {
	key   string
	value json.RawMessage
}

// refObjectMembers returns the members of the JSON object obj in document order, rejecting
// duplicate keys. obj must be valid JSON; path names it in errors.
func refObjectMembers(obj []byte, path string) ([]refMember, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, &FieldError{path, path + " must be a JSON object"}
	}
	var members []refMember
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, &FieldError{path, path + " must be a JSON object"}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &FieldError{path, path + " must be a JSON object"}
		}
		if seen[key] {
			return nil, &FieldError{refMemberPath(path, key), fmt.Sprintf("%s has duplicate field %q", path, key)}
		}
		seen[key] = true
		members = append(members, refMember{key, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, &FieldError{path, path + " must be a JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{path, path + " must be a JSON object"}
	}
	return members, nil
}

func refMemberPath(path, key string) string {
	if key == "" {
		return path + `[""]`
	}
	for _, r := range key {
		if !(r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return path + "[" + strconv.Quote(key) + "]"
		}
	}
	return path + "." + key
}

func refFirstByte(v []byte) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func refIsString(v []byte) bool { return refFirstByte(v) == '"' }
func refIsObject(v []byte) bool { return refFirstByte(v) == '{' }
func refIsArray(v []byte) bool  { return refFirstByte(v) == '[' }

func refIsInteger(v []byte) bool {
	s := string(bytes.TrimSpace(v))
	if s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return false
	}
	if strings.ContainsAny(s, ".eE") {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func refContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
