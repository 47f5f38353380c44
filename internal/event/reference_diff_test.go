package event_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/internal/event"
)

// diffTypes are the event types every input is normalized as: all of Types, and two that
// are not.
var diffTypes = append(append([]string(nil), event.Types...), "", "message-delete")

// referenceSeeds returns every body the other tests of this package use, and bodies aimed at
// the corners of a hand-written JSON scanner.
func referenceSeeds() [][]byte {
	var seeds []string
	for _, typ := range event.Types {
		seeds = append(seeds, string(event.Sample(typ)))
	}
	for _, tc := range schemaCases() {
		seeds = append(seeds, tc.data)
	}
	for _, tc := range normalizeErrorTests {
		seeds = append(seeds, tc.data)
	}
	for _, tc := range normalizeOutputTests {
		seeds = append(seeds, tc.data, tc.want)
	}
	for _, bb := range benchBodies {
		seeds = append(seeds, bb.data)
	}
	seeds = append(seeds,
		// The FuzzNormalize seeds.
		`{}`,
		` { "type" : "delivery-status" } `,
		`{"messageId":1e3,"destinationNumber":"a"}`,
		`{"messageId":1,"destinationNumber":"a","x":{"a":1,"a":2},"\u0074ype":"message-send"}`,
		`{"number":"a","optInType":"b","tags":{"\u00e9":"x"},"n":-0.0e-0}`,

		// Keys that decode alike: escapes, lone and misordered surrogates (U+FFFD), pairs.
		`{"\ud800":1,"\udc00":2}`,
		`{"\ufffd":1,"\ud800":2}`,
		`{"\uDBFF\uDFFF":1,"`+"\U0010FFFF"+`":2}`,
		`{"\ud800\udc00":1,"`+"\U00010000"+`":2}`,
		`{"\ud800\u0041":1,"\ufffdA":2}`,
		`{"\udc00\ud800":1,"\ufffd\ufffd":2}`,
		`{"\ud800\ud800\udc00":1,"\ufffd`+"\U00010000"+`":2}`,
		`{"\ud800\\u0041":1,"\ufffd\\u0041":2}`,
		`{"a\/b":1,"a/b":2}`,
		`{"\b\f\n\r\t\"\\":1,"\u0008\u000c\u000a\u000d\u0009\u0022\u005c":2}`,
		`{"":1,"":2}`,
		`{"":1,"\u0000":2,"\u0000":3}`,
		`{"number":"a","optInType":"b","\u0074\u0061\u0067\u0073":{"x":"y"}}`,
		`{"number":"a","optInType":"b","tags":{"x":"y","\u0078":1}}`,
		`{"number":"a","optInType":"b","tags":{"\ud800":"y","\udfff":"z"}}`,
		`{"number":"a","optInType":"b","tags":{"é":1}}`,
		`{"number":"a","optInType":"b","tags":{"":1}}`,
		`{"number":"a","optInType":"b","tags":{"a\"b":1}}`,
		`{"number":"a","optInType":"b","tags":{"a":"}","b":"{\"","c":{"d":["]"]},"e":2}}`,
		`{"number":"a","optInType":"b","tags":{"a":1,"a":"x"}}`,
		`{"number":"a","optInType":"b","tags" : { "a" : "x" , "b" : [ ] } }`,

		// The type and the status spelled with escapes, or nearly right.
		`{"type":"delivery\u002dstatus","destinationNumber":"a","messageId":1,"status":"sen\u0074"}`,
		`{"type":"delivery-status\u0000","destinationNumber":"a","messageId":1,"status":"sent"}`,
		`{"type":"delivery-status","destinationNumber":"a","messageId":1,"status":"sent\ud800"}`,
		`{"\u0074ype":"number-opt-in","number":"a","optInType":"b"}`,
		`{"type":"\u006eumber-opt-in","number":"a","optInType":"b"}`,
		`{"type":["number-opt-in"],"number":"a","optInType":"b"}`,
		`{"type":{"type":"number-opt-in"},"number":"a","optInType":"b"}`,
		`{"destinationNumber":"\u0000","messageId":1,"status":"sent"}`,
		`{"destinationNumber":"\"","messageId":1,"status":"sent"}`,
		`{"destinationNumber":"","messageId":1,"status":"sent","externalId":""}`,

		// Strings: escapes, control characters, UTF-8.
		`{"a":"\x"}`,
		`{"a":"\x1234"}`,
		`{"a":"\u00e9\u00E9\uABCD\uabcd\uFfFf"}`,
		`{"a":"\u12"}`,
		`{"a":"\u12G4"}`,
		`{"a":"\u"}`,
		`{"a":"\`,
		`{"a":"\'"}`,
		`{"a":"\U0041"}`,
		"{\"a\":\"\t\"}",
		"{\"a\":\"\x00\"}",
		"{\"a\":\"\x1f\"}",
		"{\"a\":\"\x7f\"}",
		`{"a":"\u0009\u001f\u007F"}`,
		"{\"a\":\"\xff\"}",
		"{\"a\":\"\xff\"",
		"{\"a\":\"\xff\",\"a\":1}",
		"{\"\xff\":1,\"\xfe\":2}",
		"{\xff}",
		"{\"a\":\xff}",
		"\xef\xbb\xbf{}",
		"{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xc0\xaf\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}",
		"{\"a\":\"\xe2\x82\"}",
		"{\"a\":\"\xe2\x82\xac\xf0\x9f\x91\x8b\"}",
		"{\"a\":\"\xef\xbf\xbd\"}",

		// Numbers.
		`{"a":01}`, `{"a":-}`, `{"a":-01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`,
		`{"a":+1}`, `{"a":1.5e+10}`, `{"a":-0}`, `{"a":0e0}`, `{"a":1E-0}`, `{"a":0x10}`,
		`{"a":1_000}`, `{"a":00}`, `{"a":1.2.3}`, `{"a":--1}`, `{"a":1e5e5}`, `{"a":-.1}`,
		`{"messageId":9223372036854775807,"destinationNumber":"a"}`,
		`{"messageId":-9223372036854775808,"destinationNumber":"a"}`,
		`{"messageId":9223372036854775808,"destinationNumber":"a"}`,
		`{"messageId":-9223372036854775809,"destinationNumber":"a"}`,
		`{"messageId":9999999999999999999,"destinationNumber":"a"}`,
		`{"messageId":1000000000000000000,"destinationNumber":"a"}`,
		`{"messageId":-0,"destinationNumber":"a"}`,
		`{"messageId":-0.0,"destinationNumber":"a"}`,
		`{"messageId":0E0,"destinationNumber":"a"}`,
		`{"messageId": 12 ,"destinationNumber":"a"}`,

		// Literals and whitespace.
		`{"a":tru}`, `{"a":nul}`, `{"a":truex}`, `{"a":True}`, `{"a":NaN}`, `{"a":Infinity}`,
		`{"a":t}`, `{"a":fals}`, `{"a":nulll}`, `{"a":true false}`, `{"a":null,}`,
		"{\v}", "{\f}", "{\u00a0}", "\t\r\n {\t\r\n \"a\"\t\r\n :\t\r\n 1\t\r\n }\t\r\n ",
		"{ }", "{\"a\":[ ]}", "{\"a\":[ 1 , [ ] , { } ]}",

		// Structure.
		`{`, `}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{,}`, `{"a":1,,"b":2}`, `{"a":[1,]}`, `{"a":[,1]}`,
		`{"a":[1 2]}`, `{"a":{"b"}}`, `{"a":{"b":1,}}`, `{"a":]`, `{"a":[}`, `{"a":{]}`, `{1:2}`,
		`{"a":1}}`, `{"a":1}]`, `[{}]`, `{} x`, `{}{}`, `{"a":[[[[]]]]}`,
		`{"number":"a","optInType":"b","mediaUrls":["a\"]",1]}`,
		`{"fromNumber":"a","toNumber":"b","message":"c","mediaUrls":[ "a" , 2 ]}`,
		`{"fromNumber":"a","toNumber":"b","message":"c","mediaUrls":["a",["b"],"c"]}`,
		`{"fromNumber":"a","toNumber":"b","message":"c","mediaUrls":["a","]",{"]":"["},"c"]}`,
		`{"fromNumber":"a","toNumber":"b","message":"c","mediaUrls":["\\",""]}`,
		`{"fromNumber":"a","toNumber":"b","message":"c","mediaUrls":[]}`,
		`{"fromNumber":"a","toNumber":"b","message":"c","replyId":1.0}`,
	)
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// bigInputs are bodies too large to seed the fuzzer with: at the size limit, and at
// encoding/json's nesting limit.
func bigInputs() [][]byte {
	pad := func(n int) []byte {
		head := `{"number":"a","optInType":"web","pad":"`
		tail := `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	// nested is a number-opt-in body whose arrays or objects nest depth deep, the body
	// itself included.
	nested := func(depth int, open, inner, close string) []byte {
		return []byte(`{"number":"a","optInType":"web","x":` + strings.Repeat(open, depth-1) + inner + strings.Repeat(close, depth-1) + `}`)
	}
	manyMembers := func(n int, dup, dupTag bool) []byte {
		var b strings.Builder
		b.WriteString(`{"number":"a","optInType":"web"`)
		for i := range n {
			b.WriteString(`,"k` + strings.Repeat("z", i%7) + string(rune('a'+i%26)) + string(rune('A'+i/26%26)) + string(rune('0'+i/676%10)) + `":1`)
		}
		if dup {
			b.WriteString(`,"k` + `aA0":2`)
		}
		b.WriteString(`,"tags":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"t` + string(rune('a'+i%26)) + string(rune('A'+i/26%26)) + string(rune('0'+i/676%10)) + `":"v"`)
		}
		if dupTag {
			b.WriteString(`,"taA0":"w"`)
		}
		b.WriteString(`}}`)
		return []byte(b.String())
	}
	return [][]byte{
		pad(event.MaxDataSize),
		pad(event.MaxDataSize + 1),
		append(bytes.Repeat([]byte(" "), event.MaxDataSize), `{"number":"a","optInType":"web"}`...),
		append(bytes.Repeat([]byte(" "), event.MaxDataSize-32), `{"number":"a","optInType":"web"}`...),
		nested(9999, "[", "", "]"),
		nested(10000, "[", "", "]"),
		nested(10001, "[", "", "]"),
		nested(10000, `{"a":`, "1", "}"),
		nested(10001, `{"a":`, "1", "}"),
		// Arrays and objects alternating: the body, 4999 pairs, and one more array make 10000.
		[]byte(`{"x":` + strings.Repeat(`[{"a":`, 4999) + `[]` + strings.Repeat(`}]`, 4999) + `}`),
		[]byte(`{"x":` + strings.Repeat(`[{"a":`, 4999) + `[[]]` + strings.Repeat(`}]`, 4999) + `}`),
		[]byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001)),
		[]byte("{" + strings.Repeat(" ", 1000) + "}"),
		manyMembers(10, false, false),
		manyMembers(10, false, true),
		manyMembers(16, false, false),
		manyMembers(17, false, false),
		manyMembers(17, true, true),
		manyMembers(17, false, true),
		manyMembers(3000, false, false),
		manyMembers(3000, true, true),
		manyMembers(3000, false, true),
	}
}

// checkSameAsReference fails t unless Normalize and the reference agree on typ and data:
// same bytes, or the same error.
func checkSameAsReference(t *testing.T, typ string, data []byte) {
	t.Helper()
	in := bytes.Clone(data)
	got, gotErr := event.Normalize(typ, data)
	if !bytes.Equal(in, data) {
		t.Fatalf("Normalize(%q, %q) changed its input", typ, in)
	}
	want, wantErr := event.NormalizeReference(typ, data)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("Normalize(%q, %q) = %q, %v\nreference       = %q, %v", typ, data, got, gotErr, want, wantErr)
	}
	if wantErr != nil {
		var g, w *event.FieldError
		if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) {
			t.Fatalf("Normalize(%q, %q): errors %#v and %#v are not both *FieldError", typ, data, gotErr, wantErr)
		}
		if g.Field != w.Field || g.Message != w.Message || gotErr.Error() != wantErr.Error() {
			t.Fatalf("Normalize(%q, %q) error = {%q, %q}\nreference error       = {%q, %q}", typ, data, g.Field, g.Message, w.Field, w.Message)
		}
		if got != nil {
			t.Fatalf("Normalize(%q, %q) returned %q along with an error", typ, data, got)
		}
		return
	}
	if got == nil || !bytes.Equal(got, want) {
		t.Fatalf("Normalize(%q, %q) =\n%q\nreference =\n%q", typ, data, got, want)
	}
	if len(data) > 0 && len(got) > 0 && &got[:cap(got)][cap(got)-1] == &data[:cap(data)][cap(data)-1] {
		t.Fatalf("Normalize(%q, %q) returned a slice of its input", typ, data)
	}
}

func TestNormalizeMatchesReference(t *testing.T) {
	inputs := append(referenceSeeds(), bigInputs()...)
	for _, data := range inputs {
		for _, typ := range diffTypes {
			checkSameAsReference(t, typ, data)
			// Every prefix of the small inputs, too: truncation is where a scanner slips.
			if len(data) < 512 {
				for n := range len(data) {
					checkSameAsReference(t, typ, data[:n])
				}
			}
		}
	}
}

func FuzzNormalizeMatchesReference(f *testing.F) {
	for _, data := range referenceSeeds() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range diffTypes {
			checkSameAsReference(t, typ, data)
		}
	})
}
