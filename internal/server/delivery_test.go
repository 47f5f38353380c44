package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
)

// publish publishes one event and returns its id and delivery count.
func (ts *testServer) publish(t *testing.T, accountID int64, event string, data any, extra ...map[string]any) (string, int) {
	t.Helper()
	body := map[string]any{"accountId": accountID, "event": event, "data": data}
	for _, e := range extra {
		for k, v := range e {
			body[k] = v
		}
	}
	status, m, _ := ts.call(t, "POST", "/v3/events", ts.AdminKey, body)
	if status != http.StatusAccepted {
		t.Fatalf("publish %s: %d %v", event, status, m)
	}
	d := m["data"].(map[string]any)
	return d["id"].(string), int(d["deliveries"].(float64))
}

// deliveries lists a webhook's deliveries (newest first).
func (ts *testServer) deliveries(t *testing.T, key string, webhookID int64, query string) []map[string]any {
	t.Helper()
	status, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d/deliveries?pageSize=100%s", webhookID, query), key, nil)
	if status != 200 {
		t.Fatalf("list deliveries: %d %v", status, m)
	}
	var out []map[string]any
	for _, r := range m["data"].(map[string]any)["rows"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// waitStatus waits until the webhook's only delivery has the status, and returns it with its
// attempt log.
func (ts *testServer) waitStatus(t *testing.T, key string, webhookID int64, status string, limit time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		list := ts.deliveries(t, key, webhookID, "")
		if len(list) == 1 && list[0]["status"] == status {
			_, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/deliveries/%d", int64(list[0]["id"].(float64))), key, nil)
			return m["data"].(map[string]any)
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %d deliveries = %v, want one %s within %v", webhookID, list, status, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hookBody(event, url, secret string, extra map[string]any) map[string]any {
	b := map[string]any{"event": event, "url": url, "secret": secret}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func TestDeliveryFanoutSignatureAndHeaders(t *testing.T) {
	eachStore(t, testDeliveryFanoutSignatureAndHeaders)
}

func testDeliveryFanoutSignatureAndHeaders(t *testing.T, start starter) {
	ts := start(t)
	a, keyA := ts.createAccount(t, "fanout-a@acme.test")
	_, keyB := ts.createAccount(t, "fanout-b@acme.test")
	r1, r2 := newReceiver(t, "secret-one"), newReceiver(t, "secret-two")
	other, elsewhere := newReceiver(t, "x"), newReceiver(t, "y")
	h1 := ts.createWebhook(t, keyA, hookBody("delivery-status", r1.srv.URL+"/hook", "secret-one", nil))
	h2 := ts.createWebhook(t, keyA, hookBody("delivery-status", r2.srv.URL, "secret-two", nil))
	ts.createWebhook(t, keyA, hookBody("message-reply", other.srv.URL, "x", nil))
	ts.createWebhook(t, keyB, hookBody("delivery-status", elsewhere.srv.URL, "y", nil))

	data := `{"messageId": 12345678901234567, "destinationNumber":"+15550100", "status":"delivered", "extra": 1.50, "tags":{"k":"v"}}`
	status, m, _ := ts.call(t, "POST", "/v3/events", ts.AdminKey, `{"accountId":`+fmt.Sprint(a)+`,"event":"delivery-status","data":`+data+`}`)
	if status != 202 || m["message"] != "Event accepted." {
		t.Fatalf("publish: %d %v", status, m)
	}
	ev := m["data"].(map[string]any)
	if ev["deliveries"].(float64) != 2 || ev["event"] != "delivery-status" || ev["id"] == "" {
		t.Fatalf("publish data = %v", ev)
	}
	got1 := r1.waitFor(t, 1, 10*time.Second)[0]
	got2 := r2.waitFor(t, 1, 10*time.Second)[0]
	want := `{"type":"delivery-status","messageId":12345678901234567,"destinationNumber":"+15550100","status":"delivered","extra":1.50,"tags":{"k":"v"}}`
	if string(got1.Body) != want || !bytes.Equal(got1.Body, got2.Body) {
		t.Fatalf("bodies:\n%s\n%s\nwant\n%s", got1.Body, got2.Body, want)
	}
	for i, g := range []received{got1, got2} {
		if !g.SigValid {
			t.Errorf("receiver %d: signature %q does not verify", i+1, g.Header.Get("X-Signature"))
		}
		hid := []int64{h1, h2}[i]
		checks := map[string]string{
			"Content-Type":       "application/json",
			"X-Event-Id":         ev["id"].(string),
			"X-Event-Type":       "delivery-status",
			"X-Webhook-Id":       fmt.Sprint(hid),
			"X-Delivery-Attempt": "1",
		}
		for k, v := range checks {
			if g.Header.Get(k) != v {
				t.Errorf("receiver %d: %s = %q, want %q", i+1, k, g.Header.Get(k), v)
			}
		}
		if ua := g.Header.Get("User-Agent"); !strings.HasPrefix(ua, "hookrelay/") {
			t.Errorf("User-Agent = %q", ua)
		}
		if sig := g.Header.Get("X-Signature"); sig != strings.ToLower(sig) || len(sig) != 64 {
			t.Errorf("X-Signature %q is not lowercase hex SHA-256", sig)
		}
	}
	ts.waitStatus(t, keyA, h1, "succeeded", 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if other.count() != 0 || elsewhere.count() != 0 {
		t.Fatalf("webhooks of another event type (%d) or account (%d) received the event", other.count(), elsewhere.count())
	}
	if r1.count() != 1 || r2.count() != 1 {
		t.Fatalf("receivers got %d and %d requests, want 1 each", r1.count(), r2.count())
	}
}

func TestDeliveryRetryThenSuccess(t *testing.T) { eachStore(t, testDeliveryRetryThenSuccess) }

func testDeliveryRetryThenSuccess(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "retry@acme.test")
	rc := newReceiver(t, "s")
	rc.script(func(n int, _ *http.Request) (int, http.Header, string) {
		if n == 1 {
			return 500, nil, "boom"
		}
		return 200, nil, "fine"
	})
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	id, _ := ts.publish(t, a, "message-send", map[string]any{"messageId": 7, "destinationNumber": "+1555"})
	got := rc.waitFor(t, 2, 10*time.Second)
	if got[0].Header.Get("X-Delivery-Attempt") != "1" || got[1].Header.Get("X-Delivery-Attempt") != "2" {
		t.Fatalf("attempt headers %q, %q", got[0].Header.Get("X-Delivery-Attempt"), got[1].Header.Get("X-Delivery-Attempt"))
	}
	if !bytes.Equal(got[0].Body, got[1].Body) || got[1].Header.Get("X-Event-Id") != id || got[0].Header.Get("X-Event-Id") != id {
		t.Fatal("the retry differs from the first attempt in body or X-Event-Id")
	}
	if gap := got[1].At.Sub(got[0].At); gap < 150*time.Millisecond {
		t.Fatalf("retry came %v after the first attempt; the schedule says 200ms ±10%%", gap)
	}
	d := ts.waitStatus(t, key, h, "succeeded", 10*time.Second)
	log := d["attemptLog"].([]any)
	if d["attempts"].(float64) != 2 || len(log) != 2 || d["lastStatusCode"].(float64) != 200 || d["lastError"] != nil || d["completedAt"] == nil || d["nextAttemptAt"] != nil {
		t.Fatalf("delivery = %v", d)
	}
	first := log[0].(map[string]any)
	if first["statusCode"].(float64) != 500 || first["error"] != "HTTP 500" || first["responseBody"] != "boom" || first["attempt"].(float64) != 1 {
		t.Fatalf("first attempt = %v", first)
	}
	if d["eventId"] != id || d["event"] != "message-send" || d["webhookId"].(float64) != float64(h) {
		t.Fatalf("delivery = %v", d)
	}
}

func TestDeliveryRetriesExhausted(t *testing.T) { eachStore(t, testDeliveryRetriesExhausted) }

func testDeliveryRetriesExhausted(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "exhausted@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(503))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	ts.publish(t, a, "message-send", map[string]any{"messageId": 7, "destinationNumber": "+1555"})
	d := ts.waitStatus(t, key, h, "failed", 10*time.Second)
	if d["attempts"].(float64) != 3 || rc.count() != 3 || d["lastStatusCode"].(float64) != 503 {
		t.Fatalf("after exhausting 2 retries: delivery %v, receiver got %d", d, rc.count())
	}
	time.Sleep(time.Second)
	if rc.count() != 3 {
		t.Fatalf("a failed delivery was attempted again (%d requests)", rc.count())
	}
}

func TestDeliveryIgnoredAndNoRetry(t *testing.T) { eachStore(t, testDeliveryIgnoredAndNoRetry) }

func testDeliveryIgnoredAndNoRetry(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "ignored@acme.test")
	listed, skipAll, noRetry := newReceiver(t, "s"), newReceiver(t, "s"), newReceiver(t, "s")
	listed.script(always(410))
	skipAll.script(always(500))
	noRetry.script(always(500))
	hListed := ts.createWebhook(t, key, hookBody("number-opt-in", listed.srv.URL, "s", map[string]any{"skipErrorCodes": []any{404, "410"}}))
	hSkip := ts.createWebhook(t, key, hookBody("number-opt-in", skipAll.srv.URL, "s", map[string]any{"skipErrors": true}))
	hNo := ts.createWebhook(t, key, hookBody("number-opt-in", noRetry.srv.URL, "s", map[string]any{"retryOnError": false}))
	// A transport error is never ignored, even with skipErrors.
	closed := closedURL(t)
	hDown := ts.createWebhook(t, key, hookBody("number-opt-in", closed, "s", map[string]any{"skipErrors": true, "skipErrorCodes": []any{"500"}}))

	ts.publish(t, a, "number-opt-in", map[string]any{"number": "+1555", "optInType": "keyword"})
	ts.waitStatus(t, key, hListed, "ignored", 10*time.Second)
	ts.waitStatus(t, key, hSkip, "ignored", 10*time.Second)
	d := ts.waitStatus(t, key, hNo, "failed", 10*time.Second)
	if d["attempts"].(float64) != 1 {
		t.Fatalf("retryOnError=false made %v attempts", d["attempts"])
	}
	down := ts.waitStatus(t, key, hDown, "failed", 10*time.Second)
	if down["attempts"].(float64) != 3 || down["lastStatusCode"] != nil || down["lastError"] == nil {
		t.Fatalf("transport errors with skipErrors: %v", down)
	}
	time.Sleep(700 * time.Millisecond)
	if listed.count() != 1 || skipAll.count() != 1 || noRetry.count() != 1 {
		t.Fatalf("ignored or not-retried deliveries were attempted again: %d %d %d", listed.count(), skipAll.count(), noRetry.count())
	}
}

// closedURL returns a URL on which no server answers: each connection is closed as soon as it
// is made, on a port held for the test (a port merely found free could be given to another
// test's server).
func closedURL(t *testing.T) string {
	return "http://" + holdAddr(t).Addr().String() + "/gone"
}

func TestDeliveryRetryAfterHonoured(t *testing.T) { eachStore(t, testDeliveryRetryAfterHonoured) }

func testDeliveryRetryAfterHonoured(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "retry-after@acme.test")
	rc := newReceiver(t, "s")
	rc.script(func(n int, _ *http.Request) (int, http.Header, string) {
		if n == 1 {
			return 429, http.Header{"Retry-After": {"2"}}, "slow down"
		}
		return 200, nil, ""
	})
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	ts.publish(t, a, "message-send", map[string]any{"messageId": 1, "destinationNumber": "+1555"})
	got := rc.waitFor(t, 2, 10*time.Second)
	if gap := got[1].At.Sub(got[0].At); gap < 2*time.Second {
		t.Fatalf("retry came %v after a 429 with Retry-After: 2", gap)
	}
	ts.waitStatus(t, key, h, "succeeded", 5*time.Second)
}

// TestDeliveryThroughputWindow checks, on the receiver's clock, that no 60-second window sees
// more requests than maxThroughputPerMinute, retries included, and that none is dropped.
func TestDeliveryThroughputWindow(t *testing.T) { eachStore(t, testDeliveryThroughputWindow) }

func testDeliveryThroughputWindow(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.RetrySchedule = []time.Duration{100 * time.Millisecond} })
	a, key := ts.createAccount(t, "window@acme.test")
	rc := newReceiver(t, "s")
	// The first request fails, so its retry must also fit in the window.
	rc.script(func(n int, _ *http.Request) (int, http.Header, string) {
		if n == 1 {
			return 500, nil, ""
		}
		return 200, nil, ""
	})
	const limit = 3
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"maxThroughputPerMinute": limit}))
	fast := newReceiver(t, "s")
	ts.createWebhook(t, key, hookBody("message-send", fast.srv.URL, "s", nil))
	const events = 5
	for i := range events {
		ts.publish(t, a, "message-send", map[string]any{"messageId": i, "destinationNumber": "+1555"})
	}
	// The unlimited webhook is not held back by the limited one.
	fast.waitFor(t, events, 10*time.Second)
	got := rc.waitFor(t, events+1, 150*time.Second)
	checkWindow(t, got, limit)
	ids := map[string]bool{}
	for _, id := range eventIDs(got) {
		ids[id] = true
	}
	if len(ids) != events {
		t.Fatalf("receiver saw %d distinct events, want %d", len(ids), events)
	}
	eventually(t, 10*time.Second, func() bool { return len(ts.deliveries(t, key, h, "&status=succeeded")) == events },
		func() string { return fmt.Sprintf("deliveries = %v", ts.deliveries(t, key, h, "")) })
}

