package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/internal/event"
)

// spec restates CONTRACT.md §7 independently of the package's own tables.
type spec struct {
	name     string
	kind     string // "string", "integer", "status", "tags", "strings"
	required bool
}

var specs = map[string][]spec{
	event.DeliveryStatus: {
		{"destinationNumber", "string", true},
		{"messageId", "integer", true},
		{"status", "status", true},
		{"externalId", "string", false},
		{"tags", "tags", false},
		{"senderName", "string", false},
		{"timestamp", "string", false},
	},
	event.MessageReply: {
		{"fromNumber", "string", true},
		{"toNumber", "string", true},
		{"message", "string", true},
		{"replyId", "integer", false},
		{"messageId", "integer", false},
		{"externalId", "string", false},
		{"mediaUrls", "strings", false},
		{"tags", "tags", false},
		{"timestamp", "string", false},
	},
	event.MessageSend: {
		{"messageId", "integer", true},
		{"destinationNumber", "string", true},
		{"message", "string", false},
		{"externalId", "string", false},
		{"tags", "tags", false},
		{"timestamp", "string", false},
	},
	event.NumberOptIn: {
		{"number", "string", true},
		{"optInType", "string", true},
		{"tags", "tags", false},
		{"timestamp", "string", false},
	},
}

// validValue is a valid JSON value for each kind.
var validValue = map[string]string{
	"string":  `"x"`,
	"integer": `12`,
	"status":  `"delivered"`,
	"tags":    `{"color":"red"}`,
	"strings": `["https://example.com/a.jpg"]`,
}

// kv is one object member: a key and the raw JSON of its value.
type kv struct{ k, v string }

func object(members []kv) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", m.k, m.v)
	}
	b.WriteByte('}')
	return b.String()
}

// minimal returns the required members of t with valid values.
func minimal(t string) []kv {
	var ms []kv
	for _, s := range specs[t] {
		if s.required {
			ms = append(ms, kv{s.name, validValue[s.kind]})
		}
	}
	return ms
}

// with returns ms with key set to v (replaced in place, or appended).
func with(ms []kv, key, v string) []kv {
	out := append([]kv(nil), ms...)
	for i := range out {
		if out[i].k == key {
			out[i].v = v
			return out
		}
	}
	return append(out, kv{key, v})
}

func without(ms []kv, key string) []kv {
	var out []kv
	for _, m := range ms {
		if m.k != key {
			out = append(out, m)
		}
	}
	return out
}

type schemaCase struct {
	name    string
	typ     string
	data    string
	field   string // "" when Normalize must succeed
	message string
}

