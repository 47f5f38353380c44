package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
)

// alertServer starts hookrelay mailing through ms, with a short alert interval and no retries.
func alertServer(t *testing.T, start starter, ms *mailServer, edit ...func(*config.Config)) *testServer {
	return start(t, append([]func(*config.Config){func(c *config.Config) {
		c.SMTPURL = ms.url()
		c.AlertFrom = "alerts@hookrelay.test"
		c.AlertInterval = 3 * time.Second
		c.RetrySchedule = nil
	}}, edit...)...)
}

func sendMessage(t *testing.T, ts *testServer, account int64, n int) {
	t.Helper()
	for i := range n {
		ts.publish(t, account, "message-send", map[string]any{"messageId": i + 1, "destinationNumber": "+15550100"})
	}
}

// webhook reads a webhook object.
func (ts *testServer) webhook(t *testing.T, key string, id int64) map[string]any {
	t.Helper()
	status, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d", id), key, nil)
	if status != 200 {
		t.Fatalf("get webhook: %d %v", status, m)
	}
	return m["data"].(map[string]any)
}

// alerts lists a webhook's alerts, newest first.
func (ts *testServer) alerts(t *testing.T, key string, id int64) []map[string]any {
	t.Helper()
	status, m, _ := ts.call(t, "GET", fmt.Sprintf("/v3/webhooks/%d/alerts", id), key, nil)
	if status != 200 {
		t.Fatalf("list alerts: %d %v", status, m)
	}
	var out []map[string]any
	for _, r := range m["data"].(map[string]any)["rows"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestAlertFirstFailureCoalescingAndRecovery(t *testing.T) {
	eachStore(t, testAlertFirstFailureCoalescingAndRecovery)
}

func testAlertFirstFailureCoalescingAndRecovery(t *testing.T, start starter) {
	ms := startMailServer(t)
	ts := alertServer(t, start, ms)
	a, key := ts.createAccount(t, "first@acme.test")
	rc := newReceiver(t, "top-secret-value")
	rc.script(always(503))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL+"/hooks?token=abc", "top-secret-value",
		map[string]any{"sendAlertEmail": true, "alertEmail": "oncall@acme.test"}))

	sendMessage(t, ts, a, 1)
	first := ms.waitEmails(t, 1, 10*time.Second)[0]
	if first.To != "oncall@acme.test" || first.From != "alerts@hookrelay.test" {
		t.Fatalf("first alert from %s to %s", first.From, first.To)
	}
	if want := fmt.Sprintf("[hookrelay] Webhook %d (message-send) is failing", h); first.Subject != want {
		t.Fatalf("subject %q, want %q", first.Subject, want)
	}
	for _, part := range []string{first.Text, first.HTML} {
		for _, want := range []string{"Failed requests", "1", "HTTP 503", "message-send", strings.TrimPrefix(rc.srv.URL, "http://")} {
			if !strings.Contains(part, want) {
				t.Errorf("alert part lacks %q:\n%s", want, part)
			}
		}
	}
	for _, leak := range []string{"top-secret-value", "token=abc", "<a "} {
		if strings.Contains(first.Raw, leak) {
			t.Errorf("the alert email contains %q", leak)
		}
	}

	// More failures within the interval are gathered into the next email, sent when the
	// interval has passed.
	sendMessage(t, ts, a, 3)
	got := ms.waitEmails(t, 2, 15*time.Second)
	second := got[1]
	if !strings.Contains(second.Subject, "is failing") || !strings.Contains(second.Text, "Failed requests: 3") {
		t.Fatalf("second alert: %q\n%s", second.Subject, second.Text)
	}
	if len(ms.emails()) != 2 {
		t.Fatalf("%d emails for failures within one interval", len(ms.emails()))
	}

	// The first success after alerting sends one recovered email.
	rc.script(always(200))
	sendMessage(t, ts, a, 2)
	got = ms.waitEmails(t, 3, 10*time.Second)
	if want := fmt.Sprintf("[hookrelay] Webhook %d (message-send) has recovered", h); got[2].Subject != want {
		t.Fatalf("third email %q, want %q", got[2].Subject, want)
	}
	time.Sleep(2 * time.Second)
	if n := len(ms.emails()); n != 3 {
		t.Fatalf("%d emails, want 3 (failing, failing, recovered)", n)
	}

	w := ts.webhook(t, key, h)
	if w["consecutiveFailures"].(float64) != 0 || w["lastSuccessAt"] == nil || w["lastDeliveryAt"] == nil || w["status"] != "active" {
		t.Fatalf("webhook health after recovery: %v", w)
	}
	list := ts.alerts(t, key, h)
	if len(list) != 3 || list[0]["kind"] != "recovered" || list[2]["kind"] != "failing" || list[2]["state"] != "sent" ||
		list[2]["recipient"] != "oncall@acme.test" || list[2]["failures"].(float64) != 1 || list[2]["lastError"] != "HTTP 503" {
		t.Fatalf("alerts = %v", list)
	}
}