func TestDeliveryPatchDuringRetries(t *testing.T) { eachStore(t, testDeliveryPatchDuringRetries) }

func testDeliveryPatchDuringRetries(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.RetrySchedule = []time.Duration{time.Second, time.Second} })
	a, key := ts.createAccount(t, "patch@acme.test")
	oldR, newR := newReceiver(t, "old-secret"), newReceiver(t, "new-secret")
	oldR.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", oldR.srv.URL, "old-secret", nil))
	ts.publish(t, a, "message-send", map[string]any{"messageId": 1, "destinationNumber": "+1555"})
	oldR.waitFor(t, 1, 10*time.Second)
	status, m, _ := ts.call(t, "PATCH", fmt.Sprintf("/v3/webhooks/%d", h), key, map[string]any{"url": newR.srv.URL, "secret": "new-secret"})
	if status != 200 {
		t.Fatalf("patch: %d %v", status, m)
	}
	got := newR.waitFor(t, 1, 10*time.Second)[0]
	if !got.SigValid || got.Header.Get("X-Delivery-Attempt") != "2" {
		t.Fatalf("after PATCH: signature valid with the new secret = %v, attempt %s", got.SigValid, got.Header.Get("X-Delivery-Attempt"))
	}
	ts.waitStatus(t, key, h, "succeeded", 5*time.Second)
	if oldR.count() != 1 {
		t.Fatalf("the old URL got %d requests after the PATCH", oldR.count()-1)
	}
}

