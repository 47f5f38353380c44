package server_test

import "testing"

func TestSmoke(t *testing.T) {
	ts := start(t)
	_, key := ts.createAccount(t, "smoke@acme.test")
	id := ts.createWebhook(t, key, map[string]any{"event": "delivery-status", "url": "https://example.com/h", "secret": "x"})
	status, m, _ := ts.call(t, "GET", "/v3/webhooks", key, nil)
	if status != 200 || m["data"].(map[string]any)["total"].(float64) != 1 || id == 0 {
		t.Fatalf("list: %d %v", status, m)
	}
}