// schemaCases derives, for every type and every field of its schema, the accepted and the
// rejected values the contract implies.
func schemaCases() []schemaCase {
	var cases []schemaCase
	add := func(t, name, data, field, message string) {
		cases = append(cases, schemaCase{t + "/" + name, t, data, field, message})
	}
	for _, t := range event.Types {
		base := minimal(t)
		add(t, "minimal", object(base), "", "")
		full := base
		for _, s := range specs[t] {
			full = with(full, s.name, validValue[s.kind])
		}
		add(t, "all fields", object(full), "", "")

		for _, s := range specs[t] {
			f := "data." + s.name
			set := func(name, v, field, message string) {
				add(t, s.name+"="+name, object(with(base, s.name, v)), field, message)
			}
			if s.required {
				add(t, s.name+" missing", object(without(base, s.name)), f, f+" is required")
			} else {
				add(t, s.name+" absent", object(without(base, s.name)), "", "")
			}
			switch s.kind {
			case "string":
				set("string", `"+15555550123"`, "", "")
				set("escaped", `"caf\u00e9 \"quoted\""`, "", "")
				set("number", `12`, f, f+" must be a string")
				set("null", `null`, f, f+" must be a string")
				set("bool", `true`, f, f+" must be a string")
				set("object", `{}`, f, f+" must be a string")
				set("array", `["x"]`, f, f+" must be a string")
				if s.required {
					set("empty", `""`, f, f+" must be a non-empty string")
				} else {
					set("empty", `""`, "", "")
				}
			case "integer":
				for _, ok := range []string{`0`, `-0`, `12`, `-12`, `9223372036854775807`, `-9223372036854775808`} {
					set(ok, ok, "", "")
				}
				for _, bad := range []string{`12.5`, `12.0`, `1e3`, `1E3`, `"12"`, `null`, `true`, `[]`, `{}`,
					`9223372036854775808`, `-9223372036854775809`, `12345678901234567890123`} {
					set(bad, bad, f, f+" must be an integer")
				}
			case "status":
				for _, ok := range []string{"queued", "sent", "delivered", "undelivered", "undeliverable", "rejected", "failed", "unknown"} {
					set(ok, `"`+ok+`"`, "", "")
				}
				msg := f + " must be one of queued, sent, delivered, undelivered, undeliverable, rejected, failed, unknown"
				for _, bad := range []string{`"Delivered"`, `"bounced"`, `""`, `1`, `null`, `["sent"]`} {
					set(bad, bad, f, msg)
				}
			case "tags":
				set("empty object", `{}`, "", "")
				set("strings", `{"color":"red","size":"","two words":"ok"}`, "", "")
				msg := f + " must be an object of string values"
				for _, bad := range []string{`[]`, `["red"]`, `"red"`, `1`, `null`, `true`} {
					set(bad, bad, f, msg)
				}
				set("number value", `{"color":1}`, f+".color", f+".color must be a string")
				set("null value", `{"a":"b","color":null}`, f+".color", f+".color must be a string")
				set("object value", `{"color":{"r":"1"}}`, f+".color", f+".color must be a string")
				set("first bad value wins", `{"a":"b","size":2,"color":3}`, f+".size", f+".size must be a string")
				set("odd key", `{"two words":1}`, f+`["two words"]`, f+`["two words"] must be a string`)
				set("duplicate key", `{"color":"red","color":"blue"}`, f+".color", f+` has duplicate field "color"`)
			case "strings":
				set("empty array", `[]`, "", "")
				set("strings", `["a","b"]`, "", "")
				msg := f + " must be an array of strings"
				for _, bad := range []string{`{}`, `"a"`, `1`, `null`} {
					set(bad, bad, f, msg)
				}
				set("bad element", `["a","b",3]`, f+"[2]", f+"[2] must be a string")
				set("null element", `[null]`, f+"[0]", f+"[0] must be a string")
				set("nested array", `["a",["b"]]`, f+"[1]", f+"[1] must be a string")
			}
		}
	}
	return cases
}

func TestNormalizeSchemas(t *testing.T) {
	for _, tc := range schemaCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, err := event.Normalize(tc.typ, []byte(tc.data))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Normalize(%s, %s): unexpected error %v", tc.typ, tc.data, err)
				}
				want := `{"type":"` + tc.typ + `",` + tc.data[1:]
				if string(out) != want {
					t.Fatalf("Normalize(%s, %s) =\n%s\nwant\n%s", tc.typ, tc.data, out, want)
				}
				return
			}
			checkFieldError(t, out, err, tc.field, tc.message)
		})
	}
}

func checkFieldError(t *testing.T, out []byte, err error, field, message string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Normalize succeeded with %s; want error %q", out, message)
	}
	var fe *event.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Field != field || fe.Message != message || err.Error() != message {
		t.Fatalf("error = {Field: %q, Message: %q, Error(): %q}\nwant {Field: %q, Message: %q}", fe.Field, fe.Message, err.Error(), field, message)
	}
	if out != nil {
		t.Fatalf("Normalize returned %q along with an error", out)
	}
}

const ds = event.DeliveryStatus

// validDS is a minimal valid delivery-status body.
const validDS = `{"destinationNumber":"+15555550123","messageId":12,"status":"sent"}`