func TestDeliveryDeleteCancelsPending(t *testing.T) { eachStore(t, testDeliveryDeleteCancelsPending) }

func testDeliveryDeleteCancelsPending(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) {
		c.RetrySchedule = []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
	})
	a, key := ts.createAccount(t, "delete@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	ts.publish(t, a, "message-send", map[string]any{"messageId": 1, "destinationNumber": "+1555"})
	rc.waitFor(t, 1, 10*time.Second)
	list := ts.deliveries(t, key, h, "")
	status, m, _ := ts.call(t, "DELETE", fmt.Sprintf("/v3/webhooks/%d", h), key, nil)
	if status != 200 {
		t.Fatalf("delete: %d %v", status, m)
	}
	after := rc.count()
	time.Sleep(1500 * time.Millisecond)
	if rc.count() != after {
		t.Fatalf("%d requests reached the webhook after DELETE returned", rc.count()-after)
	}
	status, m, _ = ts.call(t, "GET", fmt.Sprintf("/v3/deliveries/%d", int64(list[0]["id"].(float64))), key, nil)
	if status != 200 || m["data"].(map[string]any)["status"] != "cancelled" {
		t.Fatalf("delivery after delete: %d %v", status, m)
	}
}

// TestDeliveryDeleteCancelsBacklog: a webhook with more pending deliveries than the embedded
// store cancels in one write (it cancels them a chunk per write, after the delete) is deleted
// while its receiver holds every request: by the time DELETE returns, its oldest and newest
// deliveries are cancelled and nothing is pending, and no request reaches it afterwards.
func TestDeliveryDeleteCancelsBacklog(t *testing.T) { eachStore(t, testDeliveryDeleteCancelsBacklog) }

