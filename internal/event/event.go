// Package event defines the four event types hookrelay publishes and the schema of each
// type's data object.
//
// Normalize is the single gate between a publisher's JSON and the bytes a receiver gets: it
// checks the data against its type's schema and returns the exact body to deliver, so that
// every attempt and every webhook sees the same bytes. Fields the schema does not name are
// passed through untouched: same key order, same number spelling.
package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The event types. A webhook subscribes to exactly one of them.
const (
	MessageReply   = "message-reply"
	DeliveryStatus = "delivery-status"
	MessageSend    = "message-send"
	NumberOptIn    = "number-opt-in"
)

// Types lists the event types in the order above.
var Types = []string{MessageReply, DeliveryStatus, MessageSend, NumberOptIn}

// Valid reports whether t is one of Types.
func Valid(t string) bool {
	_, ok := schemas[t]
	return ok
}

// MaxDataSize is the largest accepted data object, in bytes of the JSON as sent.
const MaxDataSize = 256 << 10

// A FieldError says which field of a publish request is wrong and what is allowed instead.
// Field is a path such as "data.messageId" or "data.tags.color"; Message is the whole
// sentence, fit to show to the publisher as is.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Message }

// statuses lists the values allowed for data.status of a delivery-status event.
var statuses = []string{"queued", "sent", "delivered", "undelivered", "undeliverable", "rejected", "failed", "unknown"}

// A kind is what a schema field's value must be.
type kind int

const (
	kindString      kind = iota // a JSON string; non-empty when the field is required
	kindInteger                 // a JSON number without fraction or exponent that fits in int64
	kindStatus                  // a string from statuses
	kindTags                    // an object whose values are all strings
	kindStringArray             // an array of strings
)

type field struct {
	name     string
	kind     kind
	required bool
}

// schemas lists each type's fields in the order they are checked, so the first error
// reported for a given body never changes.
var schemas = map[string][]field{
	DeliveryStatus: {
		{"destinationNumber", kindString, true},
		{"messageId", kindInteger, true},
		{"status", kindStatus, true},
		{"externalId", kindString, false},
		{"tags", kindTags, false},
		{"senderName", kindString, false},
		{"timestamp", kindString, false},
	},
	MessageReply: {
		{"fromNumber", kindString, true},
		{"toNumber", kindString, true},
		{"message", kindString, true},
		{"replyId", kindInteger, false},
		{"messageId", kindInteger, false},
		{"externalId", kindString, false},
		{"mediaUrls", kindStringArray, false},
		{"tags", kindTags, false},
		{"timestamp", kindString, false},
	},
	MessageSend: {
		{"messageId", kindInteger, true},
		{"destinationNumber", kindString, true},
		{"message", kindString, false},
		{"externalId", kindString, false},
		{"tags", kindTags, false},
		{"timestamp", kindString, false},
	},
	NumberOptIn: {
		{"number", kindString, true},
		{"optInType", kindString, true},
		{"tags", kindTags, false},
		{"timestamp", kindString, false},
	},
}