// normalizeErrorTests are bodies Normalize must reject, with the error it must report.
var normalizeErrorTests = []struct {
	name    string
	typ     string
	data    string
	field   string
	message string
}{
	{"unknown event", "message-delete", validDS, "event", "event must be one of message-reply, delivery-status, message-send, number-opt-in"},
	{"empty event", "", validDS, "event", "event must be one of message-reply, delivery-status, message-send, number-opt-in"},
	{"unknown event wins over bad data", "nope", `[]`, "event", "event must be one of message-reply, delivery-status, message-send, number-opt-in"},

	{"nil data", ds, "", "data", "data must be a JSON object"},
	{"array", ds, `[]`, "data", "data must be a JSON object"},
	{"string", ds, `"x"`, "data", "data must be a JSON object"},
	{"number", ds, `12`, "data", "data must be a JSON object"},
	{"null", ds, `null`, "data", "data must be a JSON object"},
	{"whitespace", ds, "  \n", "data", "data must be a JSON object"},
	{"truncated", ds, `{"messageId":12`, "data", "data must be a JSON object"},
	{"trailing comma", ds, `{"messageId":12,}`, "data", "data must be a JSON object"},
	{"two objects", ds, `{} {}`, "data", "data must be a JSON object"},
	{"trailing garbage", ds, validDS + `x`, "data", "data must be a JSON object"},
	{"single quotes", ds, `{'messageId':12}`, "data", "data must be a JSON object"},
	{"invalid utf-8", ds, `{"destinationNumber":"+1555` + "\xff" + `","messageId":12,"status":"sent"}`, "data", "data must be valid UTF-8"},

	{"duplicate key", ds, `{"destinationNumber":"a","messageId":12,"status":"sent","messageId":13}`, "data.messageId", `data has duplicate field "messageId"`},
	{"duplicate extra key", ds, `{"x":1,"destinationNumber":"a","messageId":12,"status":"sent","x":1}`, "data.x", `data has duplicate field "x"`},
	{"duplicate via escape", ds, `{"x":1,"\u0078":2}`, "data.x", `data has duplicate field "x"`},
	{"duplicate type", ds, `{"type":"delivery-status","type":"delivery-status"}`, "data.type", `data has duplicate field "type"`},
	{"duplicate odd key", ds, `{"a b":1,"a b":2}`, `data["a b"]`, `data has duplicate field "a b"`},
	{"nested duplicates are not ours", ds, `{"x":{"a":1,"a":2},"destinationNumber":"a","messageId":12}`, "data.status", "data.status is required"},

	{"type mismatch", ds, `{"type":"message-send","destinationNumber":"a","messageId":12,"status":"sent"}`, "data.type", `data.type must equal the event name "delivery-status"`},
	{"type number", ds, `{"type":1}`, "data.type", `data.type must equal the event name "delivery-status"`},
	{"type null", ds, `{"type":null}`, "data.type", `data.type must equal the event name "delivery-status"`},
	{"type empty", ds, `{"type":""}`, "data.type", `data.type must equal the event name "delivery-status"`},
	{"type case", ds, `{"type":"Delivery-Status"}`, "data.type", `data.type must equal the event name "delivery-status"`},
	{"type mismatch reply", event.MessageReply, `{"type":"delivery-status"}`, "data.type", `data.type must equal the event name "message-reply"`},

	{"empty object", ds, `{}`, "data.destinationNumber", "data.destinationNumber is required"},
	{"empty object with type", ds, `{"type":"delivery-status"}`, "data.destinationNumber", "data.destinationNumber is required"},
	// The first failing field in schema order is reported, whatever the key order.
	{"first in schema order", ds, `{"status":"nope","messageId":"12"}`, "data.destinationNumber", "data.destinationNumber is required"},
	{"second in schema order", ds, `{"status":"nope","messageId":"12","destinationNumber":"a"}`, "data.messageId", "data.messageId must be an integer"},
	{"reply order", event.MessageReply, `{"message":"","toNumber":1,"fromNumber":"a"}`, "data.toNumber", "data.toNumber must be a string"},
	{"duplicate before type", ds, `{"type":"x","a":1,"a":2}`, "data.a", `data has duplicate field "a"`},
	{"type before fields", ds, `{"type":"x"}`, "data.type", `data.type must equal the event name "delivery-status"`},
	{"big integer", event.MessageSend, `{"messageId": 12345678901234567890123, "destinationNumber": "a"}`, "data.messageId", "data.messageId must be an integer"},
}

func TestNormalizeErrors(t *testing.T) {
	for _, tc := range normalizeErrorTests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := event.Normalize(tc.typ, []byte(tc.data))
			checkFieldError(t, out, err, tc.field, tc.message)
		})
	}
}

