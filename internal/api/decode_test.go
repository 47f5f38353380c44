package api

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/event"
)

// The tests in this file check the one-pass decoding of request bodies (body.go,
// jsonsplit.go) against the encoding/json decoding it replaced (decode_reference_test.go):
// for every body, the same error, or the same members and the same events.

// clockedServer is a server whose clock stands still, so that events decoded twice compare
// equal.
func clockedServer() *Server {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return New(Config{Now: func() time.Time { return now }})
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// checkObject checks o and err, the new decoding of a body into the members allowed, against
// ro and rerr, the reference's.
func checkObject(t *testing.T, body []byte, allowed []string, o object, err error, ro refObject, rerr error) {
	t.Helper()
	if errText(err) != errText(rerr) {
		t.Fatalf("body %q, fields %v:\n got error %s\nwant error %s", body, allowed, errText(err), errText(rerr))
	}
	if err != nil {
		return
	}
	for _, name := range allowed {
		got, want := o.value(name), ro[name]
		if o.has(name) != ro.has(name) || !bytes.Equal(got, want) {
			t.Fatalf("body %q: member %s is %q, want %q", body, name, got, want)
		}
		s, err := o.str(name)
		rs, rerr := ro.str(name)
		if s != rs || errText(err) != errText(rerr) {
			t.Fatalf("body %q: str(%s) = %q, %s; want %q, %s", body, name, s, errText(err), rs, errText(rerr))
		}
		typ, ok := o.oneOf(name, event.Types)
		if rok := rerr == nil && event.Valid(rs); typ != rs && rok || ok != rok {
			t.Fatalf("body %q: oneOf(%s) = %q, %v; want %q, %v", body, name, typ, ok, rs, rok)
		}
	}
}

// checkMembers checks parseObject against the reference for the field lists of every handler.
func checkMembers(t *testing.T, body []byte) {
	t.Helper()
	for _, allowed := range [][]string{accountFields, webhookPatchFields, eventFields, batchFields} {
		o, err := parseObject(body, allowed)
		ro, rerr := refParseObject(body, allowed)
		checkObject(t, body, allowed, o, err, ro, rerr)
	}
}

// checkEvent checks the decoding of a POST /v3/events body.
func checkEvent(t *testing.T, s *Server, body []byte) {
	t.Helper()
	o, err := parseObject(body, eventFields)
	ro, rerr := refParseObject(body, eventFields)
	if err != nil || rerr != nil {
		checkObject(t, body, eventFields, o, err, ro, rerr)
		return
	}
	e, err := s.newEvent(o, "")
	re, rerr := s.newEvent(ro.object(eventFields), "")
	if errText(err) != errText(rerr) {
		t.Fatalf("body %q:\n got error %s\nwant error %s", body, errText(err), errText(rerr))
	}
	e.ID, re.ID = "", ""
	if !reflect.DeepEqual(e, re) {
		t.Fatalf("body %q:\n got event %+v\nwant event %+v", body, e, re)
	}
}

// checkBatch checks the decoding of a POST /v3/events/batch body: the items found, the
// members of each, and the events or errors they make.
func checkBatch(t *testing.T, s *Server, body []byte) {
	t.Helper()
	b, err := s.decodeBatch(body)
	rb, rerr := s.refDecodeBatch(body)
	if errText(err) != errText(rerr) {
		t.Fatalf("body %q:\n got error %s\nwant error %s", body, errText(err), errText(rerr))
	}
	if err != nil {
		return
	}
	if !slices.Equal(b.index, rb.index) || !reflect.DeepEqual(b.results, rb.results) {
		t.Fatalf("body %q:\n got index %v, results %+v\nwant index %v, results %+v", body, b.index, b.results, rb.index, rb.results)
	}
	if len(b.events) != len(rb.events) {
		t.Fatalf("body %q: %d events, want %d", body, len(b.events), len(rb.events))
	}
	for k, e := range b.events {
		re := rb.events[k]
		e.ID, re.ID = "", ""
		if !reflect.DeepEqual(e, re) {
			t.Fatalf("body %q:\n got event %+v\nwant event %+v", body, e, re)
		}
	}

	o, _ := parseObject(body, batchFields)
	items := elements(nil, o.value("events"))
	ritems, _ := refItems(body)
	if len(items) != len(ritems) {
		t.Fatalf("body %q: %d items, want %d", body, len(items), len(ritems))
	}
	for i, item := range items {
		if !bytes.Equal(item, ritems[i]) {
			t.Fatalf("body %q: item %d is %q, want %q", body, i, item, ritems[i])
		}
		eo := newObject(eventFields)
		err := eo.parse(item)
		ro, rerr := refParseObject(ritems[i], eventFields)
		checkObject(t, item, eventFields, eo, err, ro, rerr)
	}
}

func checkBody(t *testing.T, s *Server, body []byte) {
	t.Helper()
	checkMembers(t, body)
	checkEvent(t, s, body)
	checkBatch(t, s, body)
}

const sendData = `{"messageId":123,"destinationNumber":"+15550001111","message":"hello","tags":{"a":"b"}}`

// itemCases are event objects, and values that are not, to be sent alone and in batches.
var itemCases = []string{
	`{"accountId":1,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"k-1"}`,
	` { "accountId" : 1 , "event" : "message-send" , "data" : { "messageId" : 1 , "destinationNumber" : "+1" , "tags" : { "a" : "b" } } , "idempotencyKey" : null } `,
	"{\n\t\"accountId\"\r\n:\t7,\"event\":\"delivery-status\",\"data\":{\"destinationNumber\":\"+1\",\"messageId\":2,\"status\":\"sent\"}\n}",
	`{"accountId":1,"event":"message-reply","data":{"fromNumber":"a","toNumber":"b","message":"c","mediaUrls":["u1","u2"]}}`,
	`{"accountId":1,"event":"number-opt-in","data":{"number":"a","optInType":"b"}}`,

	// Escapes in keys and values.
	`{"acc\u006funtId":1,"\u0065vent":"message\u002dsend","d\u0061ta":` + sendData + `}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"\ud800"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"\udc00\ud800x"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"\u0000"}`,
	`{"accountId":1,"event":"message-send\u0000","data":` + sendData + `}`,
	`{"accountId":1,"event":"message-send","data":{"messageId":1,"destinationNumber":"\"]}\\","message":"[{"}}`,
	`{"accountId":1,"event":"message-send","data":{"messageId":1,"destinationNumber":"\\\"","x":"\\"}}`,
	`{"\\":1}`,
	`{"\"":1,"event":"x"}`,
	`{"a\\":1}`,

	// Invalid UTF-8, which encoding/json turns into U+FFFD.
	"{\"accountId\":1,\"event\":\"message-send\",\"data\":" + sendData + ",\"idempotencyKey\":\"a\xffb\"}",
	"{\"accountId\":1,\"event\":\"message-send\xff\",\"data\":" + sendData + "}",
	"{\"accountId\xff\":1}",
	"{\"accountId\":1,\"event\":\"message-send\",\"data\":{\"messageId\":1,\"destinationNumber\":\"\xc3\"}}",
	"{\"\xed\xa0\x80\":1}",
	`{"\ufffd":1}`,

	// Duplicate keys: the last one counts.
	`{"accountId":1,"accountId":2,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":"x","accountId":2,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":1,"acc\u006funtId":-1,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"a","idempotencyKey":null}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":null,"idempotencyKey":""}`,
	`{"accountId":1,"event":"message-send","data":{},"data":` + sendData + `}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"data":null}`,

	// Unknown fields: the first in document order is named.
	`{"accountId":1,"x":1,"y":2,"event":"message-send","data":{}}`,
	`{"accountId":1,"event":"message-send","data":{},"zzz":1,"aaa":2,"mmm":3}`,
	`{"":1}`,
	`{"AccountId":1}`,
	`{"events":[]}`,

	// accountId.
	`{"accountId":0,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":-1,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":-0,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":1.0,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":1e2,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":1E+2,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":-0.5e-3,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":4611686018427387904,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":4611686018427387905,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":9223372036854775807,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":9223372036854775808,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":-9223372036854775809,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":123456789012345678901234567890,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":"1","event":"message-send","data":` + sendData + `}`,
	`{"accountId":true,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":null,"event":"message-send","data":` + sendData + `}`,
	`{"accountId":[1],"event":"message-send","data":` + sendData + `}`,

	// event.
	`{"accountId":1,"event":"message-delete","data":{}}`,
	`{"accountId":1,"event":"","data":{}}`,
	`{"accountId":1,"event":1,"data":{}}`,
	`{"accountId":1,"event":null,"data":{}}`,
	`{"accountId":1,"event":{"a":"message-send"},"data":{}}`,

	// idempotencyKey.
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":""}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"` + strings.Repeat("k", 255) + `"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"` + strings.Repeat("k", 256) + `"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"` + strings.Repeat("é", 255) + `"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":"` + strings.Repeat(`\u00e9`, 256) + `"}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":5}`,
	`{"accountId":1,"event":"message-send","data":` + sendData + `,"idempotencyKey":false}`,

	// data.
	`{"accountId":1,"event":"message-send"}`,
	`{"accountId":1,"data":{}}`,
	`{"event":"message-send","data":{}}`,
	`{}`,
	`{ }`,
	`{"accountId":1,"event":"message-send","data":null}`,
	`{"accountId":1,"event":"message-send","data":[]}`,
	`{"accountId":1,"event":"message-send","data":"{}"}`,
	`{"accountId":1,"event":"message-send","data":12.5e-1}`,
	`{"accountId":1,"event":"message-send","data":{}}`,
	`{"accountId":1,"event":"message-send","data":{"messageId":1,"destinationNumber":"x","tags":{"a":{"b":[1,{"c":[]}]}}}}`,
	`{"accountId":1,"event":"message-send","data":{"messageId":1,"destinationNumber":"x","n":[-0,0.5,1e10,-2E-3,true,false,null,"s",[],{}]}}`,
	`{"accountId":1,"event":"message-send","data":{"messageId":1,"destinationNumber":"x","messageId":2}}`,
	`{"accountId":1,"event":"message-send","data":{ "messageId" : 1 , "destinationNumber" : "x" }  }`,
	`{"accountId":1,"event":"message-send","data":` + `{"messageId":1,"destinationNumber":"x","d":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}}`,

	// Not objects.
	`[]`, `[{}]`, `1`, `-1.5e3`, `"x"`, `"{}"`, `true`, `false`, `null`,
}

