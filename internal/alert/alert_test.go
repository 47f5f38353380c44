package alert

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func failure(at time.Time, attempt, status int) store.Attempt {
	return store.Attempt{Attempt: attempt, At: at, StatusCode: status, Error: "HTTP " + http(status)}
}

func http(code int) string { return map[int]string{500: "500", 503: "503", 410: "410"}[code] }

func TestApplyCoalescesAndRecovers(t *testing.T) {
	m := New(Config{Interval: time.Hour, DisableAfter: 5 * 24 * time.Hour, Mailer: nopMailer{}})
	w := &store.Webhook{ID: 7, AccountID: 1, Event: "message-send", URL: "https://u:p@example.com/h?token=x", SendAlertEmail: true, Status: store.WebhookActive}
	var st store.AlertState

	// First failure: alert at once.
	m.Attempted(*w, store.StatusPending, failure(t0, 1, 500))
	tl := m.tallies[7]
	delete(m.tallies, 7)
	alerts := m.fold(w, &st, tl, to("ops@acme.test"), t0)
	if len(alerts) != 1 || alerts[0].Kind != store.AlertFailing || alerts[0].Failures != 1 || alerts[0].URL != "https://example.com/h?…" {
		t.Fatalf("first failure: %+v", alerts)
	}
	if w.ConsecutiveFailures != 1 || !w.FailingSince.Equal(t0) || w.FailingDeliveries != 1 || !st.Alerting {
		t.Fatalf("after first failure: webhook %+v state %+v", w, st)
	}

	// Failures within the interval are gathered, not sent.
	for i := range 3 {
		m.Attempted(*w, store.StatusFailed, failure(t0.Add(time.Duration(i+1)*time.Minute), 1, 503))
	}
	alerts = m.fold(w, &st, m.tallies[7], to("ops@acme.test"), t0.Add(5*time.Minute))
	delete(m.tallies, 7)
	if len(alerts) != 0 || st.Pending != 3 || st.PendingLastStatus != 503 || w.ConsecutiveFailures != 4 || w.FailingDeliveries != 4 {
		t.Fatalf("within the interval: alerts %+v, state %+v, webhook %+v", alerts, st, w)
	}

	// A success after alerting: one recovered email carrying the gathered failures.
	m.Attempted(*w, store.StatusSucceeded, store.Attempt{Attempt: 1, At: t0.Add(10 * time.Minute), StatusCode: 200})
	alerts = m.fold(w, &st, m.tallies[7], to("ops@acme.test"), t0.Add(10*time.Minute))
	delete(m.tallies, 7)
	if len(alerts) != 1 || alerts[0].Kind != store.AlertRecovered || alerts[0].Failures != 3 {
		t.Fatalf("recovery: %+v", alerts)
	}
	if st.Alerting || st.Pending != 0 || w.ConsecutiveFailures != 0 || !w.FailingSince.IsZero() || !w.LastSuccessAt.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("after recovery: webhook %+v state %+v", w, st)
	}

	// Failing again within the interval of the last failing email: gathered, sent later by Due.
	m.Attempted(*w, store.StatusFailed, failure(t0.Add(20*time.Minute), 1, 500))
	alerts = m.fold(w, &st, m.tallies[7], to("ops@acme.test"), t0.Add(20*time.Minute))
	delete(m.tallies, 7)
	if len(alerts) != 0 || st.Pending != 1 {
		t.Fatalf("failing again within the interval: %+v, %+v", alerts, st)
	}
	// After the interval, the next failure alerts at once with everything gathered.
	m.Attempted(*w, store.StatusFailed, failure(t0.Add(61*time.Minute), 1, 500))
	alerts = m.fold(w, &st, m.tallies[7], to("ops@acme.test"), t0.Add(61*time.Minute))
	if len(alerts) != 1 || alerts[0].Failures != 2 || alerts[0].Kind != store.AlertFailing {
		t.Fatalf("after the interval: %+v", alerts)
	}
}

func TestApplyIgnoredAndNoEmail(t *testing.T) {
	m := New(Config{Interval: time.Hour, Mailer: nopMailer{}})
	w := &store.Webhook{ID: 1, SendAlertEmail: true, Status: store.WebhookActive}
	var st store.AlertState
	m.Attempted(*w, store.StatusIgnored, failure(t0, 1, 500))
	if alerts := m.fold(w, &st, m.tallies[1], to("x@acme.test"), t0); len(alerts) != 0 || w.ConsecutiveFailures != 0 || !w.LastDeliveryAt.Equal(t0) {
		t.Fatalf("ignored error: %+v, %+v", alerts, w)
	}
	delete(m.tallies, 1)
	quiet := &store.Webhook{ID: 2, SendAlertEmail: false, Status: store.WebhookActive}
	m.Attempted(*quiet, store.StatusFailed, failure(t0, 1, 500))
	if alerts := m.fold(quiet, &st, m.tallies[2], to("x@acme.test"), t0); len(alerts) != 0 || quiet.ConsecutiveFailures != 1 {
		t.Fatalf("sendAlertEmail false: %+v, %+v", alerts, quiet)
	}
}