// normalizeOutputTests are bodies Normalize must accept, with the bytes it must return.
var normalizeOutputTests = []struct {
	name string
	typ  string
	data string
	want string
}{
	{
		"type inserted first",
		event.DeliveryStatus,
		`{"destinationNumber":"+15555550123","messageId":12,"status":"sent"}`,
		`{"type":"delivery-status","destinationNumber":"+15555550123","messageId":12,"status":"sent"}`,
	},
	{
		"compacted, order and spelling kept",
		event.DeliveryStatus,
		"\n {\r\n\t\"zeta\" : 1.50000000000000000001 ,\n \"status\": \"sent\",\"extra\": [1E400, -0.0, 1e-7, 0.10],\n" +
			"  \"messageId\" : 12, \"nested\": {\"b\": 1, \"a\": {\"y\": null, \"x\": true}},\n" +
			"  \"destinationNumber\": \"+1 555 0123\", \"text\": \"caf\\u00e9 \\u2028 <&> \\/ \\\"q\\\"\", \"alpha\": false }\n",
		`{"type":"delivery-status","zeta":1.50000000000000000001,"status":"sent","extra":[1E400,-0.0,1e-7,0.10],` +
			`"messageId":12,"nested":{"b":1,"a":{"y":null,"x":true}},` +
			`"destinationNumber":"+1 555 0123","text":"caf\u00e9 \u2028 <&> \/ \"q\"","alpha":false}`,
	},
	{
		"type present stays where it is",
		event.MessageSend,
		`{ "messageId": 7, "type": "message-send", "destinationNumber": "a" }`,
		`{"messageId":7,"type":"message-send","destinationNumber":"a"}`,
	},
	{
		"type spelled with escapes",
		event.MessageSend,
		`{"messageId":7,"type":"message\u002dsend","destinationNumber":"a"}`,
		`{"messageId":7,"type":"message\u002dsend","destinationNumber":"a"}`,
	},
	{
		"big numbers in extra fields",
		event.NumberOptIn,
		`{"number":"a","optInType":"web","id":12345678901234567890123,"f":1.50000000000000000001}`,
		`{"type":"number-opt-in","number":"a","optInType":"web","id":12345678901234567890123,"f":1.50000000000000000001}`,
	},
	{
		"literal utf-8 kept",
		event.MessageReply,
		`{"fromNumber":"a","toNumber":"b","message":"héllo 👋"}`,
		`{"type":"message-reply","fromNumber":"a","toNumber":"b","message":"héllo 👋"}`,
	},
}

func TestNormalizeOutput(t *testing.T) {
	for _, tc := range normalizeOutputTests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := event.Normalize(tc.typ, []byte(tc.data))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if string(out) != tc.want {
				t.Fatalf("Normalize =\n%s\nwant\n%s", out, tc.want)
			}
			again, err := event.Normalize(tc.typ, out)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("Normalize(output) = %s, %v; want it unchanged", again, err)
			}
		})
	}
}

func TestNormalizeDoesNotAliasInput(t *testing.T) {
	in := []byte(`{"type":"number-opt-in","number":"a","optInType":"web"}`)
	out, err := event.Normalize(event.NumberOptIn, in)
	if err != nil {
		t.Fatal(err)
	}
	out[len(out)-2] = 'X'
	if string(in) != `{"type":"number-opt-in","number":"a","optInType":"web"}` {
		t.Fatalf("changing the output changed the input: %s", in)
	}
}