// bodyCases are whole bodies beyond the items alone or in a batch.
var bodyCases = []string{
	"", " ", "\n\t\r ", "null", "[]", "1", `"events"`, "{", "}", "{}", `{"events"}`, `{"events":}`,
	`{"events":[`, `{"events":[]`, `{"events":[]]`, `{"events":[],}`, `{"events":[,]}`,
	`{"events":[1,]}`, `{"events":[{"a":1,}]}`, `{"events":[{"a" 1}]}`, `{"events":[{'a':1}]}`,
	`{"events":[]} x`, `{"events":[]}{}`, `{"events":[]} ]`, `{"events":[]}]`, `{"events":[]}` + "\x00",
	`{"events":null}`, `{"events":{}}`, `{"events":"[]"}`, `{"events":1}`, `{"events":true}`,
	`{"events":[]}`, `{"events":[ ]}`, `{"events":[null]}`, `{"events":[[]]}`,
	`{"events":[1, "x", null, [], {}, true, 2.5e3]}`,
	`{"events":[],"events":[{}]}`, `{"events":[{}],"events":[]}`, `{"events":[{}],"events":null}`,
	`{"events":[{}],"\u0065vents":[{"accountId":1}]}`,
	`{"Events":[]}`, `{"events":[],"x":1}`, `{"x":1,"events":[]}`, `{"b":1,"a":2,"events":[]}`,
	"{\"events\":[],\"\xff\":1}", `{"events":[],"\ud800":1}`, `{"ev\u0000ents":[]}`,
	"\xef\xbb\xbf" + `{"events":[]}`,
	"\u00a0" + `{"events":[{}]}` + "\u0085",
	"\v\f{\"events\":[{}]}\v",
	"\u2028" + `{"events":[{}]}`,
	"{\v\"events\":[]}",
	`{"events":[{"accountId":1}]}` + "\u3000",
	`{"events":["\xff"]}`,
	"{\"events\":[\"\\u12\"]}", `{"events":["\x"]}`, "{\"events\":[\"a\nb\"]}",
	`{"events":[01]}`, `{"events":[-]}`, `{"events":[1.]}`, `{"events":[.5]}`, `{"events":[1e]}`, `{"events":[+1]}`,
	`{"events":[tru]}`, `{"events":[nul]}`, `{"events":[truex]}`,
	`{"events":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`{"events":[` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `]}`,
}

// batchOf returns a batch body of the items.
func batchOf(items ...string) string {
	return `{"events":[` + strings.Join(items, ",") + `]}`
}

// corpus returns every body the tests decode.
func corpus() []string {
	bodies := slices.Clone(bodyCases)
	for _, item := range itemCases {
		bodies = append(bodies, item, batchOf(item), batchOf(itemCases[0], item, itemCases[1]))
	}
	bodies = append(bodies,
		batchOf(itemCases...),
		"\n { \"events\" :\n [\n  "+strings.Join(itemCases[:5], " ,\n  ")+"\n ]\n}\n",
	)
	return bodies
}

func TestDecodeMatchesReference(t *testing.T) {
	s := clockedServer()
	for _, body := range corpus() {
		checkBody(t, s, []byte(body))
	}
	for _, n := range []int{MaxBatch, MaxBatch + 1} {
		checkBatch(t, s, []byte(batchOf(slices.Repeat([]string{itemCases[1]}, n)...)))
	}
}

// The old code named any of several unknown fields; the new one names the first.
func TestDecodeUnknownFieldOrder(t *testing.T) {
	_, err := parseObject([]byte(`{"zzz":1,"email":"a@b.c","aaa":2}`), accountFields)
	if want := `unknown field "zzz"; allowed fields: email, name`; errText(err) != want {
		t.Errorf("got %s, want %s", errText(err), want)
	}
}

func FuzzPublishDecode(f *testing.F) {
	for _, body := range corpus() {
		f.Add([]byte(body))
	}
	s := clockedServer()
	f.Fuzz(func(t *testing.T, body []byte) {
		checkBody(t, s, body)
	})
}

func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBatch(100)
	s := clockedServer()
	if _, err := s.decodeBatch(body); err != nil {
		b.Fatal(err)
	}
	b.Run("old", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			s.refDecodeBatch(body)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			s.decodeBatch(body)
		}
	})
}