func TestApplyDisables(t *testing.T) {
	m := New(Config{Interval: time.Hour, DisableAfter: time.Hour, Mailer: nopMailer{}})
	w := &store.Webhook{ID: 3, SendAlertEmail: true, Status: store.WebhookActive, FailingSince: t0, FailingDeliveries: 9, ConsecutiveFailures: 9}
	st := store.AlertState{Alerting: true, LastAlertAt: t0.Add(30 * time.Minute)}
	// Nine deliveries over two hours are not enough…
	m.Attempted(*w, store.StatusFailed, failure(t0.Add(2*time.Hour), 2, 500))
	if alerts := m.fold(w, &st, m.tallies[3], to("x@acme.test"), t0.Add(2*time.Hour)); w.Status != store.WebhookActive {
		t.Fatalf("disabled with 9 failing deliveries: %+v %+v", w, alerts)
	}
	delete(m.tallies, 3)
	// …the tenth is.
	m.Attempted(*w, store.StatusFailed, failure(t0.Add(2*time.Hour), 1, 500))
	alerts := m.fold(w, &st, m.tallies[3], to("x@acme.test"), t0.Add(2*time.Hour))
	delete(m.tallies, 3)
	if w.Status != store.WebhookDisabled || !strings.Contains(w.DisabledReason, "across 10 failed deliveries") {
		t.Fatalf("not disabled after 10 deliveries over the period: %+v", w)
	}
	if len(alerts) != 1 || alerts[0].Kind != store.AlertDisabled || alerts[0].Reason != w.DisabledReason {
		t.Fatalf("disable alerts: %+v", alerts)
	}
	// 410 disables at once, with one email and no failing email besides.
	gone := &store.Webhook{ID: 4, SendAlertEmail: true, Status: store.WebhookActive}
	var st2 store.AlertState
	m.Attempted(*gone, store.StatusFailed, failure(t0, 1, 410))
	alerts = m.fold(gone, &st2, m.tallies[4], to("x@acme.test"), t0)
	if gone.Status != store.WebhookDisabled || len(alerts) != 1 || alerts[0].Kind != store.AlertDisabled || alerts[0].Failures != 1 {
		t.Fatalf("410: %+v %+v", gone, alerts)
	}
}

func TestRenderAndRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pass@example.com/hooks?token=abc#frag": "https://example.com/hooks?…",
		"http://example.com:8080/a/b":                        "http://example.com:8080/a/b",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	a := store.Alert{ID: 1, WebhookID: 11, Event: "delivery-status", Kind: store.AlertFailing, Recipient: "ops@acme.test",
		URL: "https://example.com/<h>", Failures: 3, FirstFailureAt: t0, LastFailureAt: t0.Add(time.Minute), LastStatusCode: 503,
		LastError: "HTTP 503", Events: []string{"delivery-status"}}
	m, err := Render(a, "hookrelay@localhost", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "[hookrelay] Webhook 11 (delivery-status) is failing" || m.To != "ops@acme.test" {
		t.Fatalf("message = %+v", m)
	}
	for _, want := range []string{"Failed requests: 3", "HTTP 503", "2026-03-01 12:00:00 UTC to 2026-03-01 12:01:00 UTC", "delivery-status", "https://example.com/<h>"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(m.HTML, "https://example.com/&lt;h&gt;") || strings.Contains(m.HTML, "<a ") {
		t.Errorf("HTML not escaped or has a link:\n%s", m.HTML)
	}
	for kind, suffix := range map[string]string{store.AlertRecovered: "has recovered", store.AlertDisabled: "was disabled"} {
		a.Kind = kind
		if m, err := Render(a, "x@y.z", time.Hour); err != nil || !strings.HasSuffix(m.Subject, suffix) {
			t.Errorf("%s: %q %v", kind, m.Subject, err)
		}
	}
}

type nopMailer struct{}

func (nopMailer) Send(context.Context, Message) error { return nil }

// claimCancelled is a store whose ClaimAlerts, like PostgreSQL's when its context is cancelled
// in flight, commits the claim and then reports the cancellation.
type claimCancelled struct {
	store.Store
	cancel context.CancelFunc
}

func (s claimCancelled) ClaimAlerts(ctx context.Context, owner string, now time.Time, limit int, leaseUntil time.Time) ([]store.Alert, error) {
	s.cancel() // the node starts to stop while the claim runs
	alerts, err := s.Store.ClaimAlerts(context.WithoutCancel(ctx), owner, now, limit, leaseUntil)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return alerts, err
}

// accountStore opens an SQLite store in a temporary directory, closed when the test ends, with
// one account of the email given.
func accountStore(t *testing.T, email string) (*sqlite.Store, store.Account) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, _, err := st.CreateAccount(context.Background(), store.Account{Email: email, Name: "Acme", CreatedAt: t0},
		store.NewAPIKey{Prefix: "hr_alert", Hash: []byte(email)})
	if err != nil {
		t.Fatal(err)
	}
	return st, a
}

