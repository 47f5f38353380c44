package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hookrelay/hookrelay/internal/store"
)

// This file keeps the request decoding as it was before it was done in one pass: the body
// unmarshalled into a map by encoding/json, and each string member decoded again on its own.
// The tests in decode_test.go check the one-pass decoding against it.
//
// It differs from the old code in one respect: of several unknown fields, the old code named
// the first one a map iteration gave, which changed from run to run; this names the first in
// document order, as the new code does. The checks that did not change with the decoding
// (newEvent, and the accessors that only read a member's bytes) are not kept here: the
// reference hands its members to them, and the tests check those members byte for byte.

type refObject map[string]json.RawMessage

func refParseObject(b []byte, allowed []string) (refObject, error) {
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
	var obj refObject
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, syntaxError(b)
	}
	for name := range obj {
		if !slices.Contains(allowed, name) {
			name = firstUnknown(b, allowed)
			return nil, fmt.Errorf("unknown field %q; allowed fields: %s", name, strings.Join(allowed, ", "))
		}
	}
	return obj, nil
}

// firstUnknown returns the first key of the valid JSON object b, in document order, that is
// not in allowed.
func firstUnknown(b []byte, allowed []string) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // {
	for dec.More() {
		tok, _ := dec.Token()
		if name := tok.(string); !slices.Contains(allowed, name) {
			return name
		}
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	panic("no unknown key in " + string(b))
}

func (o refObject) has(name string) bool { _, ok := o[name]; return ok }

func (o refObject) str(name string) (string, error) {
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

// object returns o as the new code holds an object whose members are names.
func (o refObject) object(names []string) object {
	n := newObject(names)
	for i, name := range names {
		n.values[i] = o[name]
	}
	return n
}

// refItems is the old split of a batch body into its items; an error is the answer's.
func refItems(body []byte) ([]json.RawMessage, error) {
	o, err := refParseObject(body, batchFields)
	if err != nil {
		return nil, err
	}
	if !o.has("events") {
		return nil, errors.New("events is required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(o["events"], &items); err != nil || items == nil {
		return nil, errors.New("events must be an array of event objects")
	}
	if len(items) == 0 || len(items) > MaxBatch {
		return nil, fmt.Errorf("events must hold 1 to %d events, got %d", MaxBatch, len(items))
	}
	return items, nil
}

// refDecodeBatch is the decoding part of the old createEvents.
func (s *Server) refDecodeBatch(body []byte) (batch, error) {
	items, err := refItems(body)
	if err != nil {
		return batch{}, err
	}
	results := make([]BatchResult, len(items))
	var events []store.NewEvent
	var index []int
	for i, raw := range items {
		prefix := "events[" + strconv.Itoa(i) + "]."
		eo, err := refParseObject(raw, eventFields)
		if err != nil {
			results[i] = BatchResult{Status: http.StatusBadRequest, Message: "events[" + strconv.Itoa(i) + "]: " + err.Error()}
			continue
		}
		e, err := s.newEvent(eo.object(eventFields), prefix)
		if err != nil {
			results[i] = BatchResult{Status: http.StatusBadRequest, Message: err.Error()}
			continue
		}
		events = append(events, e)
		index = append(index, i)
	}
	return batch{events: events, index: index, results: results}, nil
}