func TestNormalizeSize(t *testing.T) {
	// padded returns a valid number-opt-in body of exactly n bytes.
	padded := func(n int) []byte {
		head := `{"number":"a","optInType":"web","pad":"`
		tail := `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	at := padded(event.MaxDataSize)
	if len(at) != event.MaxDataSize {
		t.Fatalf("test body is %d bytes", len(at))
	}
	out, err := event.Normalize(event.NumberOptIn, at)
	if err != nil {
		t.Fatalf("body of exactly MaxDataSize bytes: %v", err)
	}
	if want := `{"type":"number-opt-in",` + string(at[1:]); string(out) != want {
		t.Fatalf("body of exactly MaxDataSize bytes normalized wrongly")
	}

	out, err = event.Normalize(event.NumberOptIn, padded(event.MaxDataSize+1))
	checkFieldError(t, out, err, "data", "data must be at most 262144 bytes")

	// The limit applies to the bytes as sent, whitespace included.
	spaced := append(bytes.Repeat([]byte(" "), event.MaxDataSize), `{"number":"a","optInType":"web"}`...)
	out, err = event.Normalize(event.NumberOptIn, spaced)
	checkFieldError(t, out, err, "data", "data must be at most 262144 bytes")
}

func TestTypes(t *testing.T) {
	want := []string{"message-reply", "delivery-status", "message-send", "number-opt-in"}
	if strings.Join(event.Types, ",") != strings.Join(want, ",") {
		t.Fatalf("Types = %q, want %q", event.Types, want)
	}
	for _, typ := range want {
		if !event.Valid(typ) {
			t.Errorf("Valid(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", "Message-Reply", "message_reply", "delivery-status ", "message"} {
		if event.Valid(typ) {
			t.Errorf("Valid(%q) = true", typ)
		}
	}
}

func TestSample(t *testing.T) {
	for _, typ := range event.Types {
		t.Run(typ, func(t *testing.T) {
			sample := event.Sample(typ)
			out, err := event.Normalize(typ, sample)
			if err != nil {
				t.Fatalf("Normalize(Sample): %v", err)
			}
			if !bytes.Equal(out, sample) {
				t.Fatalf("Normalize changed the sample:\n%s\n%s", sample, out)
			}
			if !bytes.HasPrefix(sample, []byte(`{"type":"`+typ+`",`)) {
				t.Errorf("sample does not start with its type: %s", sample)
			}
			var m map[string]any
			if err := json.Unmarshal(sample, &m); err != nil {
				t.Fatal(err)
			}
			if m["test"] != true {
				t.Errorf(`sample has test = %v, want true`, m["test"])
			}
			for _, s := range specs[typ] {
				if _, ok := m[s.name]; !ok {
					t.Errorf("sample lacks %s", s.name)
				}
			}
			if len(m) != len(specs[typ])+2 { // + type and test
				t.Errorf("sample has %d fields, want the %d of the schema plus type and test", len(m), len(specs[typ]))
			}

			// The caller owns the slice.
			sample[0] = 'X'
			if event.Sample(typ)[0] != '{' {
				t.Fatal("changing one Sample result changed the next")
			}
		})
	}
	if s := event.Sample("nope"); s != nil {
		t.Errorf(`Sample("nope") = %s, want nil`, s)
	}
}

func FuzzNormalize(f *testing.F) {
	for i, typ := range event.Types {
		f.Add(uint8(i), event.Sample(typ))
	}
	for _, tc := range schemaCases() {
		for i, typ := range event.Types {
			if typ == tc.typ {
				f.Add(uint8(i), []byte(tc.data))
			}
		}
	}
	f.Add(uint8(1), []byte(`{}`))
	f.Add(uint8(1), []byte(` { "type" : "delivery-status" } `))
	f.Add(uint8(2), []byte(`{"messageId":1e3,"destinationNumber":"a"}`))
	f.Add(uint8(2), []byte(`{"messageId":1,"destinationNumber":"a","x":{"a":1,"a":2},"\u0074ype":"message-send"}`))
	f.Add(uint8(3), []byte(`{"number":"a","optInType":"b","tags":{"\u00e9":"x"},"n":-0.0e-0}`))

	f.Fuzz(func(t *testing.T, i uint8, data []byte) {
		typ := event.Types[int(i)%len(event.Types)]
		out, err := event.Normalize(typ, data)
		if err != nil {
			var fe *event.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Message == "" {
				t.Fatalf("error %#v is not a complete *FieldError", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("output is not an object: %q: %v", out, err)
		}
		var got string
		if err := json.Unmarshal(m["type"], &got); err != nil || got != typ {
			t.Fatalf("output type = %s, want %q", m["type"], typ)
		}
		if len(out) > event.MaxDataSize {
			return // only the inserted "type" can make it so; the limit is on the bytes as sent
		}
		again, err := event.Normalize(typ, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Normalize(output) = %q, %v; want %q unchanged", again, err, out)
		}
	})
}

// benchBodies are realistic publish bodies: the data of a delivery-status event with tags and
// a few fields the schema does not name, and of a message-reply event with media.
var benchBodies = []struct {
	name string
	typ  string
	data string
}{
	{"delivery-status", event.DeliveryStatus, `{"destinationNumber":"+15555550123","messageId":1734562,"status":"delivered",` +
		`"externalId":"appt-2026-0210-0915","tags":{"campaign":"appointment-reminders","clinic":"north"},` +
		`"senderName":"Acme Dental","timestamp":"2026-02-10T03:37:28.425Z","segments":2,` +
		`"price":{"amount":"0.0079","currency":"USD"},"errorCode":null}`},
	{"message-reply", event.MessageReply, `{"fromNumber":"+15555550123","toNumber":"+15555550100",` +
		`"message":"Yes, please confirm my appointment. See the photo of my insurance card.","replyId":48213,` +
		`"messageId":1734562,"externalId":"appt-2026-0210-0915",` +
		`"mediaUrls":["https://example.com/media/receipt.jpg","https://example.com/media/card-front.jpg"],` +
		`"tags":{"campaign":"appointment-reminders"},"timestamp":"2026-02-10T03:37:28.425Z"}`},
}

func BenchmarkNormalize(b *testing.B) {
	for _, bb := range benchBodies {
		data := []byte(bb.data)
		if _, err := event.Normalize(bb.typ, data); err != nil {
			b.Fatalf("%s: %v", bb.name, err)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := event.Normalize(bb.typ, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
