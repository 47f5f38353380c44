package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/server"
)

var (
	reTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	reUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// webhookKeys is the exact key set of the webhook object.
var webhookKeys = []string{"alertEmail", "consecutiveFailures", "createdAt", "disabledReason", "event", "id",
	"lastDeliveryAt", "lastSuccessAt", "maxThroughputPerMinute", "retryOnError", "sendAlertEmail", "skipErrorCodes",
	"skipErrors", "status", "updatedAt", "url"}

// errorKinds is the type and name the contract gives each error status.
var errorKinds = map[int][2]string{
	400: {"bad_request_error", "BadRequestError"},
	401: {"unauthorized_error", "UnauthorizedError"},
	403: {"forbidden_error", "ForbiddenError"},
	404: {"not_found_error", "NotFoundError"},
	405: {"method_not_allowed_error", "MethodNotAllowedError"},
	409: {"conflict_error", "ConflictError"},
	413: {"payload_too_large_error", "PayloadTooLargeError"},
	415: {"unsupported_media_type_error", "UnsupportedMediaTypeError"},
	429: {"rate_limit_error", "RateLimitError"},
	500: {"internal_server_error", "InternalServerError"},
	503: {"service_unavailable_error", "ServiceUnavailableError"},
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, raw)
	}
	return m
}

// dataOf is the "data" object of a success envelope.
func dataOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	d, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("answer has no data object: %v", m)
	}
	return d
}

// rowsOf checks a list answer's paging members and returns its rows.
func rowsOf(t *testing.T, m map[string]any, page, pageSize, total int) []map[string]any {
	t.Helper()
	d := dataOf(t, m)
	if got := sortedKeys(d); !slices.Equal(got, []string{"page", "pageSize", "rows", "total"}) {
		t.Errorf("list data keys = %v", got)
	}
	if d["page"] != float64(page) || d["pageSize"] != float64(pageSize) || d["total"] != float64(total) {
		t.Errorf("page/pageSize/total = %v/%v/%v, want %d/%d/%d", d["page"], d["pageSize"], d["total"], page, pageSize, total)
	}
	raw, ok := d["rows"].([]any)
	if !ok {
		t.Fatalf("rows is not an array: %v", d["rows"])
	}
	rows := make([]map[string]any, len(raw))
	for i, r := range raw {
		rows[i] = r.(map[string]any)
	}
	return rows
}

func ids(rows []map[string]any) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = int64(r["id"].(float64))
	}
	return out
}