func testDeliveryDeleteCancelsBacklog(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.DeliveryTimeout = 30 * time.Second })
	a, key := ts.createAccount(t, "backlog-delete@acme.test")
	rc := newReceiver(t, "s")
	rc.holdAfter(t, 0)
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"maxThroughputPerMinute": 1000000}))
	const events, batch = 5000, 1000
	for i := range events / batch {
		evs := make([]map[string]any, batch)
		for j := range evs {
			evs[j] = map[string]any{"accountId": a, "event": "message-send", "data": map[string]any{"messageId": i*batch + j, "destinationNumber": "+1555"}}
		}
		if status, m, _ := ts.call(t, "POST", "/v3/events/batch", ts.AdminKey, map[string]any{"events": evs}); status != 202 {
			t.Fatalf("batch: %d %v", status, m)
		}
	}
	rc.waitFor(t, 1, 10*time.Second)
	status, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d/deliveries?pageSize=1", h), key, nil)
	if status != 200 || m["data"].(map[string]any)["total"].(float64) != events {
		t.Fatalf("deliveries before the delete: %d %v", status, m)
	}
	newest := int64(m["data"].(map[string]any)["rows"].([]any)[0].(map[string]any)["id"].(float64))
	status, m, _ = ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d/deliveries?pageSize=1&page=%d", h, events-1), key, nil)
	if status != 200 || len(m["data"].(map[string]any)["rows"].([]any)) != 1 {
		t.Fatalf("the oldest delivery before the delete: %d %v", status, m)
	}
	oldest := int64(m["data"].(map[string]any)["rows"].([]any)[0].(map[string]any)["id"].(float64))

	if status, m, _ := ts.call(t, "DELETE", fmt.Sprintf("/v3/webhooks/%d", h), key, nil); status != 200 {
		t.Fatalf("delete: %d %v", status, m)
	}
	after := rc.count()
	for _, id := range []int64{oldest, newest} {
		status, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/deliveries/%d", id), key, nil)
		if status != 200 || m["data"].(map[string]any)["status"] != "cancelled" {
			t.Fatalf("delivery %d when DELETE returned: %d %v", id, status, m)
		}
	}
	q, err := ts.srv.Store().QueueStats(context.Background(), time.Now().Add(time.Hour))
	if err != nil || q.Due+q.Scheduled != 0 {
		t.Fatalf("pending deliveries when DELETE returned: %+v (%v)", q, err)
	}
	time.Sleep(time.Second)
	if n := rc.count() - after; n != 0 {
		t.Fatalf("%d requests reached the webhook after DELETE returned", n)
	}
}

