// Package event defines the four event types hookrelay publishes and the schema of each
// type's data object.
//
// Normalize is the single gate between a publisher's JSON and the bytes a receiver gets: it
// checks the data against its type's schema and returns the exact body to deliver, so that
// every attempt and every webhook sees the same bytes. Fields the schema does not name are
// passed through untouched: same key order, same number spelling.
package event

import (
	"fmt"
	"strconv"
	"strings"
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
//
// Normalize reads data once (see scan.go), as strictly as encoding/json would, writing the
// compacted bytes as it goes; the schema checks then read the members' compacted values.
func Normalize(t string, data []byte) ([]byte, error) {
	fields, ok := schemas[t]
	if !ok {
		return nil, &FieldError{"event", "event must be one of " + strings.Join(Types, ", ")}
	}
	if len(data) > MaxDataSize {
		return nil, &FieldError{"data", fmt.Sprintf("data must be at most %d bytes", MaxDataSize)}
	}

	// The compacted data goes after room for `{"type":"<t>",` less one byte, its '{' being
	// where that ',' goes, so that the member can be put in front without a copy.
	pre := len(`{"type":"",`) + len(t) - 1
	var top [16]member
	c := compactor{data: data, out: make([]byte, pre, pre+len(data))}
	members, ok := c.object(top[:0])
	if !ok {
		return nil, &FieldError{"data", "data must be a JSON object"}
	}
	// encoding/json accepts invalid UTF-8 inside strings; a receiver's parser may not.
	if c.badUTF8 {
		return nil, &FieldError{"data", "data must be valid UTF-8"}
	}
	out := c.out
	for i := range members {
		if members[i].escaped {
			members[i].key = unquote(members[i].key)
		}
	}
	if i := firstDuplicate(members); i >= 0 {
		return nil, duplicateError("data", members[i].key)
	}

	typ, hasType := lookup(members, "type")
	if hasType {
		if v := out[typ.start:typ.end]; v[0] != '"' || string(decoded(v)) != t {
			return nil, &FieldError{"data.type", fmt.Sprintf("data.type must equal the event name %q", t)}
		}
	}
	for _, f := range fields {
		m, ok := lookup(members, f.name)
		if !ok {
			if f.required {
				return nil, &FieldError{"data." + f.name, "data." + f.name + " is required"}
			}
			continue
		}
		if err := f.check(out[m.start:m.end]); err != nil {
			return nil, err
		}
	}

	if hasType {
		return out[pre:], nil
	}
	n := copy(out, `{"type":"`)
	n += copy(out[n:], t) // the types need no escaping
	out[n] = '"'
	if len(out) == pre+len("{}") {
		out[pre] = '}'
		return out[:pre+1], nil
	}
	out[pre] = ','
	return out, nil
}

// duplicateError rejects the object at path for having key twice: receivers disagree on
// which of two equal keys wins, so neither may be delivered.
func duplicateError(path string, key []byte) error {
	k := string(key)
	return &FieldError{memberPath(path, k), fmt.Sprintf("%s has duplicate field %q", path, k)}
}

// check reports the first way v, a compacted JSON value, is not what f allows.
func (f field) check(v []byte) error {
	switch f.kind {
	case kindString:
		if v[0] != '"' {
			return f.error(" must be a string")
		}
		if f.required && len(v) == len(`""`) {
			return f.error(" must be a non-empty string")
		}
	case kindInteger:
		if !isInteger(v) {
			return f.error(" must be an integer")
		}
	case kindStatus:
		if v[0] != '"' || !contains(statuses, string(decoded(v))) {
			return f.error(" must be one of " + strings.Join(statuses, ", "))
		}
	case kindTags:
		if v[0] != '{' {
			return f.error(" must be an object of string values")
		}
		var buf [16]member
		tags := objectMembers(v, buf[:0])
		if i := firstDuplicate(tags); i >= 0 {
			return duplicateError(f.path(), tags[i].key)
		}
		for _, tag := range tags {
			if v[tag.start] != '"' {
				p := memberPath(f.path(), string(tag.key))
				return &FieldError{p, p + " must be a string"}
			}
		}
	case kindStringArray:
		if v[0] != '[' {
			return f.error(" must be an array of strings")
		}
		if v[1] == ']' {
			break
		}
		for i, n := 1, 0; ; n++ {
			if v[i] != '"' {
				p := fmt.Sprintf("%s[%d]", f.path(), n)
				return &FieldError{p, p + " must be a string"}
			}
			i = stringEnd(v, i)
			if v[i] == ']' {
				break
			}
			i++ // past the comma
		}
	}
	return nil
}

// path names f in errors.
func (f field) path() string { return "data." + f.name }

// error is the *FieldError saying that f's value is wrong: "data.<name>" + what.
func (f field) error(what string) error {
	p := f.path()
	return &FieldError{p, p + what}
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