// namesField reports whether msg mentions field as a word of its own (so "skipErrors" is not
// found in a message about "skipErrorCodes").
func namesField(msg, field string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z])` + regexp.QuoteMeta(field) + `([^A-Za-z]|$)`).MatchString(msg)
}

// checkError checks an error answer against the contract: status, the body's exact members,
// type/name/httpCode, requestId = X-Request-Id (a UUID), timestamp format, and that the
// message names every field in fields. It returns the decoded body.
func checkError(t *testing.T, status int, raw []byte, h http.Header, want int, fields ...string) map[string]any {
	t.Helper()
	if status != want {
		t.Errorf("status = %d, want %d: %s", status, want, raw)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	m := decode(t, raw)
	if got := sortedKeys(m); !slices.Equal(got, []string{"httpCode", "message", "name", "requestId", "timestamp", "type"}) {
		t.Errorf("error body keys = %v: %s", got, raw)
	}
	kind := errorKinds[want]
	if m["httpCode"] != float64(want) || m["type"] != kind[0] || m["name"] != kind[1] {
		t.Errorf("httpCode/type/name = %v/%v/%v, want %d/%s/%s", m["httpCode"], m["type"], m["name"], want, kind[0], kind[1])
	}
	msg, _ := m["message"].(string)
	if msg == "" {
		t.Errorf("empty message: %s", raw)
	}
	for _, f := range fields {
		if !namesField(msg, f) {
			t.Errorf("message %q does not name %s", msg, f)
		}
	}
	rid, _ := m["requestId"].(string)
	if !reUUID.MatchString(rid) || rid != h.Get("X-Request-Id") {
		t.Errorf("requestId = %q, X-Request-Id = %q; want the same UUID", rid, h.Get("X-Request-Id"))
	}
	if ts, _ := m["timestamp"].(string); !reTime.MatchString(ts) {
		t.Errorf("timestamp = %q", ts)
	}
	return m
}

// checkWebhook checks the shape of a webhook object.
func checkWebhook(t *testing.T, w map[string]any) {
	t.Helper()
	if got := sortedKeys(w); !slices.Equal(got, webhookKeys) {
		t.Errorf("webhook keys = %v, want %v", got, webhookKeys)
	}
	for _, k := range []string{"createdAt", "updatedAt"} {
		if s, _ := w[k].(string); !reTime.MatchString(s) {
			t.Errorf("%s = %v, not a time with milliseconds in UTC", k, w[k])
		}
	}
	if _, ok := w["skipErrorCodes"].([]any); !ok {
		t.Errorf("skipErrorCodes = %#v, not an array", w["skipErrorCodes"])
	}
	if id, ok := w["id"].(float64); !ok || id < 1 || id != float64(int64(id)) {
		t.Errorf("id = %#v, not a positive integer", w["id"])
	}
}

// without returns a copy of m without the given keys.
func without(m map[string]any, keys ...string) map[string]any {
	c := maps.Clone(m)
	for _, k := range keys {
		delete(c, k)
	}
	return c
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ts := start(t)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		status, m, h := ts.call(t, "GET", path, "", nil)
		if status != 200 || m["status"] != want {
			t.Errorf("GET %s = %d %v", path, status, m)
		}
		if !reUUID.MatchString(h.Get("X-Request-Id")) {
			t.Errorf("GET %s: X-Request-Id = %q", path, h.Get("X-Request-Id"))
		}
	}
	status, raw, h := ts.callRaw(t, "POST", "/healthz", "", "", nil)
	checkError(t, status, raw, h, 405)
}

func TestAccountsAndKeys(t *testing.T) {
	t.Parallel()
	ts := start(t)

	// Create.
	status, m, _ := ts.call(t, "POST", "/v3/accounts", ts.AdminKey, map[string]any{"email": "ops@acme.test", "name": "Acme"})
	if status != 200 {
		t.Fatalf("create account: %d %v", status, m)
	}
	acme := dataOf(t, m)
	acmeID := int64(acme["id"].(float64))
	if want := fmt.Sprintf("Account %d created successfully.", acmeID); m["message"] != want || acmeID != 1 {
		t.Errorf("message = %v, id = %d; want %q and id 1", m["message"], acmeID, want)
	}
	if got := sortedKeys(acme); !slices.Equal(got, []string{"apiKey", "createdAt", "email", "id", "name", "updatedAt"}) {
		t.Errorf("account keys = %v", got)
	}
	if acme["email"] != "ops@acme.test" || acme["name"] != "Acme" || !reTime.MatchString(acme["createdAt"].(string)) {
		t.Errorf("account = %v", acme)
	}
	key1, _ := acme["apiKey"].(string)
	if !strings.HasPrefix(key1, "hr_") || len(key1) < 30 {
		t.Errorf("apiKey = %q", key1)
	}
	// The key works at once.
	if status, m, _ := ts.call(t, "GET", "/v3/webhooks", key1, nil); status != 200 {
		t.Errorf("new account key: %d %v", status, m)
	}

	status, m, _ = ts.call(t, "POST", "/v3/accounts", ts.AdminKey, map[string]any{"email": "dev@beta.test"})
	if status != 200 || m["message"] != "Account 2 created successfully." || dataOf(t, m)["name"] != "" {
		t.Errorf("create account without name: %d %v", status, m)
	}
	betaKey := dataOf(t, m)["apiKey"].(string)

	// List: newest first, paged, never a key.
	status, raw, _ := ts.callRaw(t, "GET", "/v3/accounts", ts.AdminKey, "", nil)
	if status != 200 {
		t.Fatalf("list accounts: %d %s", status, raw)
	}
	if bytes.Contains(raw, []byte(key1)) || bytes.Contains(raw, []byte(betaKey)) || bytes.Contains(raw, []byte("apiKey")) {
		t.Errorf("account list shows a key: %s", raw)
	}
	rows := rowsOf(t, decode(t, raw), 0, 25, 2)
	if got := ids(rows); !slices.Equal(got, []int64{2, 1}) {
		t.Errorf("account ids = %v, want newest first [2 1]", got)
	}
	for _, r := range rows {
		if got := sortedKeys(r); !slices.Equal(got, []string{"createdAt", "email", "id", "name", "updatedAt"}) {
			t.Errorf("listed account keys = %v", got)
		}
	}
	_, m, _ = ts.call(t, "GET", "/v3/accounts?page=1&pageSize=1", ts.AdminKey, nil)
	if got := ids(rowsOf(t, m, 1, 1, 2)); !slices.Equal(got, []int64{1}) {
		t.Errorf("page 1 of size 1 = %v, want [1]", got)
	}

	// Get.
	status, m, _ = ts.call(t, "GET", fmt.Sprintf("/v3/accounts/%d", acmeID), ts.AdminKey, nil)
	if status != 200 || !reflect.DeepEqual(dataOf(t, m), without(acme, "apiKey")) {
		t.Errorf("get account = %d %v, want %v", status, m, without(acme, "apiKey"))
	}

	// Patch: a subset changes, the rest stays, updatedAt moves.
	time.Sleep(5 * time.Millisecond)
	status, m, _ = ts.call(t, "PATCH", fmt.Sprintf("/v3/accounts/%d", acmeID), ts.AdminKey, map[string]any{"name": "Acme Corp"})
	patched := dataOf(t, m)
	if status != 200 || m["message"] != "Account 1 updated successfully." || patched["name"] != "Acme Corp" ||
		patched["email"] != "ops@acme.test" || patched["createdAt"] != acme["createdAt"] ||
		!(patched["updatedAt"].(string) > acme["updatedAt"].(string)) {
		t.Errorf("patch name = %d %v (before %v)", status, m, acme)
	}
	status, m, _ = ts.call(t, "PATCH", "/v3/accounts/1", ts.AdminKey, map[string]any{"email": "billing@acme.test"})
	if status != 200 || dataOf(t, m)["email"] != "billing@acme.test" || dataOf(t, m)["name"] != "Acme Corp" {
		t.Errorf("patch email = %d %v", status, m)
	}
	_, m, _ = ts.call(t, "GET", "/v3/accounts/1", ts.AdminKey, nil)
	if d := dataOf(t, m); d["email"] != "billing@acme.test" || d["name"] != "Acme Corp" {
		t.Errorf("after patches: %v", d)
	}

	// API keys: a new one works at once.
	keysPath := fmt.Sprintf("/v3/accounts/%d/api-keys", acmeID)
	status, raw, _ = ts.callRaw(t, "POST", keysPath, ts.AdminKey, "", nil)
	if status != 200 {
		t.Fatalf("create api key: %d %s", status, raw)
	}
	m = decode(t, raw)
	k2 := dataOf(t, m)
	key2, _ := k2["apiKey"].(string)
	key2ID := int64(k2["id"].(float64))
	if !strings.HasPrefix(key2, "hr_") || key2 == key1 || !reTime.MatchString(k2["createdAt"].(string)) {
		t.Errorf("new api key = %v", k2)
	}
	if m["message"] != fmt.Sprintf("API key %d created successfully.", key2ID) {
		t.Errorf("message = %v", m["message"])
	}
	if status, m, _ := ts.call(t, "GET", "/v3/webhooks", key2, nil); status != 200 {
		t.Errorf("second key: %d %v", status, m)
	}
	// A third key, not used yet.
	_, m, _ = ts.call(t, "POST", keysPath, ts.AdminKey, nil)
	key3 := dataOf(t, m)["apiKey"].(string)
	key3ID := int64(dataOf(t, m)["id"].(float64))

	listKeys := func() []map[string]any {
		t.Helper()
		status, raw, _ := ts.callRaw(t, "GET", keysPath, ts.AdminKey, "", nil)
		if status != 200 {
			t.Fatalf("list api keys: %d %s", status, raw)
		}
		for _, k := range []string{key1, key2, key3} {
			if bytes.Contains(raw, []byte(k)) {
				t.Errorf("key list shows a whole key: %s", raw)
			}
		}
		m := decode(t, raw)
		d := dataOf(t, m)
		rows := rowsOf(t, m, 0, 25, int(d["total"].(float64)))
		for _, r := range rows {
			if got := sortedKeys(r); !slices.Equal(got, []string{"createdAt", "id", "lastUsedAt", "prefix"}) {
				t.Errorf("listed key members = %v", got)
			}
			if !reTime.MatchString(r["createdAt"].(string)) {
				t.Errorf("key createdAt = %v", r["createdAt"])
			}
		}
		return rows
	}
	rows = listKeys()
	if got := ids(rows); len(got) != 3 || got[0] != key3ID || got[1] != key2ID {
		t.Fatalf("key ids = %v, want newest first [%d %d …]", got, key3ID, key2ID)
	}
	for i, k := range []string{key3, key2, key1} {
		if p, _ := rows[i]["prefix"].(string); len(p) < 4 || !strings.HasPrefix(k, p) || p == k {
			t.Errorf("prefix %q is not a proper prefix of its key", p)
		}
	}
	if rows[0]["lastUsedAt"] != nil {
		t.Errorf("unused key has lastUsedAt %v", rows[0]["lastUsedAt"])
	}
	for _, r := range rows[1:] {
		if s, _ := r["lastUsedAt"].(string); !reTime.MatchString(s) {
			t.Errorf("used key %v has lastUsedAt %v", r["id"], r["lastUsedAt"])
		}
	}
	// Using the third key sets its lastUsedAt.
	ts.call(t, "GET", "/v3/webhooks", key3, nil)
	if s, _ := listKeys()[0]["lastUsedAt"].(string); !reTime.MatchString(s) {
		t.Errorf("lastUsedAt after use = %q", s)
	}

	// Delete: the key stops working at once; the others go on.
	status, raw, _ = ts.callRaw(t, "DELETE", fmt.Sprintf("%s/%d", keysPath, key2ID), ts.AdminKey, "", nil)
	if status != 200 || decode(t, raw)["message"] != fmt.Sprintf("API key %d deleted successfully.", key2ID) {
		t.Errorf("delete key: %d %s", status, raw)
	}
	status, raw, h := ts.callRaw(t, "GET", "/v3/webhooks", key2, "", nil)
	checkError(t, status, raw, h, 401)
	for _, k := range []string{key1, key3} {
		if status, m, _ := ts.call(t, "GET", "/v3/webhooks", k, nil); status != 200 {
			t.Errorf("remaining key: %d %v", status, m)
		}
	}
	if got := ids(listKeys()); slices.Contains(got, key2ID) || len(got) != 2 {
		t.Errorf("keys after delete = %v", got)
	}
	status, raw, h = ts.callRaw(t, "DELETE", fmt.Sprintf("%s/%d", keysPath, key2ID), ts.AdminKey, "", nil)
	checkError(t, status, raw, h, 404)
	// One account's key cannot be deleted through another account's path.
	status, raw, h = ts.callRaw(t, "DELETE", fmt.Sprintf("/v3/accounts/2/api-keys/%d", key3ID), ts.AdminKey, "", nil)
	checkError(t, status, raw, h, 404)
	if status, m, _ := ts.call(t, "GET", "/v3/webhooks", key3, nil); status != 200 {
		t.Errorf("key deleted through another account: %d %v", status, m)
	}
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	ts := start(t)
	_, key := ts.createAccount(t, "hooks@acme.test")
	const secret = "whsec-never-shown-0123456789abcdef"

	// do makes a call with the account key and checks that the answer never shows a secret.
	do := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		status, raw, _ := ts.callRaw(t, method, path, key, "application/json", body)
		if bytes.Contains(raw, []byte(`"secret"`)) || bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("whsec")) {
			t.Errorf("%s %s shows a secret: %s", method, path, raw)
		}
		return status, decode(t, raw)
	}

	// Create with only the required fields: defaults.
	status, m := do("POST", "/v3/webhooks", map[string]any{"event": "delivery-status", "url": "https://example.com/hooks", "secret": secret})
	if status != 200 {
		t.Fatalf("create: %d %v", status, m)
	}
	first := dataOf(t, m)
	checkWebhook(t, first)
	firstID := int64(first["id"].(float64))
	if m["message"] != fmt.Sprintf("Webhook %d created successfully.", firstID) || firstID != 1 {
		t.Errorf("message = %q (id %d)", m["message"], firstID)
	}
	wantDefaults := map[string]any{"event": "delivery-status", "url": "https://example.com/hooks", "alertEmail": nil,
		"sendAlertEmail": false, "skipErrors": false, "skipErrorCodes": []any{}, "retryOnError": true,
		"maxThroughputPerMinute": float64(600), "status": "active",
		"lastDeliveryAt": nil, "lastSuccessAt": nil, "consecutiveFailures": float64(0), "disabledReason": nil}
	if got := without(first, "id", "createdAt", "updatedAt"); !reflect.DeepEqual(got, wantDefaults) {
		t.Errorf("defaults = %v, want %v", got, wantDefaults)
	}
	if first["createdAt"] != first["updatedAt"] {
		t.Errorf("createdAt %v != updatedAt %v on create", first["createdAt"], first["updatedAt"])
	}

	// Create with every field; numbers in skipErrorCodes are kept as strings.
	status, m = do("POST", "/v3/webhooks", map[string]any{
		"event": "message-reply", "url": "http://hooks.example.com:8443/in?x=1", "secret": secret + "2",
		"alertEmail": "alerts@acme.test", "sendAlertEmail": true, "skipErrors": true,
		"skipErrorCodes": []any{404, "410", 503}, "retryOnError": false, "maxThroughputPerMinute": 1,
	})
	if status != 200 {
		t.Fatalf("create full: %d %v", status, m)
	}
	full := dataOf(t, m)
	checkWebhook(t, full)
	fullID := int64(full["id"].(float64))
	if m["message"] != fmt.Sprintf("Webhook %d created successfully.", fullID) || fullID != 2 {
		t.Errorf("message = %q", m["message"])
	}
	wantFull := map[string]any{"event": "message-reply", "url": "http://hooks.example.com:8443/in?x=1",
		"alertEmail": "alerts@acme.test", "sendAlertEmail": true, "skipErrors": true,
		"skipErrorCodes": []any{"404", "410", "503"}, "retryOnError": false, "maxThroughputPerMinute": float64(1), "status": "active",
		"lastDeliveryAt": nil, "lastSuccessAt": nil, "consecutiveFailures": float64(0), "disabledReason": nil}
	if got := without(full, "id", "createdAt", "updatedAt"); !reflect.DeepEqual(got, wantFull) {
		t.Errorf("full webhook = %v, want %v", got, wantFull)
	}

	// Get answers what create did.
	for _, w := range []map[string]any{first, full} {
		status, m := do("GET", fmt.Sprintf("/v3/webhooks/%v", w["id"]), nil)
		if status != 200 || !reflect.DeepEqual(dataOf(t, m), w) {
			t.Errorf("get %v = %d %v, want %v", w["id"], status, m, w)
		}
	}

	// List: newest first, paged, filtered by event.
	for _, ev := range []string{"message-reply", "message-send", "number-opt-in"} {
		ts.createWebhook(t, key, map[string]any{"event": ev, "url": "https://example.com/" + ev, "secret": secret})
	}
	status, m = do("GET", "/v3/webhooks", nil)
	rows := rowsOf(t, m, 0, 25, 5)
	if status != 200 || !slices.Equal(ids(rows), []int64{5, 4, 3, 2, 1}) {
		t.Errorf("list = %d %v", status, ids(rows))
	}
	for _, r := range rows {
		checkWebhook(t, r)
	}
	if !reflect.DeepEqual(rows[3], full) || !reflect.DeepEqual(rows[4], first) {
		t.Errorf("listed webhooks differ from created ones: %v", rows[3:])
	}
	for p, want := range [][]int64{{5, 4}, {3, 2}, {1}, {}} {
		status, m := do("GET", fmt.Sprintf("/v3/webhooks?page=%d&pageSize=2", p), nil)
		if got := ids(rowsOf(t, m, p, 2, 5)); status != 200 || !slices.Equal(got, want) {
			t.Errorf("page %d = %d %v, want %v", p, status, got, want)
		}
	}
	_, raw, _ := ts.callRaw(t, "GET", "/v3/webhooks?page=9&pageSize=2", key, "", nil)
	if !bytes.Contains(raw, []byte(`"rows":[]`)) {
		t.Errorf("empty page rows are not []: %s", raw)
	}
	status, m = do("GET", "/v3/webhooks?event=message-reply", nil)
	if got := ids(rowsOf(t, m, 0, 25, 2)); status != 200 || !slices.Equal(got, []int64{3, 2}) {
		t.Errorf("event=message-reply: %d %v", status, got)
	}
	status, m = do("GET", "/v3/webhooks?event=delivery-status&pageSize=100", nil)
	if got := ids(rowsOf(t, m, 0, 100, 1)); status != 200 || !slices.Equal(got, []int64{1}) {
		t.Errorf("event=delivery-status: %d %v", status, got)
	}

	// Patch a subset: the rest stays, updatedAt moves.
	time.Sleep(5 * time.Millisecond)
	status, m = do("PATCH", "/v3/webhooks/2", map[string]any{"url": "https://new.example.com/in", "maxThroughputPerMinute": 1000000, "secret": secret + "3"})
	if status != 200 || m["message"] != "Webhook 2 updated successfully." {
		t.Fatalf("patch: %d %v", status, m)
	}
	patched := dataOf(t, m)
	checkWebhook(t, patched)
	if patched["url"] != "https://new.example.com/in" || patched["maxThroughputPerMinute"] != float64(1000000) {
		t.Errorf("patched fields = %v", patched)
	}
	if got, want := without(patched, "url", "maxThroughputPerMinute", "updatedAt"), without(full, "url", "maxThroughputPerMinute", "updatedAt"); !reflect.DeepEqual(got, want) {
		t.Errorf("patch changed other fields: %v, was %v", got, want)
	}
	if !(patched["updatedAt"].(string) > full["updatedAt"].(string)) {
		t.Errorf("updatedAt %v did not move past %v", patched["updatedAt"], full["updatedAt"])
	}
	if _, m := do("GET", "/v3/webhooks/2", nil); !reflect.DeepEqual(dataOf(t, m), patched) {
		t.Errorf("get after patch = %v, want %v", dataOf(t, m), patched)
	}

	// alertEmail null clears it; other fields stay.
	status, m = do("PATCH", "/v3/webhooks/2", map[string]any{"alertEmail": nil})
	cleared := dataOf(t, m)
	if status != 200 || cleared["alertEmail"] != nil {
		t.Errorf("alertEmail null: %d %v", status, m)
	}
	if got, want := without(cleared, "alertEmail", "updatedAt"), without(patched, "alertEmail", "updatedAt"); !reflect.DeepEqual(got, want) {
		t.Errorf("clearing alertEmail changed %v into %v", want, got)
	}
	// Every remaining field, including event and skipErrorCodes back to empty.
	status, m = do("PATCH", "/v3/webhooks/2", map[string]any{"event": "number-opt-in", "alertEmail": "x@acme.test",
		"sendAlertEmail": false, "skipErrors": false, "skipErrorCodes": []any{}, "retryOnError": true})
	want := map[string]any{"event": "number-opt-in", "url": "https://new.example.com/in", "alertEmail": "x@acme.test",
		"sendAlertEmail": false, "skipErrors": false, "skipErrorCodes": []any{}, "retryOnError": true,
		"maxThroughputPerMinute": float64(1000000), "status": "active",
		"lastDeliveryAt": nil, "lastSuccessAt": nil, "consecutiveFailures": float64(0), "disabledReason": nil}
	if got := without(dataOf(t, m), "id", "createdAt", "updatedAt"); status != 200 || !reflect.DeepEqual(got, want) {
		t.Errorf("patch all = %d %v, want %v", status, got, want)
	}

	// Delete.
	status, raw, _ = ts.callRaw(t, "DELETE", "/v3/webhooks/2", key, "", nil)
	if m := decode(t, raw); status != 200 || !reflect.DeepEqual(m, map[string]any{"message": "Webhook 2 deleted successfully."}) {
		t.Errorf("delete = %d %s", status, raw)
	}
	for _, method := range []string{"GET", "DELETE", "PATCH"} {
		var body any
		if method == "PATCH" {
			body = map[string]any{"url": "https://example.com/z"}
		}
		status, raw, h := ts.callRaw(t, method, "/v3/webhooks/2", key, "application/json", body)
		checkError(t, status, raw, h, 404)
	}
	status, m = do("GET", "/v3/webhooks", nil)
	if got := ids(rowsOf(t, m, 0, 25, 4)); status != 200 || !slices.Equal(got, []int64{5, 4, 3, 1}) {
		t.Errorf("list after delete = %v", got)
	}
	// Ids are not reused.
	if id := ts.createWebhook(t, key, map[string]any{"event": "delivery-status", "url": "https://example.com/h", "secret": "s"}); id != 6 {
		t.Errorf("next id = %d, want 6", id)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	ts := start(t)
	_, keyA := ts.createAccount(t, "a@tenant.test")
	_, keyB := ts.createAccount(t, "b@tenant.test")
	idA := ts.createWebhook(t, keyA, map[string]any{"event": "message-send", "url": "https://a.example.com/h", "secret": "secret-a"})
	idB := ts.createWebhook(t, keyB, map[string]any{"event": "message-send", "url": "https://b.example.com/h", "secret": "secret-b"})
	_, before, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d", idA), keyA, nil)

	// same strips what differs between two 404s for different ids.
	same := func(m map[string]any, id string) map[string]any {
		m = without(m, "requestId", "timestamp")
		m["message"] = strings.ReplaceAll(m["message"].(string), id, "N")
		return m
	}
	status, raw, h := ts.callRaw(t, "GET", "/v3/webhooks/999999", keyB, "", nil)
	missing := same(checkError(t, status, raw, h, 404), "999999")

	a := fmt.Sprint(idA)
	for _, tc := range []struct {
		method string
		body   any
	}{
		{"GET", nil},
		{"PATCH", map[string]any{"url": "https://evil.example.com/h", "secret": "stolen"}},
		{"DELETE", nil},
	} {
		status, raw, h := ts.callRaw(t, tc.method, "/v3/webhooks/"+a, keyB, "application/json", tc.body)
		m := checkError(t, status, raw, h, 404)
		if got := same(m, a); !reflect.DeepEqual(got, missing) {
			t.Errorf("%s of another account's webhook = %v; a missing one = %v", tc.method, got, missing)
		}
		// And the same for a missing id with the same method.
		status, raw, h = ts.callRaw(t, tc.method, "/v3/webhooks/999999", keyB, "application/json", tc.body)
		if got := same(checkError(t, status, raw, h, 404), "999999"); !reflect.DeepEqual(got, missing) {
			t.Errorf("%s of a missing webhook = %v, want %v", tc.method, got, missing)
		}
	}
	_, m, _ := ts.call(t, "GET", "/v3/webhooks", keyB, nil)
	if got := ids(rowsOf(t, m, 0, 25, 1)); !slices.Equal(got, []int64{idB}) {
		t.Errorf("B's list = %v, want only [%d]", got, idB)
	}
	_, m, _ = ts.call(t, "GET", "/v3/webhooks?event=message-send", keyB, nil)
	if got := ids(rowsOf(t, m, 0, 25, 1)); !slices.Equal(got, []int64{idB}) {
		t.Errorf("B's filtered list = %v, want only [%d]", got, idB)
	}

	// A's webhook is untouched.
	_, after, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d", idA), keyA, nil)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("A's webhook changed: %v, was %v", after, before)
	}
	_, m, _ = ts.call(t, "GET", "/v3/webhooks", keyA, nil)
	if got := ids(rowsOf(t, m, 0, 25, 1)); !slices.Equal(got, []int64{idA}) {
		t.Errorf("A's list = %v", got)
	}

	// A revoked key answers 401.
	_, m, _ = ts.call(t, "GET", "/v3/accounts/2/api-keys", ts.AdminKey, nil)
	keyID := ids(rowsOf(t, m, 0, 25, 1))[0]
	if status, m, _ := ts.call(t, "DELETE", fmt.Sprintf("/v3/accounts/2/api-keys/%d", keyID), ts.AdminKey, nil); status != 200 {
		t.Fatalf("revoke: %d %v", status, m)
	}
	for _, method := range []string{"GET", "DELETE"} {
		status, raw, h := ts.callRaw(t, method, fmt.Sprintf("/v3/webhooks/%d", idB), keyB, "", nil)
		checkError(t, status, raw, h, 401)
	}
	status, raw, h = ts.callRaw(t, "POST", "/v3/webhooks", keyB, "application/json", map[string]any{"event": "message-send", "url": "https://b.example.com/h", "secret": "s"})
	checkError(t, status, raw, h, 401)
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	ts := start(t)
	accountID, key := ts.createAccount(t, "persist@acme.test")
	for _, ev := range []string{"delivery-status", "message-reply"} {
		ts.createWebhook(t, key, map[string]any{"event": ev, "url": "https://example.com/" + ev, "secret": "s-" + ev,
			"alertEmail": "a@acme.test", "skipErrorCodes": []any{"410"}, "maxThroughputPerMinute": 42})
	}
	_, m, _ := ts.call(t, "POST", fmt.Sprintf("/v3/accounts/%d/api-keys", accountID), ts.AdminKey, nil)
	key2 := dataOf(t, m)["apiKey"].(string)
	_, hooksBefore, _ := ts.call(t, "GET", "/v3/webhooks", key, nil)
	_, accountBefore, _ := ts.call(t, "GET", fmt.Sprintf("/v3/accounts/%d", accountID), ts.AdminKey, nil)
	_, keysBefore, _ := ts.call(t, "GET", fmt.Sprintf("/v3/accounts/%d/api-keys", accountID), ts.AdminKey, nil)
	ts.stop()

	ts2 := startWith(t, ts.Config)
	if ts2.AdminKey != ts.AdminKey {
		t.Errorf("admin key changed across restart")
	}
	_, hooksAfter, _ := ts2.call(t, "GET", "/v3/webhooks", key, nil)
	if !reflect.DeepEqual(hooksAfter, hooksBefore) {
		t.Errorf("webhooks after restart = %v, before %v", hooksAfter, hooksBefore)
	}
	if status, m, _ := ts2.call(t, "GET", "/v3/webhooks", key2, nil); status != 200 {
		t.Errorf("second key after restart: %d %v", status, m)
	}
	_, accountAfter, _ := ts2.call(t, "GET", fmt.Sprintf("/v3/accounts/%d", accountID), ts2.AdminKey, nil)
	if !reflect.DeepEqual(accountAfter, accountBefore) {
		t.Errorf("account after restart = %v, before %v", accountAfter, accountBefore)
	}
	_, keysAfter, _ := ts2.call(t, "GET", fmt.Sprintf("/v3/accounts/%d/api-keys", accountID), ts2.AdminKey, nil)
	if !reflect.DeepEqual(ids(rowsOf(t, keysAfter, 0, 25, 2)), ids(rowsOf(t, keysBefore, 0, 25, 2))) {
		t.Errorf("keys after restart = %v, before %v", keysAfter, keysBefore)
	}
	// New ids carry on after the old ones; the duplicate email is still taken.
	if id := ts2.createWebhook(t, key, map[string]any{"event": "number-opt-in", "url": "https://example.com/n", "secret": "s"}); id != 3 {
		t.Errorf("id after restart = %d, want 3", id)
	}
	status, raw, h := ts2.callRaw(t, "POST", "/v3/accounts", ts2.AdminKey, "application/json", map[string]any{"email": "persist@acme.test"})
	checkError(t, status, raw, h, 409, "email")
}

func TestGeneratedAdminKey(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *config.Config) { c.AdminKey = "" })
	path := filepath.Join(ts.Config.DataDir, server.AdminKeyFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("admin key file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("admin key file mode = %v, want 0600", perm)
	}
	b, _ := os.ReadFile(path)
	if got := strings.TrimSpace(string(b)); got != ts.AdminKey || len(got) < 16 {
		t.Errorf("admin key file holds %q, server uses %q", got, ts.AdminKey)
	}
	if !strings.Contains(ts.logs.String(), path) {
		t.Errorf("the admin key file's path is not logged:\n%s", ts.logs.String())
	}
	id, key := ts.createAccount(t, "gen@acme.test")
	ts.stop()

	ts2 := startWith(t, ts.Config)
	if ts2.AdminKey != ts.AdminKey {
		t.Errorf("admin key after restart = %q, want %q", ts2.AdminKey, ts.AdminKey)
	}
	if status, m, _ := ts2.call(t, "GET", fmt.Sprintf("/v3/accounts/%d", id), ts.AdminKey, nil); status != 200 {
		t.Errorf("old admin key after restart: %d %v", status, m)
	}
	if status, m, _ := ts2.call(t, "GET", "/v3/webhooks", key, nil); status != 200 {
		t.Errorf("account key after restart: %d %v", status, m)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("admin key file after restart: %v %v", info, err)
	}
}

// The seed's example request body, byte for byte (its alertEmail has a no-break space).
const seedBody = `{
    "event": "delivery-status",
    "url": "https://www.example.com/app/hooks",
    "secret": "abc123-abc2-cde1-1234-xyz123456",
    "alertEmail": "[email` + "\u00a0" + `protected]",
    "sendAlertEmail": true
}`

// The seed's example answer.
const seedAnswer = `{
  "message": "Webhook 11 created successfully.",
  "data": {
    "id": 11,
    "event": "delivery-status",
    "url": "https://www.example.com/app/hooks",
    "alertEmail": "[email` + "\u00a0" + `protected]",
    "sendAlertEmail": true,
    "skipErrors": false,
    "skipErrorCodes": [],
    "retryOnError": true,
    "maxThroughputPerMinute": 600,
    "createdAt": "2022-04-18T05:00:00.000Z"
  }
}`

func kind(v any) string { return fmt.Sprintf("%T", v) }

func TestSeedExample(t *testing.T) {
	t.Parallel()
	ts := start(t)
	_, key := ts.createAccount(t, "seed@acme.test")
	// Some webhooks first, so the id is not trivially 1.
	for range 3 {
		ts.createWebhook(t, key, map[string]any{"event": "message-send", "url": "https://example.com/x", "secret": "x"})
	}
	status, raw, _ := ts.callRaw(t, "POST", "/v3/webhooks", key, "application/json", seedBody)
	if status != 200 {
		t.Fatalf("seed example: %d %s", status, raw)
	}
	if bytes.Contains(raw, []byte("abc123-abc2-cde1-1234-xyz123456")) {
		t.Errorf("answer shows the secret: %s", raw)
	}
	got, want := decode(t, raw), decode(t, []byte(seedAnswer))
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("answer has no %q", k)
		}
	}
	gotData, wantData := dataOf(t, got), dataOf(t, want)
	for k, wv := range wantData {
		gv, ok := gotData[k]
		if !ok {
			t.Errorf("data has no %q", k)
			continue
		}
		if kind(gv) != kind(wv) {
			t.Errorf("data.%s = %#v (%s), the seed has %#v (%s)", k, gv, kind(gv), wv, kind(wv))
		}
		switch k {
		case "id", "createdAt":
		default:
			if !reflect.DeepEqual(gv, wv) {
				t.Errorf("data.%s = %#v, the seed has %#v", k, gv, wv)
			}
		}
	}
	if !reTime.MatchString(gotData["createdAt"].(string)) {
		t.Errorf("createdAt = %v", gotData["createdAt"])
	}
	id := int64(gotData["id"].(float64))
	if id != 4 || got["message"] != fmt.Sprintf("Webhook %d created successfully.", id) {
		t.Errorf("message = %q, id = %d", got["message"], id)
	}
	if !regexp.MustCompile(`^Webhook \d+ created successfully\.$`).MatchString(got["message"].(string)) {
		t.Errorf("message = %q", got["message"])
	}
	// The same body with an ordinary space in the placeholder is taken too.
	status, raw, _ = ts.callRaw(t, "POST", "/v3/webhooks", key, "application/json", strings.ReplaceAll(seedBody, "\u00a0", " "))
	if status != 200 {
		t.Errorf("seed example with a plain space: %d %s", status, raw)
	}
}