// TestEngineHearsOfDeleteAtCommit: the embedded store tells the engine of a deleted webhook
// when the delete commits, before it cancels the deliveries and whatever the caller does next:
// a webhook deleted through the store alone, not the API, gets nothing more once its receiver
// lets the held requests go.
func TestEngineHearsOfDeleteAtCommit(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *config.Config) { c.DeliveryTimeout = 30 * time.Second })
	a, key := ts.createAccount(t, "commit-delete@acme.test")
	rc := newReceiver(t, "s")
	release := rc.holdAfter(t, 0)
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"maxThroughputPerMinute": 1000000}))
	for i := range 200 {
		ts.publish(t, a, "message-send", map[string]any{"messageId": i, "destinationNumber": "+1555"})
	}
	rc.waitFor(t, 1, 10*time.Second)
	if err := ts.srv.Store().DeleteWebhook(context.Background(), a, h, time.Now()); err != nil {
		t.Fatal(err)
	}
	held := rc.count()
	release()
	time.Sleep(time.Second)
	if n := rc.count() - held; n != 0 {
		t.Fatalf("%d requests reached the webhook after the store deleted it", n)
	}
}

func TestDeliverySlowWebhookDoesNotBlockFast(t *testing.T) {
	eachStore(t, testDeliverySlowWebhookDoesNotBlockFast)
}

