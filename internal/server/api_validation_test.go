package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/internal/config"
)

// validWebhook is a body every webhook case starts from.
func validWebhook() map[string]any {
	return map[string]any{"event": "delivery-status", "url": "https://example.com/hooks", "secret": "s3cret"}
}

// webhookCase is one invalid webhook body: set replaces members of the valid body (a nil
// value is sent as JSON null), drop removes some, raw replaces the whole body.
type webhookCase struct {
	name  string
	set   map[string]any
	drop  []string
	raw   string
	field string   // the field the message must name
	also  []string // more words the message must contain (what is allowed)
	// createOnly: only POST checks it (PATCH takes any subset).
	createOnly bool
}

func (c webhookCase) body() any {
	if c.raw != "" {
		return c.raw
	}
	b := validWebhook()
	maps.Copy(b, c.set)
	for _, k := range c.drop {
		delete(b, k)
	}
	return b
}

var webhookCases = []webhookCase{
	{name: "missing event", drop: []string{"event"}, field: "event", createOnly: true},
	{name: "missing url", drop: []string{"url"}, field: "url", createOnly: true},
	{name: "missing secret", drop: []string{"secret"}, field: "secret", createOnly: true},

	{name: "event unknown", set: map[string]any{"event": "message-received"}, field: "event",
		also: []string{"message-reply", "delivery-status", "message-send", "number-opt-in"}},
	{name: "event empty", set: map[string]any{"event": ""}, field: "event"},
	{name: "event number", set: map[string]any{"event": 1}, field: "event"},
	{name: "event null", set: map[string]any{"event": nil}, field: "event"},

	{name: "url relative", set: map[string]any{"url": "/app/hooks"}, field: "url", also: []string{"http", "https"}},
	{name: "url ftp", set: map[string]any{"url": "ftp://example.com/hooks"}, field: "url"},
	{name: "url no host", set: map[string]any{"url": "https:///hooks"}, field: "url"},
	{name: "url not a URL", set: map[string]any{"url": "example.com/hooks"}, field: "url"},
	{name: "url empty", set: map[string]any{"url": ""}, field: "url"},
	{name: "url too long", set: map[string]any{"url": "https://example.com/" + strings.Repeat("a", 2049-len("https://example.com/"))}, field: "url", also: []string{"2048"}},
	{name: "url number", set: map[string]any{"url": 42}, field: "url"},
	{name: "url null", set: map[string]any{"url": nil}, field: "url"},
	{name: "url bad port", set: map[string]any{"url": "https://example.com:99999/h"}, field: "url"},

	{name: "secret empty", set: map[string]any{"secret": ""}, field: "secret", also: []string{"1024"}},
	{name: "secret too long", set: map[string]any{"secret": strings.Repeat("s", 1025)}, field: "secret", also: []string{"1024"}},
	{name: "secret number", set: map[string]any{"secret": 123456}, field: "secret"},
	{name: "secret null", set: map[string]any{"secret": nil}, field: "secret"},

	{name: "alertEmail invalid", set: map[string]any{"alertEmail": "not-an-email"}, field: "alertEmail"},
	{name: "alertEmail with name", set: map[string]any{"alertEmail": "Ops <ops@acme.test>"}, field: "alertEmail"},
	{name: "alertEmail two at", set: map[string]any{"alertEmail": "a@b@acme.test"}, field: "alertEmail"},
	{name: "alertEmail number", set: map[string]any{"alertEmail": 5}, field: "alertEmail"},

	{name: "sendAlertEmail string", set: map[string]any{"sendAlertEmail": "true"}, field: "sendAlertEmail"},
	{name: "skipErrors string", set: map[string]any{"skipErrors": "false"}, field: "skipErrors"},
	{name: "retryOnError string", set: map[string]any{"retryOnError": "true"}, field: "retryOnError"},
	{name: "retryOnError number", set: map[string]any{"retryOnError": 1}, field: "retryOnError"},
	{name: "sendAlertEmail null", set: map[string]any{"sendAlertEmail": nil}, field: "sendAlertEmail"},

	{name: "skipErrorCodes not array", set: map[string]any{"skipErrorCodes": "404"}, field: "skipErrorCodes"},
	{name: "skipErrorCodes object", set: map[string]any{"skipErrorCodes": map[string]any{"404": true}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes null", set: map[string]any{"skipErrorCodes": nil}, field: "skipErrorCodes"},
	{name: "skipErrorCodes 99", set: map[string]any{"skipErrorCodes": []any{"99"}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes 600", set: map[string]any{"skipErrorCodes": []any{"404", "600"}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes abcd", set: map[string]any{"skipErrorCodes": []any{"abcd"}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes 4 digits", set: map[string]any{"skipErrorCodes": []any{"4040"}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes 4-digit number", set: map[string]any{"skipErrorCodes": []any{4040}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes fraction", set: map[string]any{"skipErrorCodes": []any{404.5}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes bool", set: map[string]any{"skipErrorCodes": []any{true}}, field: "skipErrorCodes"},
	{name: "skipErrorCodes padded", set: map[string]any{"skipErrorCodes": []any{" 404"}}, field: "skipErrorCodes"},

	{name: "maxThroughputPerMinute 0", set: map[string]any{"maxThroughputPerMinute": 0}, field: "maxThroughputPerMinute", also: []string{"1000000"}},
	{name: "maxThroughputPerMinute too big", set: map[string]any{"maxThroughputPerMinute": 1000001}, field: "maxThroughputPerMinute"},
	{name: "maxThroughputPerMinute negative", set: map[string]any{"maxThroughputPerMinute": -1}, field: "maxThroughputPerMinute"},
	{name: "maxThroughputPerMinute fraction", set: map[string]any{"maxThroughputPerMinute": 1.5}, field: "maxThroughputPerMinute"},
	{name: "maxThroughputPerMinute string", set: map[string]any{"maxThroughputPerMinute": "600"}, field: "maxThroughputPerMinute"},
	{name: "maxThroughputPerMinute null", set: map[string]any{"maxThroughputPerMinute": nil}, field: "maxThroughputPerMinute"},

	{name: "unknown field", set: map[string]any{"callbackUrl": "https://example.com"}, field: "callbackUrl"},
	{name: "secret in other case", set: map[string]any{"Secret": "x"}, field: "Secret"},
	{name: "malformed JSON", raw: `{"event": "delivery-status", "url": `, field: "JSON"},
	{name: "trailing garbage", raw: `{"event":"delivery-status","url":"https://example.com/h","secret":"s"} x`, field: "JSON"},
	{name: "JSON array", raw: `[{"event":"delivery-status","url":"https://example.com/h","secret":"s"}]`, field: "JSON", also: []string{"object"}},
	{name: "JSON string", raw: `"hello"`, field: "JSON", also: []string{"object"}},
	{name: "JSON null", raw: `null`, field: "JSON", also: []string{"object"}},
	{name: "empty body", raw: ` `, field: "JSON", also: []string{"object"}},
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	ts := start(t)
	_, key := ts.createAccount(t, "valid@acme.test")
	id := ts.createWebhook(t, key, validWebhook())
	_, before, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d", id), key, nil)

	for _, c := range webhookCases {
		t.Run("POST/"+c.name, func(t *testing.T) {
			status, raw, h := ts.callRaw(t, "POST", "/v3/webhooks", key, "application/json", c.body())
			checkError(t, status, raw, h, 400, append([]string{c.field}, c.also...)...)
		})
		if c.createOnly {
			continue
		}
		t.Run("PATCH/"+c.name, func(t *testing.T) {
			body := c.body()
			if c.raw == "" {
				// Only the offending member: a PATCH takes any subset.
				body = maps.Clone(c.set)
			}
			status, raw, h := ts.callRaw(t, "PATCH", fmt.Sprintf("/v3/webhooks/%d", id), key, "application/json", body)
			checkError(t, status, raw, h, 400, append([]string{c.field}, c.also...)...)
		})
	}

	// Nothing was stored by any of those.
	_, m, _ := ts.call(t, "GET", "/v3/webhooks", key, nil)
	if got := ids(rowsOf(t, m, 0, 25, 1)); len(got) != 1 || got[0] != id {
		t.Errorf("webhooks after invalid requests = %v", got)
	}
	_, after, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d", id), key, nil)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("webhook changed by invalid PATCHes: %v, was %v", after, before)
	}
}

// TestWebhookLimits checks the values just inside each limit are taken.
func TestWebhookLimits(t *testing.T) {
	t.Parallel()
	ts := start(t)
	_, key := ts.createAccount(t, "limits@acme.test")
	longURL := "https://example.com/" + strings.Repeat("a", 2048-len("https://example.com/"))
	for _, tc := range []struct {
		name  string
		set   map[string]any
		check func(d map[string]any) bool
	}{
		{"url of 2048 characters", map[string]any{"url": longURL}, func(d map[string]any) bool { return d["url"] == longURL }},
		{"http url with port", map[string]any{"url": "http://example.com:8080/h?a=b#c"}, nil},
		{"secret of 1024 characters", map[string]any{"secret": strings.Repeat("s", 1024)}, nil},
		{"secret of 1024 multibyte characters", map[string]any{"secret": strings.Repeat("é", 1024)}, nil},
		{"secret of 1 character", map[string]any{"secret": "s"}, nil},
		{"maxThroughputPerMinute 1", map[string]any{"maxThroughputPerMinute": 1}, func(d map[string]any) bool { return d["maxThroughputPerMinute"] == float64(1) }},
		{"maxThroughputPerMinute 1000000", map[string]any{"maxThroughputPerMinute": 1000000}, func(d map[string]any) bool { return d["maxThroughputPerMinute"] == float64(1000000) }},
		{"skipErrorCodes bounds", map[string]any{"skipErrorCodes": []any{100, "599"}}, func(d map[string]any) bool {
			return reflect.DeepEqual(d["skipErrorCodes"], []any{"100", "599"})
		}},
		{"alertEmail null", map[string]any{"alertEmail": nil}, func(d map[string]any) bool { return d["alertEmail"] == nil }},
		{"alertEmail plus address", map[string]any{"alertEmail": "ops+hooks@mail.acme.test"}, func(d map[string]any) bool {
			return d["alertEmail"] == "ops+hooks@mail.acme.test"
		}},
		{"every event", map[string]any{"event": "number-opt-in"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := validWebhook()
			maps.Copy(b, tc.set)
			status, m, _ := ts.call(t, "POST", "/v3/webhooks", key, b)
			if status != 200 {
				t.Fatalf("%d %v", status, m)
			}
			if tc.check != nil && !tc.check(dataOf(t, m)) {
				t.Errorf("stored %v", dataOf(t, m))
			}
		})
	}
	// A charset parameter or a +json media type is still JSON.
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
		status, raw, _ := ts.callRaw(t, "POST", "/v3/webhooks", key, ct, validWebhook())
		if status != 200 {
			t.Errorf("Content-Type %q: %d %s", ct, status, raw)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	ts := start(t)
	accountID, key := ts.createAccount(t, "errors@acme.test")
	ts.createWebhook(t, key, validWebhook())
	valid, _ := json.Marshal(validWebhook())
	huge, _ := json.Marshal(map[string]any{"event": "delivery-status", "url": "https://example.com/h", "secret": strings.Repeat("x", 1<<20)})

	bearer := func(k string) http.Header {
		return http.Header{"Authorization": {"Bearer " + k}, "Content-Type": {"application/json"}}
	}
	with := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
		return h
	}
	acct := bearer(key)
	adm := bearer(ts.AdminKey)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		body   []byte
		status int
		words  []string // the message must name these
		allow  string   // the Allow header a 405 must have
	}{
		{"text/plain", "POST", "/v3/webhooks", with(acct, "Content-Type", "text/plain"), valid, 415, []string{"Content-Type", "application/json"}, ""},
		{"form content type", "POST", "/v3/webhooks", with(acct, "Content-Type", "application/x-www-form-urlencoded"), valid, 415, []string{"Content-Type"}, ""},
		{"no content type", "POST", "/v3/webhooks", with(acct, "Content-Type", ""), valid, 415, []string{"Content-Type"}, ""},
		{"no content type on PATCH", "PATCH", "/v3/webhooks/1", with(acct, "Content-Type", ""), []byte(`{"url":"https://example.com/y"}`), 415, []string{"Content-Type"}, ""},
		{"no content type on account create", "POST", "/v3/accounts", with(adm, "Content-Type", ""), []byte(`{"email":"x@acme.test"}`), 415, []string{"Content-Type"}, ""},
		{"body over 1 MiB", "POST", "/v3/webhooks", acct, huge, 413, []string{"MiB"}, ""},
		{"body over 1 MiB on PATCH", "PATCH", "/v3/webhooks/1", acct, huge, 413, nil, ""},

		{"no Authorization", "GET", "/v3/webhooks", http.Header{}, nil, 401, []string{"Authorization"}, ""},
		{"no Authorization on admin route", "POST", "/v3/accounts", with(adm, "Authorization", ""), []byte(`{"email":"x@acme.test"}`), 401, []string{"Authorization"}, ""},
		{"unknown key", "GET", "/v3/webhooks", bearer("hr_0000000000000000000000000000000000000000"), nil, 401, nil, ""},
		{"Basic scheme", "GET", "/v3/webhooks", with(acct, "Authorization", "Basic xyz"), nil, 401, []string{"Bearer"}, ""},
		{"Bearer without key", "GET", "/v3/webhooks", with(acct, "Authorization", "Bearer"), nil, 401, []string{"Bearer"}, ""},
		{"key without scheme", "GET", "/v3/webhooks", with(acct, "Authorization", key), nil, 401, nil, ""},
		{"admin key on webhooks", "GET", "/v3/webhooks", adm, nil, 403, nil, ""},
		{"admin key creating a webhook", "POST", "/v3/webhooks", adm, valid, 403, nil, ""},
		{"account key on accounts", "GET", "/v3/accounts", acct, nil, 403, nil, ""},
		{"account key creating an account", "POST", "/v3/accounts", acct, []byte(`{"email":"x@acme.test"}`), 403, nil, ""},
		{"account key making itself a key", "POST", fmt.Sprintf("/v3/accounts/%d/api-keys", accountID), acct, nil, 403, nil, ""},

		{"unknown route", "GET", "/v3/nothing-here", acct, nil, 404, nil, ""},
		{"unknown route without key", "GET", "/nope", http.Header{}, nil, 404, nil, ""},
		{"unknown subresource", "GET", "/v3/webhooks/1/nothing", acct, nil, 404, nil, ""},
		{"PUT webhooks", "PUT", "/v3/webhooks", acct, valid, 405, []string{"PUT"}, "GET, POST, HEAD"},
		{"POST webhook id", "POST", "/v3/webhooks/1", acct, valid, 405, nil, "GET, PATCH, DELETE, HEAD"},
		{"DELETE accounts", "DELETE", "/v3/accounts", adm, nil, 405, nil, "GET, POST, HEAD"},
		{"PUT api key", "PUT", fmt.Sprintf("/v3/accounts/%d/api-keys/1", accountID), adm, nil, 405, nil, "DELETE"},

		{"page -1", "GET", "/v3/webhooks?page=-1", acct, nil, 400, []string{"page"}, ""},
		{"page x", "GET", "/v3/webhooks?page=x", acct, nil, 400, []string{"page"}, ""},
		{"page fraction", "GET", "/v3/webhooks?page=1.5", acct, nil, 400, []string{"page"}, ""},
		{"pageSize 0", "GET", "/v3/webhooks?pageSize=0", acct, nil, 400, []string{"pageSize", "100"}, ""},
		{"pageSize 101", "GET", "/v3/webhooks?pageSize=101", acct, nil, 400, []string{"pageSize"}, ""},
		{"pageSize -1", "GET", "/v3/webhooks?pageSize=-1", acct, nil, 400, []string{"pageSize"}, ""},
		{"pageSize x", "GET", "/v3/webhooks?pageSize=x", acct, nil, 400, []string{"pageSize"}, ""},
		{"accounts pageSize 101", "GET", "/v3/accounts?pageSize=101", adm, nil, 400, []string{"pageSize"}, ""},
		{"api keys page x", "GET", fmt.Sprintf("/v3/accounts/%d/api-keys?page=x", accountID), adm, nil, 400, []string{"page"}, ""},
		{"event filter unknown", "GET", "/v3/webhooks?event=bogus", acct, nil, 400, []string{"event", "message-reply"}, ""},

		{"webhook id abc", "GET", "/v3/webhooks/abc", acct, nil, 404, nil, ""},
		{"webhook id 0", "GET", "/v3/webhooks/0", acct, nil, 404, nil, ""},
		{"webhook id -1", "GET", "/v3/webhooks/-1", acct, nil, 404, nil, ""},
		{"webhook 999999", "GET", "/v3/webhooks/999999", acct, nil, 404, []string{"999999"}, ""},
		{"PATCH webhook 999999", "PATCH", "/v3/webhooks/999999", acct, []byte(`{"url":"https://example.com/y"}`), 404, nil, ""},
		{"DELETE webhook abc", "DELETE", "/v3/webhooks/abc", acct, nil, 404, nil, ""},
		{"account 999999", "GET", "/v3/accounts/999999", adm, nil, 404, []string{"999999"}, ""},
		{"account abc", "GET", "/v3/accounts/abc", adm, nil, 404, nil, ""},
		{"PATCH account 999999", "PATCH", "/v3/accounts/999999", adm, []byte(`{"name":"x"}`), 404, nil, ""},
		{"keys of account 999999", "GET", "/v3/accounts/999999/api-keys", adm, nil, 404, nil, ""},
		{"new key for account 999999", "POST", "/v3/accounts/999999/api-keys", with(adm, "Content-Type", ""), nil, 404, nil, ""},
		{"delete key 999999", "DELETE", fmt.Sprintf("/v3/accounts/%d/api-keys/999999", accountID), adm, nil, 404, nil, ""},
		{"delete key abc", "DELETE", fmt.Sprintf("/v3/accounts/%d/api-keys/abc", accountID), adm, nil, 404, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw, h := ts.request(t, tc.method, tc.path, tc.header, tc.body)
			checkError(t, status, raw, h, tc.status, tc.words...)
			if tc.allow != "" && !strings.Contains(h.Get("Allow"), tc.allow) {
				t.Errorf("Allow = %q, want %q", h.Get("Allow"), tc.allow)
			}
		})
	}
	// A chunked body (no Content-Length) over 1 MiB is cut off at the limit: 413 too.
	t.Run("chunked body over 1 MiB", func(t *testing.T) {
		req, err := http.NewRequest("POST", ts.URL+"/v3/webhooks", io.MultiReader(bytes.NewReader(huge)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = acct.Clone()
		if req.ContentLength != 0 {
			t.Fatalf("request length is known (%d): it would not be chunked", req.ContentLength)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		checkError(t, resp.StatusCode, raw, resp.Header, 413, "MiB")
	})
	// A body of exactly 1 MiB is read.
	t.Run("body of exactly 1 MiB", func(t *testing.T) {
		body := append([]byte(nil), valid...)
		body = append(body[:len(body)-1], bytes.Repeat([]byte(" "), 1<<20-len(body))...)
		body = append(body, '}')
		if len(body) != 1<<20 {
			t.Fatalf("body is %d bytes", len(body))
		}
		status, raw, _ := ts.request(t, "POST", "/v3/webhooks", acct, body)
		if status != 200 {
			t.Errorf("%d %s", status, raw)
		}
		ts.call(t, "DELETE", fmt.Sprintf("/v3/webhooks/%v", dataOf(t, decode(t, raw))["id"]), key, nil)
	})

	// Nothing those did changed the webhook or created anything.
	_, m, _ := ts.call(t, "GET", "/v3/webhooks", key, nil)
	rows := rowsOf(t, m, 0, 25, 1)
	if rows[0]["url"] != "https://example.com/hooks" {
		t.Errorf("webhook changed: %v", rows[0])
	}
	_, m, _ = ts.call(t, "GET", "/v3/accounts", ts.AdminKey, nil)
	rowsOf(t, m, 0, 25, 1)
}

func TestAccountValidation(t *testing.T) {
	t.Parallel()
	ts := start(t)
	ts.createAccount(t, "taken@acme.test")
	otherID, _ := ts.createAccount(t, "other@acme.test")
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		status int
		field  string
	}{
		{"missing email", "POST", "/v3/accounts", map[string]any{"name": "Acme"}, 400, "email"},
		{"invalid email", "POST", "/v3/accounts", map[string]any{"email": "not-an-email"}, 400, "email"},
		{"empty email", "POST", "/v3/accounts", map[string]any{"email": ""}, 400, "email"},
		{"email number", "POST", "/v3/accounts", map[string]any{"email": 7}, 400, "email"},
		// The seed's placeholder is taken as a webhook's alertEmail, never as an account's email.
		{"placeholder email", "POST", "/v3/accounts", map[string]any{"email": "[email\u00a0protected]"}, 400, "email"},
		{"placeholder email with a space", "POST", "/v3/accounts", map[string]any{"email": "[email protected]"}, 400, "email"},
		{"email with a display name", "POST", "/v3/accounts", map[string]any{"email": "Ops <ops@acme.test>"}, 400, "email"},
		{"name number", "POST", "/v3/accounts", map[string]any{"email": "n@acme.test", "name": 7}, 400, "name"},
		{"name too long", "POST", "/v3/accounts", map[string]any{"email": "n@acme.test", "name": strings.Repeat("n", 201)}, 400, "name"},
		{"unknown field", "POST", "/v3/accounts", map[string]any{"email": "n@acme.test", "plan": "gold"}, 400, "plan"},
		{"malformed JSON", "POST", "/v3/accounts", `{"email":`, 400, "JSON"},
		{"duplicate email", "POST", "/v3/accounts", map[string]any{"email": "taken@acme.test"}, 409, "email"},
		{"duplicate email other case", "POST", "/v3/accounts", map[string]any{"email": "Taken@ACME.test"}, 409, "email"},
		{"PATCH invalid email", "PATCH", fmt.Sprintf("/v3/accounts/%d", otherID), map[string]any{"email": "nope"}, 400, "email"},
		{"PATCH to a taken email", "PATCH", fmt.Sprintf("/v3/accounts/%d", otherID), map[string]any{"email": "taken@acme.test"}, 409, "email"},
		{"PATCH unknown field", "PATCH", fmt.Sprintf("/v3/accounts/%d", otherID), map[string]any{"id": 5}, 400, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw, h := ts.callRaw(t, tc.method, tc.path, ts.AdminKey, "application/json", tc.body)
			checkError(t, status, raw, h, tc.status, tc.field)
		})
	}
	_, m, _ := ts.call(t, "GET", "/v3/accounts", ts.AdminKey, nil)
	rows := rowsOf(t, m, 0, 25, 2)
	if rows[0]["email"] != "other@acme.test" || rows[1]["email"] != "taken@acme.test" {
		t.Errorf("accounts changed: %v", rows)
	}
}

func TestPrivateDestinations(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *config.Config) { c.AllowPrivateDestinations = false })
	_, key := ts.createAccount(t, "private@acme.test")
	id := ts.createWebhook(t, key, map[string]any{"event": "delivery-status", "url": "https://example.com/x", "secret": "s"})
	for _, u := range []string{
		"http://127.0.0.1/x", "http://localhost/x", "http://10.0.0.1/x", "http://[::1]/x",
		"http://LOCALHOST:8080/x", "http://api.localhost/x", "http://192.168.1.10/x", "http://172.16.0.1/x",
		"http://169.254.169.254/latest/meta-data", "http://0.0.0.0/x", "http://[::ffff:127.0.0.1]/x",
		"http://[fe80::1]/x", "http://[fd00::1]/x", "http://100.64.0.1/x",
	} {
		t.Run(u, func(t *testing.T) {
			body := map[string]any{"event": "delivery-status", "url": u, "secret": "s"}
			status, raw, h := ts.callRaw(t, "POST", "/v3/webhooks", key, "application/json", body)
			checkError(t, status, raw, h, 400, "url")
			status, raw, h = ts.callRaw(t, "PATCH", fmt.Sprintf("/v3/webhooks/%d", id), key, "application/json", map[string]any{"url": u})
			checkError(t, status, raw, h, 400, "url")
		})
	}
	for _, u := range []string{"https://example.com/x", "http://93.184.215.14/x", "https://[2606:4700::1111]/x"} {
		if status, m, _ := ts.call(t, "POST", "/v3/webhooks", key, map[string]any{"event": "delivery-status", "url": u, "secret": "s"}); status != 200 {
			t.Errorf("%s: %d %v", u, status, m)
		}
	}
	// With private destinations allowed (the harness default), loopback is fine.
	ts2 := start(t)
	_, key2 := ts2.createAccount(t, "allowed@acme.test")
	if status, m, _ := ts2.call(t, "POST", "/v3/webhooks", key2, map[string]any{"event": "delivery-status", "url": "http://127.0.0.1:9/x", "secret": "s"}); status != 200 {
		t.Errorf("loopback with private destinations allowed: %d %v", status, m)
	}
}