// TestStopDuringClaimLosesNoAlert: an alert claimed while the node stops is given back due at
// once, not left leased (5 minutes) for the next start.
func TestStopDuringClaimLosesNoAlert(t *testing.T) {
	ctx := context.Background()
	st, a := accountStore(t, "stop@acme.test")
	w, err := st.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com/hook",
		Secret: "s", Status: store.WebhookActive, CreatedAt: t0, UpdatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.UpdateHealth(ctx, []int64{w.ID}, func(*store.Webhook, *store.AlertState) ([]store.Alert, error) {
		return []store.Alert{{AccountID: a.ID, WebhookID: w.ID, Kind: store.AlertFailing, Recipient: "ops@acme.test",
			URL: w.URL, Event: w.Event, Failures: 1, FirstFailureAt: now, LastFailureAt: now, State: store.AlertPending,
			NextTryAt: now, CreatedAt: now}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	run, stop := context.WithCancel(ctx)
	m := New(Config{Store: claimCancelled{st, stop}, Owner: "stopping", Mailer: nopMailer{}, From: "hookrelay@acme.test"})
	m.mailOnce(run)
	// The next start finds it due now, its tries not counted.
	later := time.Now().Add(time.Second)
	got, err := st.ClaimAlerts(ctx, "next", later, 10, later.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Tries != 0 || got[0].State != store.AlertPending {
		t.Fatalf("after a stop during the claim the next start claims %+v, want the alert, untried", got)
	}
}

// to is a recipient for fold.
func to(email string) func() string { return func() string { return email } }

// countingReads is a store that counts GetAccount calls.
type countingReads struct {
	store.Store
	accounts int
}

func (s *countingReads) GetAccount(ctx context.Context, id int64) (store.Account, error) {
	s.accounts++
	return s.Store.GetAccount(ctx, id)
}

// TestFlushReadsAccountsForAlertsOnly: a flush reads an account's email only when one of its
// webhooks failed, and still finds it when a webhook recovers in a later flush.
func TestFlushReadsAccountsForAlertsOnly(t *testing.T) {
	ctx := context.Background()
	db, a := accountStore(t, "owner@acme.test")
	st := &countingReads{Store: db}
	var hooks []store.Webhook
	for range 3 {
		w, err := db.CreateWebhook(ctx, store.Webhook{AccountID: a.ID, Event: "message-send", URL: "https://example.com/hook",
			Secret: "s", SendAlertEmail: true, Status: store.WebhookActive, CreatedAt: t0, UpdatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w)
	}
	m := New(Config{Store: st, Interval: time.Hour, Mailer: nopMailer{}})
	ok := store.Attempt{Attempt: 1, StatusCode: 200}
	flush := func(now time.Time, wantReads int) {
		t.Helper()
		st.accounts = 0
		if err := m.Flush(ctx, now); err != nil {
			t.Fatal(err)
		}
		if st.accounts != wantReads {
			t.Fatalf("flush at %s read %d accounts, want %d", now.Format(time.TimeOnly), st.accounts, wantReads)
		}
	}
	kinds := func(w store.Webhook) []string {
		t.Helper()
		alerts, _, err := db.ListAlerts(ctx, a.ID, w.ID, store.Page{Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ks []string
		for _, al := range alerts {
			if al.Recipient != "owner@acme.test" {
				t.Errorf("%s alert to %q, want the account's email", al.Kind, al.Recipient)
			}
			ks = append(ks, al.Kind)
		}
		return ks
	}

	// Successes only: nothing to email, nothing read; the health is written.
	for _, w := range hooks {
		ok.At = t0
		m.Attempted(w, store.StatusSucceeded, ok)
	}
	flush(t0, 0)
	if got, err := db.WebhookByID(ctx, hooks[0].ID); err != nil || !got.LastSuccessAt.Equal(t0) {
		t.Fatalf("after a flush of successes: %+v, %v", got, err)
	}

	// A failure: its account is read once, and the failing alert goes there.
	m.Attempted(hooks[0], store.StatusFailed, failure(t0.Add(time.Second), 1, 500))
	ok.At = t0.Add(time.Second)
	m.Attempted(hooks[1], store.StatusSucceeded, ok)
	flush(t0.Add(time.Second), 1)
	if got := kinds(hooks[0]); len(got) != 1 || got[0] != store.AlertFailing {
		t.Fatalf("after a failure: alerts %v", got)
	}

	// It recovers in a flush without failures: the recovered alert still finds the email.
	ok.At = t0.Add(2 * time.Second)
	m.Attempted(hooks[0], store.StatusSucceeded, ok)
	m.Attempted(hooks[2], store.StatusSucceeded, ok)
	flush(t0.Add(2*time.Second), 1)
	if got := kinds(hooks[0]); len(got) != 2 || got[0] != store.AlertRecovered {
		t.Fatalf("after recovering: alerts %v, want recovered then failing", got)
	}
	if got, err := db.WebhookByID(ctx, hooks[2].ID); err != nil || !got.LastSuccessAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("a webhook flushed beside the recovery: %+v, %v", got, err)
	}
}