func TestAlertHealthFields(t *testing.T) { eachStore(t, testAlertHealthFields) }

func testAlertHealthFields(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.RetrySchedule = nil })
	a, key := ts.createAccount(t, "healthfields@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", nil))
	w := ts.webhook(t, key, h)
	if w["lastDeliveryAt"] != nil || w["lastSuccessAt"] != nil || w["consecutiveFailures"].(float64) != 0 || w["status"] != "active" || w["disabledReason"] != nil {
		t.Fatalf("fresh webhook health: %v", w)
	}
	sendMessage(t, ts, a, 3)
	eventually(t, 10*time.Second, func() bool {
		w = ts.webhook(t, key, h)
		return w["consecutiveFailures"].(float64) == 3
	}, func() string { return fmt.Sprintf("webhook health after 3 failures: %v", w) })
	if w["lastDeliveryAt"] == nil || w["lastSuccessAt"] != nil {
		t.Fatalf("webhook health after 3 failures: %v", w)
	}
}

func TestAlertNotForIgnoredOrUnwanted(t *testing.T) { eachStore(t, testAlertNotForIgnoredOrUnwanted) }

func testAlertNotForIgnoredOrUnwanted(t *testing.T, start starter) {
	ms := startMailServer(t)
	ts := alertServer(t, start, ms)
	a, key := ts.createAccount(t, "quiet@acme.test")
	ignored, unwanted := newReceiver(t, "s"), newReceiver(t, "s")
	ignored.script(always(500))
	unwanted.script(always(500))
	hIgnored := ts.createWebhook(t, key, hookBody("message-send", ignored.srv.URL, "s",
		map[string]any{"sendAlertEmail": true, "alertEmail": "x@acme.test", "skipErrorCodes": []any{"500"}}))
	ts.createWebhook(t, key, hookBody("message-send", unwanted.srv.URL, "s", map[string]any{"sendAlertEmail": false}))
	sendMessage(t, ts, a, 3)
	ignored.waitFor(t, 3, 10*time.Second)
	unwanted.waitFor(t, 3, 10*time.Second)
	time.Sleep(3 * time.Second) // two flushes and a mail round
	if got := ms.emails(); len(got) != 0 {
		t.Fatalf("%d emails for ignored errors or a webhook without sendAlertEmail: %+v", len(got), got)
	}
	if w := ts.webhook(t, key, hIgnored); w["consecutiveFailures"].(float64) != 0 {
		t.Fatalf("ignored errors counted as failures: %v", w)
	}
}

func TestAlertFallsBackToAccountEmail(t *testing.T) { eachStore(t, testAlertFallsBackToAccountEmail) }

func testAlertFallsBackToAccountEmail(t *testing.T, start starter) {
	ms := startMailServer(t)
	ts := alertServer(t, start, ms)
	a, key := ts.createAccount(t, "owner@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(502))
	ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"sendAlertEmail": true}))
	// The seed's placeholder address is no address: alerts go to the account too.
	rc2 := newReceiver(t, "s")
	rc2.script(always(502))
	ts.createWebhook(t, key, hookBody("message-send", rc2.srv.URL, "s", map[string]any{"sendAlertEmail": true, "alertEmail": "[email\u00a0protected]"}))
	sendMessage(t, ts, a, 1)
	for _, e := range ms.waitEmails(t, 2, 10*time.Second) {
		if e.To != "owner@acme.test" {
			t.Fatalf("alert went to %q, want the account's email", e.To)
		}
	}
}