func testDeliverySlowWebhookDoesNotBlockFast(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.DeliveryTimeout = 30 * time.Second })
	a, key := ts.createAccount(t, "slow@acme.test")
	slow, fast := newReceiver(t, "s"), newReceiver(t, "s")
	release := slow.holdAfter(t, 0)
	hSlow := ts.createWebhook(t, key, hookBody("message-send", slow.srv.URL, "s", map[string]any{"maxThroughputPerMinute": 1000000}))
	ts.createWebhook(t, key, hookBody("message-send", fast.srv.URL, "s", map[string]any{"maxThroughputPerMinute": 1000000}))
	const events = 300
	for i := range events / 100 {
		batch := make([]map[string]any, 100)
		for j := range batch {
			batch[j] = map[string]any{"accountId": a, "event": "message-send", "data": map[string]any{"messageId": i*100 + j, "destinationNumber": "+1555"}}
		}
		if status, m, _ := ts.call(t, "POST", "/v3/events/batch", ts.AdminKey, map[string]any{"events": batch}); status != 202 {
			t.Fatalf("batch: %d %v", status, m)
		}
	}
	// Every fast delivery arrives while the slow webhook still holds all its requests.
	fast.waitFor(t, events, 20*time.Second)
	if n := slow.count(); n >= events {
		t.Fatalf("slow receiver already answered %d", n)
	}
	release()
	slow.waitFor(t, events, 60*time.Second)
	eventually(t, 20*time.Second, func() bool { return len(ts.deliveries(t, key, hSlow, "&status=succeeded")) == 100 },
		func() string { return "slow webhook's deliveries did not all succeed" })
}

// TestDeliveryInFlightSettings: --max-in-flight and --max-in-flight-per-webhook bound the
// attempts a node has open at once. Receivers that hold every request show how many are open:
// no answer comes back, so no limit within them moves.
func TestDeliveryInFlightSettings(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *config.Config) {
		c.DeliveryTimeout = 30 * time.Second
		c.MaxInFlight, c.MaxInFlightPerWebhook = 5, 2
	})
	a, key := ts.createAccount(t, "inflight@acme.test")
	var rcs []*receiver
	for range 3 {
		rc := newReceiver(t, "s")
		rc.holdAfter(t, 0)
		ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"maxThroughputPerMinute": 1000000}))
		rcs = append(rcs, rc)
	}
	for i := range 10 {
		ts.publish(t, a, "message-send", map[string]any{"messageId": i, "destinationNumber": "+1555"})
	}
	open := func() (total int, each []int) {
		for _, rc := range rcs {
			n := rc.count()
			each = append(each, n)
			total += n
		}
		return total, each
	}
	eventually(t, 10*time.Second, func() bool { n, _ := open(); return n >= 5 },
		func() string { n, each := open(); return fmt.Sprintf("%d requests open (%v), want 5", n, each) })
	time.Sleep(500 * time.Millisecond) // room for any request beyond the limits to arrive
	n, each := open()
	if n != 5 || slices.Max(each) != 2 {
		t.Fatalf("requests open at the receivers: %v (%d in all), want 5 in all and at most 2 each", each, n)
	}
}

func TestPublishIdempotency(t *testing.T) { eachStore(t, testPublishIdempotency) }