// Normalize checks data (the raw JSON of the event's "data" member) against the schema of
// event type t and returns the exact bytes to deliver: data compacted, with "type":t
// inserted as the first member when data has no "type" member.
//
// The error, if any, is a *FieldError describing the first problem found. Fields are
// checked in a fixed order, so the same body always yields the same error.
func Normalize(t string, data []byte) ([]byte, error) {
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
	members, err := objectMembers(data, "data")
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
		if !isString(typ) || json.Unmarshal(typ, &s) != nil || s != t {
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
		if err := f.check(v); err != nil {
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

// check reports the first way v is not what f allows.
func (f field) check(v json.RawMessage) error {
	path := "data." + f.name
	switch f.kind {
	case kindString:
		var s string
		if !isString(v) || json.Unmarshal(v, &s) != nil {
			return &FieldError{path, path + " must be a string"}
		}
		if f.required && s == "" {
			return &FieldError{path, path + " must be a non-empty string"}
		}
	case kindInteger:
		if !isInteger(v) {
			return &FieldError{path, path + " must be an integer"}
		}
	case kindStatus:
		var s string
		if !isString(v) || json.Unmarshal(v, &s) != nil || !contains(statuses, s) {
			return &FieldError{path, path + " must be one of " + strings.Join(statuses, ", ")}
		}
	case kindTags:
		if !isObject(v) {
			return &FieldError{path, path + " must be an object of string values"}
		}
		tags, err := objectMembers(v, path)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			if !isString(tag.value) {
				p := memberPath(path, tag.key)
				return &FieldError{p, p + " must be a string"}
			}
		}
	case kindStringArray:
		var elems []json.RawMessage
		if !isArray(v) || json.Unmarshal(v, &elems) != nil {
			return &FieldError{path, path + " must be an array of strings"}
		}
		for i, e := range elems {
			if !isString(e) {
				p := fmt.Sprintf("%s[%d]", path, i)
				return &FieldError{p, p + " must be a string"}
			}
		}
	}
	return nil
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers returns the members of the JSON object obj in document order, rejecting
// duplicate keys: receivers disagree on which of two equal keys wins, so neither may be
// delivered. obj must be valid JSON; path names it in errors.
func objectMembers(obj []byte, path string) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, &FieldError{path, path + " must be a JSON object"}
	}
	var members []member
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
			return nil, &FieldError{memberPath(path, key), fmt.Sprintf("%s has duplicate field %q", path, key)}
		}
		seen[key] = true
		members = append(members, member{key, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, &FieldError{path, path + " must be a JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{path, path + " must be a JSON object"}
	}
	return members, nil
}

// memberPath names member key of the object at path: "data.tags.color" when key reads as a
// plain name, `data.tags["two words"]` otherwise, so the path stays unambiguous.
func memberPath(path, key string) string {
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

// The predicates below look at the first byte of a valid JSON value, which decides its type.

func firstByte(v []byte) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func isString(v []byte) bool { return firstByte(v) == '"' }
func isObject(v []byte) bool { return firstByte(v) == '{' }
func isArray(v []byte) bool  { return firstByte(v) == '[' }

// isInteger reports whether v is a JSON number with no fraction or exponent that fits in an
// int64. It reads the number's text, so no precision is lost on the way.
func isInteger(v []byte) bool {
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Sample returns a valid, normalized sample body for t, as sent by "send a test event": it
// has "test":true and a realistic value for every field of t's schema, so a receiver can
// exercise its whole parser. It returns nil if t is not one of Types. The caller owns the
// returned slice.
func Sample(t string) []byte {
	s, ok := samples[t]
	if !ok {
		return nil
	}
	return []byte(s)
}

// The numbers are from the +1 555 01xx range, reserved for fiction.
var samples = map[string]string{
	MessageReply: `{"type":"message-reply","test":true,"fromNumber":"+15555550123","toNumber":"+15555550100",` +
		`"message":"Yes, please confirm my appointment.","replyId":48213,"messageId":1734562,` +
		`"externalId":"appt-2026-0210-0915","mediaUrls":["https://example.com/media/receipt.jpg"],` +
		`"tags":{"campaign":"appointment-reminders"},"timestamp":"2026-02-10T03:37:28.425Z"}`,
	DeliveryStatus: `{"type":"delivery-status","test":true,"destinationNumber":"+15555550123","messageId":1734562,` +
		`"status":"delivered","externalId":"appt-2026-0210-0915","tags":{"campaign":"appointment-reminders"},` +
		`"senderName":"Acme Dental","timestamp":"2026-02-10T03:37:28.425Z"}`,
	MessageSend: `{"type":"message-send","test":true,"messageId":1734562,"destinationNumber":"+15555550123",` +
		`"message":"Reminder: your appointment is tomorrow at 9:15. Reply YES to confirm.",` +
		`"externalId":"appt-2026-0210-0915","tags":{"campaign":"appointment-reminders"},` +
		`"timestamp":"2026-02-10T03:37:28.425Z"}`,
	NumberOptIn: `{"type":"number-opt-in","test":true,"number":"+15555550123","optInType":"keyword",` +
		`"tags":{"source":"website-signup"},"timestamp":"2026-02-10T03:37:28.425Z"}`,
}