func TestAlertSMTPDownThenUp(t *testing.T) { eachStore(t, testAlertSMTPDownThenUp) }

func testAlertSMTPDownThenUp(t *testing.T, start starter) {
	ms := newMailServer(t) // reserved, not listening yet
	ts := alertServer(t, start, ms)
	a, key := ts.createAccount(t, "down@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"sendAlertEmail": true}))
	sendMessage(t, ts, a, 1)
	// The alert is queued and its first send fails.
	eventually(t, 10*time.Second, func() bool {
		l := ts.alerts(t, key, h)
		return len(l) == 1 && l[0]["tries"].(float64) >= 1 && l[0]["state"] == "pending" && l[0]["sendError"] != nil
	}, func() string { return fmt.Sprintf("alerts while the mail server is down: %v", ts.alerts(t, key, h)) })
	ms.start(t)
	got := ms.waitEmails(t, 1, 20*time.Second)
	time.Sleep(2 * time.Second)
	if n := len(ms.emails()); n != 1 {
		t.Fatalf("%d emails after the mail server came back, want exactly 1", n)
	}
	if !strings.Contains(got[0].Subject, "is failing") {
		t.Fatalf("subject %q", got[0].Subject)
	}
	if l := ts.alerts(t, key, h); l[0]["state"] != "sent" || l[0]["sentAt"] == nil {
		t.Fatalf("alert after sending: %v", l[0])
	}
}

func TestAlertSurvivesRestartOnce(t *testing.T) { eachStore(t, testAlertSurvivesRestartOnce) }

func testAlertSurvivesRestartOnce(t *testing.T, start starter) {
	ms := newMailServer(t)
	ts := alertServer(t, start, ms)
	a, key := ts.createAccount(t, "restart@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"sendAlertEmail": true}))
	sendMessage(t, ts, a, 1)
	eventually(t, 10*time.Second, func() bool { return len(ts.alerts(t, key, h)) > 0 },
		func() string { return "no alert queued" })
	ts.stop()
	ms.start(t)
	ts2 := startWith(t, ts.Config)
	ms.waitEmails(t, 1, 20*time.Second)
	time.Sleep(3 * time.Second)
	if n := len(ms.emails()); n != 1 {
		t.Fatalf("%d emails across a restart, want exactly 1", n)
	}
	if l := ts2.alerts(t, key, h); len(l) != 1 || l[0]["state"] != "sent" {
		t.Fatalf("alerts after restart: %v", l)
	}
}

func TestAutoDisableAndReenable(t *testing.T) { eachStore(t, testAutoDisableAndReenable) }

func testAutoDisableAndReenable(t *testing.T, start starter) {
	ms := startMailServer(t)
	ts := alertServer(t, start, ms, func(c *config.Config) { c.DisableAfter = time.Second })
	a, key := ts.createAccount(t, "disable@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"sendAlertEmail": true}))
	// Ten failed deliveries, spread over more than DisableAfter.
	sendMessage(t, ts, a, 5)
	rc.waitFor(t, 5, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	sendMessage(t, ts, a, 5)
	var w map[string]any
	eventually(t, 15*time.Second, func() bool {
		w = ts.webhook(t, key, h)
		return w["status"] == "disabled"
	}, func() string { return fmt.Sprintf("webhook not disabled: %v", w) })
	if r, _ := w["disabledReason"].(string); !strings.Contains(r, "no successful delivery") {
		t.Fatalf("disabledReason = %v", w["disabledReason"])
	}
	emails := ms.waitEmails(t, 2, 10*time.Second)
	disabled := 0
	for _, e := range ms.emails() {
		if strings.HasSuffix(e.Subject, "was disabled") {
			disabled++
			if !strings.Contains(e.Text, "no successful delivery") || !strings.Contains(e.Text, `{"status":"active"}`) {
				t.Fatalf("disabled email:\n%s", e.Text)
			}
		}
	}
	if disabled != 1 {
		t.Fatalf("%d disabled emails among %+v", disabled, emails)
	}
	// New events are kept as cancelled and not sent.
	before := rc.count()
	sendMessage(t, ts, a, 1)
	time.Sleep(time.Second)
	if rc.count() != before {
		t.Fatal("a disabled webhook received a delivery")
	}
	list := ts.deliveries(t, key, h, "&pageSize=1")
	if len(list) == 0 || list[0]["status"] != "cancelled" || !strings.Contains(fmt.Sprint(list[0]["lastError"]), "disabled") {
		t.Fatalf("newest delivery of a disabled webhook: %v", list)
	}
	// Turned back on, it starts afresh and receives again.
	status, m, _ := ts.call(t, "PATCH", fmt.Sprintf("/v3/webhooks/%d", h), key, map[string]any{"status": "active"})
	if status != 200 || m["data"].(map[string]any)["status"] != "active" || m["data"].(map[string]any)["disabledReason"] != nil ||
		m["data"].(map[string]any)["consecutiveFailures"].(float64) != 0 {
		t.Fatalf("re-enable: %d %v", status, m)
	}
	rc.script(always(200))
	sendMessage(t, ts, a, 1)
	rc.waitFor(t, before+1, 10*time.Second)
}

func TestGoneDisablesAtOnce(t *testing.T) { eachStore(t, testGoneDisablesAtOnce) }

func testGoneDisablesAtOnce(t *testing.T, start starter) {
	ms := startMailServer(t)
	ts := alertServer(t, start, ms, func(c *config.Config) { c.RetrySchedule = []time.Duration{time.Second} })
	a, key := ts.createAccount(t, "gone@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(http.StatusGone))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"sendAlertEmail": true}))
	sendMessage(t, ts, a, 1)
	eventually(t, 10*time.Second, func() bool { return ts.webhook(t, key, h)["status"] == "disabled" },
		func() string {
			return fmt.Sprintf("a webhook answering 410 was not disabled: %v", ts.webhook(t, key, h))
		})
	got := ms.waitEmails(t, 1, 10*time.Second)
	time.Sleep(1500 * time.Millisecond)
	if len(ms.emails()) != 1 || !strings.HasSuffix(got[0].Subject, "was disabled") || !strings.Contains(got[0].Text, "410 Gone") {
		t.Fatalf("emails after 410: %+v", ms.emails())
	}
	if rc.count() != 1 {
		t.Fatalf("a webhook answering 410 was retried (%d requests)", rc.count())
	}
}

func TestAlertsKeptWithoutSMTP(t *testing.T) { eachStore(t, testAlertsKeptWithoutSMTP) }

func testAlertsKeptWithoutSMTP(t *testing.T, start starter) {
	ts := start(t, func(c *config.Config) { c.RetrySchedule = nil })
	a, key := ts.createAccount(t, "nosmtp@acme.test")
	rc := newReceiver(t, "s")
	rc.script(always(500))
	h := ts.createWebhook(t, key, hookBody("message-send", rc.srv.URL, "s", map[string]any{"sendAlertEmail": true}))
	sendMessage(t, ts, a, 1)
	var l []map[string]any
	eventually(t, 10*time.Second, func() bool { l = ts.alerts(t, key, h); return len(l) == 1 },
		func() string { return "no alert kept without a mail server" })
	if l[0]["state"] != "logged" || l[0]["kind"] != "failing" || l[0]["recipient"] != "nosmtp@acme.test" {
		t.Fatalf("alert without a mail server: %v", l[0])
	}
	if !strings.Contains(ts.logs.String(), "alert kept, not mailed") {
		t.Fatal("the alert was not logged")
	}
	if status, _, _ := ts.call(t, "GET", "/v3/webhooks/999999/alerts", key, nil); status != 404 {
		t.Fatalf("alerts of a missing webhook: %d", status)
	}
}