func testPublishIdempotency(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "idem@acme.test")
	rc := newReceiver(t, "s")
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	body := map[string]any{"accountId": a, "event": "message-send", "data": map[string]any{"messageId": 1, "destinationNumber": "+1555"}, "idempotencyKey": "order-1"}
	status, first, _ := ts.call(t, "POST", "/v3/events", ts.AdminKey, body)
	if status != 202 {
		t.Fatalf("first publish: %d %v", status, first)
	}
	status, again, _ := ts.call(t, "POST", "/v3/events", ts.AdminKey, body)
	if status != 200 || again["data"].(map[string]any)["id"] != first["data"].(map[string]any)["id"] || again["data"].(map[string]any)["deliveries"].(float64) != 1 {
		t.Fatalf("same key again: %d %v (first %v)", status, again, first)
	}
	rc.waitFor(t, 1, 10*time.Second)
	ts.waitStatus(t, key, h, "succeeded", 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if rc.count() != 1 || len(ts.deliveries(t, key, h, "")) != 1 {
		t.Fatalf("a duplicate publish created a delivery (%d requests)", rc.count())
	}
}

func TestPublishBatch(t *testing.T) { eachStore(t, testPublishBatch) }

func testPublishBatch(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "batch@acme.test")
	rc := newReceiver(t, "s")
	ts.createWebhook(t, key, hookBody("message-reply", rc.srv.URL, "s", nil))
	events := []map[string]any{
		{"accountId": a, "event": "message-reply", "data": map[string]any{"fromNumber": "+1", "toNumber": "+2", "message": "hi"}},
		{"accountId": a, "event": "message-reply", "data": map[string]any{"fromNumber": "+1", "toNumber": "+2"}},
		{"accountId": 999999, "event": "message-reply", "data": map[string]any{"fromNumber": "+1", "toNumber": "+2", "message": "hi"}},
		{"accountId": a, "event": "message-reply", "data": map[string]any{"fromNumber": "+1", "toNumber": "+2", "message": "again"}, "idempotencyKey": "k"},
		{"accountId": a, "event": "message-reply", "data": map[string]any{"fromNumber": "+1", "toNumber": "+2", "message": "again"}, "idempotencyKey": "k"},
	}
	status, m, _ := ts.call(t, "POST", "/v3/events/batch", ts.AdminKey, map[string]any{"events": events})
	if status != 202 {
		t.Fatalf("batch: %d %v", status, m)
	}
	d := m["data"].(map[string]any)
	results := d["results"].([]any)
	codes := []float64{}
	for _, r := range results {
		codes = append(codes, r.(map[string]any)["status"].(float64))
	}
	if !slices.Equal(codes, []float64{202, 400, 404, 202, 200}) || d["accepted"].(float64) != 2 || d["rejected"].(float64) != 2 || d["duplicates"].(float64) != 1 {
		t.Fatalf("batch results = %v", d)
	}
	if msg := results[1].(map[string]any)["message"].(string); !strings.Contains(msg, "events[1].data.message") {
		t.Fatalf("error for item 1 = %q, want it to name events[1].data.message", msg)
	}
	if results[3].(map[string]any)["id"] != results[4].(map[string]any)["id"] {
		t.Fatal("the duplicate in the batch did not return the first event's id")
	}
	rc.waitFor(t, 2, 10*time.Second)
}

func TestDeliveriesAPI(t *testing.T) { eachStore(t, testDeliveriesAPI) }

func testDeliveriesAPI(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.RetrySchedule = nil })
	a, key := ts.createAccount(t, "api@acme.test")
	_, otherKey := ts.createAccount(t, "api-other@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	ts.publish(t, a, "message-send", map[string]any{"messageId": 1, "destinationNumber": "+1555"})
	d := ts.waitStatus(t, key, h, "failed", 10*time.Second)
	id := int64(d["id"].(float64))

	if list := ts.deliveries(t, key, h, "&status=succeeded"); len(list) != 0 {
		t.Fatalf("status filter: %v", list)
	}
	if list := ts.deliveries(t, key, h, "&status=failed"); len(list) != 1 {
		t.Fatalf("status filter: %v", list)
	}
	if status, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d/deliveries?status=lost", h), key, nil); status != 400 || !strings.Contains(m["message"].(string), "status") {
		t.Fatalf("bad status filter: %d %v", status, m)
	}
	if status, _, _ := ts.call(t, "GET", fmt.Sprintf("/v3/deliveries/%d", id), otherKey, nil); status != 404 {
		t.Fatalf("another account read the delivery: %d", status)
	}
	if status, _, _ := ts.call(t, "POST", fmt.Sprintf("/v3/deliveries/%d/retry", id), otherKey, nil); status != 404 {
		t.Fatalf("another account retried the delivery: %d", status)
	}
	if status, _, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d/deliveries", h), otherKey, nil); status != 404 {
		t.Fatalf("another account listed the deliveries: %d", status)
	}

	rc.script(always(200))
	status, m, _ := ts.call(t, "POST", fmt.Sprintf("/v3/deliveries/%d/retry", id), key, nil)
	if status != 202 {
		t.Fatalf("retry: %d %v", status, m)
	}
	got := rc.waitFor(t, 2, 10*time.Second)
	if got[1].Header.Get("X-Delivery-Attempt") != "2" {
		t.Fatalf("manual retry attempt header = %q", got[1].Header.Get("X-Delivery-Attempt"))
	}
	ts.waitStatus(t, key, h, "succeeded", 5*time.Second)

	// Test send: a sample event of the webhook's type, signed, reported at once.
	status, m, _ = ts.call(t, "POST", fmt.Sprintf("/v3/webhooks/%d/test", h), key, nil)
	res := m["data"].(map[string]any)
	if status != 200 || res["statusCode"].(float64) != 200 || res["success"] != true || res["error"] != nil {
		t.Fatalf("test send: %d %v", status, m)
	}
	sample := rc.waitFor(t, 3, 5*time.Second)[2]
	var body map[string]any
	if err := json.Unmarshal(sample.Body, &body); err != nil || body["type"] != "message-send" || !sample.SigValid {
		t.Fatalf("test send body %s (signature valid %v)", sample.Body, sample.SigValid)
	}
	rc.script(always(418))
	_, m, _ = ts.call(t, "POST", fmt.Sprintf("/v3/webhooks/%d/test", h), key, nil)
	if res := m["data"].(map[string]any); res["statusCode"].(float64) != 418 || res["success"] != false || res["error"] != "HTTP 418" {
		t.Fatalf("failing test send: %v", m)
	}
	if status, _, _ := ts.call(t, "POST", "/v3/webhooks/999999/test", key, nil); status != 404 {
		t.Fatalf("test send to a missing webhook: %d", status)
	}
	if len(ts.deliveries(t, key, h, "")) != 1 {
		t.Fatal("a test send was stored as a delivery")
	}
}

func TestMetricsExposed(t *testing.T) { eachStore(t, testMetricsExposed) }

func testMetricsExposed(t *testing.T, start starter) {
	ts := start(t)
	a, key := ts.createAccount(t, "metrics@acme.test")
	rc := newReceiver(t, "s")
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	ts.publish(t, a, "message-send", map[string]any{"messageId": 1, "destinationNumber": "+1555"})
	ts.waitStatus(t, key, h, "succeeded", 10*time.Second)
	status, raw, hdr := ts.callRaw(t, "GET", "/metrics", "", "", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", status, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`hookrelay_events_published_total{event="message-send"} 1`,
		`hookrelay_delivery_outcomes_total{outcome="succeeded"} 1`,
		`hookrelay_delivery_attempts_total{status_code="200"} 1`,
		`hookrelay_delivery_attempt_duration_seconds_count 1`,
		`hookrelay_queue_depth{state="due"} 0`,
		`hookrelay_queue_depth{state="scheduled"} 0`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// checkWindow fails the test if any 60-second window of the receiver's clock saw more than
// limit of the requests; it returns their arrival times in order.
func checkWindow(t *testing.T, got []received, limit int) []time.Time {
	t.Helper()
	var at []time.Time
	for _, g := range got {
		at = append(at, g.At)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Minute {
			j++
		}
		if j-i > limit {
			t.Fatalf("%d requests within 60s from %v (limit %d): %v", j-i, at[i], limit, at)
		}
	}
	return at
}
