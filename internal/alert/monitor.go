// Package alert keeps each webhook's health and tells its owner, by email, when it fails, when it
// recovers and when it is disabled.
//
// The delivery engine reports every attempt to the Monitor, which tallies them in memory and
// once a second applies the tallies to the store (store.UpdateHealth): the health fields, the
// coalescing state, the alerts to send and, when a webhook must be disabled, its status — all in
// one transaction per webhook, so nodes sharing a database never both act on the same failure,
// and a restart neither loses a queued alert nor sends one twice. Queued alerts are mailed by a
// separate loop that retries with backoff; without a mail server they are logged and kept.
//
// Coalescing: the first failure alerts at once; failures within the alert interval after an
// email are gathered and reported together when the interval has passed; the first success
// after a failing alert sends one "recovered" email. Ignored errors are neither failures nor
// successes.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/internal/metrics"
	"github.com/hookrelay/hookrelay/internal/store"
)

// HiddenEmail is the placeholder Mobile Text Alerts' published example shows for an address;
// alerts for a webhook with it go to the account's email.
const HiddenEmail = "[email\u00a0protected]"

// Config configures a Monitor.
type Config struct {
	Store store.Store
	// Owner names this node's leases on alerts.
	Owner string
	// Interval: at most one failing alert per webhook per interval.
	Interval time.Duration
	// DisableAfter: a webhook failing without a success for this long, across at least
	// MinFailingDeliveries deliveries, is disabled; 0 never disables for that reason.
	DisableAfter         time.Duration
	MinFailingDeliveries int
	// Mailer sends the emails; nil keeps alerts as "logged".
	Mailer  Mailer
	From    string
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// StatusChanged is told when the monitor disables a webhook.
	StatusChanged func(store.Webhook)
	// FlushInterval is how often tallies are written (1s).
	FlushInterval time.Duration
	// GiveUpAfter is how long a failing send is retried (24h).
	GiveUpAfter time.Duration
}

// Monitor tallies attempts and turns them into health and alerts.
type Monitor struct {
	cfg  Config
	st   store.Store
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	tallies map[int64]*tally
}

// run summarises failures: how many, when, the last error, which event types.
type run struct {
	count       int
	deliveries  int // failures that were a delivery's first attempt
	first, last time.Time
	lastStatus  int
	lastError   string
	events      []string
	gone        bool // a 410 Gone came back
}

func (r *run) add(a store.Attempt, event string) {
	if r.count == 0 {
		r.first = a.At
	}
	r.count++
	if a.Attempt == 1 {
		r.deliveries++
	}
	r.last, r.lastStatus, r.lastError = a.At, a.StatusCode, a.Error
	if !slices.Contains(r.events, event) {
		r.events = append(r.events, event)
	}
	if a.StatusCode == 410 {
		r.gone = true
	}
}

func (r *run) merge(o run) {
	if o.count == 0 {
		return
	}
	if r.count == 0 {
		*r = o
		return
	}
	r.count += o.count
	r.deliveries += o.deliveries
	r.last, r.lastStatus, r.lastError = o.last, o.lastStatus, o.lastError
	r.gone = r.gone || o.gone
	for _, e := range o.events {
		if !slices.Contains(r.events, e) {
			r.events = append(r.events, e)
		}
	}
}

// tally is what happened to one webhook since the last flush, in order: failures before its
// last success (before), the success, and failures after it (after).
type tally struct {
	accountID     int64
	lastAt        time.Time
	lastSuccessAt time.Time
	succeeded     bool
	before, after run
}

// New returns a monitor; Run starts it.
func New(cfg Config) *Monitor {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.GiveUpAfter == 0 {
		cfg.GiveUpAfter = 24 * time.Hour
	}
	if cfg.MinFailingDeliveries == 0 {
		cfg.MinFailingDeliveries = 10
	}
	return &Monitor{cfg: cfg, st: cfg.Store, log: cfg.Logger, wake: make(chan struct{}, 1), tallies: map[int64]*tally{}}
}

// Attempted records an attempt (the delivery engine's Observer).
func (m *Monitor) Attempted(w store.Webhook, status string, a store.Attempt) {
	end := a.At.Add(time.Duration(a.DurationMs) * time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tallies[w.ID]
	if t == nil {
		t = &tally{}
		m.tallies[w.ID] = t
	}
	t.accountID = w.AccountID
	if end.After(t.lastAt) {
		t.lastAt = end
	}
	switch status {
	case store.StatusSucceeded:
		t.succeeded = true
		t.lastSuccessAt = end
		t.before.merge(t.after)
		t.after = run{}
	case store.StatusIgnored:
	default: // retry or failed: a failure that counts
		a.At = end
		t.after.add(a, w.Event)
	}
}

// Run flushes tallies, queues coalesced alerts whose interval has passed, and mails queued
// alerts, until ctx ends; then it flushes once more.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { m.mailLoop(ctx) })
	flush := time.NewTicker(m.cfg.FlushInterval)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			m.Flush(context.WithoutCancel(ctx), time.Now())
			wg.Wait()
			return
		case <-flush.C:
			now := time.Now()
			if err := m.Flush(ctx, now); err != nil && ctx.Err() == nil {
				m.log.Error("record webhook health", "err", err)
			}
			if err := m.Due(ctx, now); err != nil && ctx.Err() == nil {
				m.log.Error("queue coalesced alerts", "err", err)
			}
		}
	}
}

// Flush applies the tallies gathered so far.
func (m *Monitor) Flush(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	tallies := m.tallies
	m.tallies = map[int64]*tally{}
	m.mu.Unlock()
	if len(tallies) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(tallies))
	var failing []int64
	for id, t := range tallies {
		ids = append(ids, id)
		if t.before.count > 0 || t.after.count > 0 {
			failing = append(failing, t.accountID)
		}
	}
	slices.Sort(ids)
	// Only a webhook with failures is expected to need its alerts' recipient, so only their
	// accounts' emails are read first. Reading every account's, every second, was 30% of
	// the flushes' time with 10,000 webhooks on 1,000 accounts.
	r := recipients{}
	err := r.read(ctx, m.st, failing)
	var changed []store.Webhook
	var queued []store.Alert
	if err == nil {
		changed, queued, err = m.apply(ctx, ids, tallies, r, now)
	}
	if errors.Is(err, errUnread) {
		// A webhook without failures here needed one, to say it recovered: read them all.
		accounts := make([]int64, 0, len(tallies))
		for _, t := range tallies {
			accounts = append(accounts, t.accountID)
		}
		if err = r.read(ctx, m.st, accounts); err == nil {
			changed, queued, err = m.apply(ctx, ids, tallies, r, now)
		}
	}
	if err != nil {
		m.restore(tallies)
		return fmt.Errorf("update health: %w", err)
	}
	m.queued(queued)
	m.changed(changed)
	return nil
}

// errUnread says an alert needed the email of an account not read before the flush.
var errUnread = errors.New("an alert's recipient was not read")

// apply folds the tallies into the stored webhooks in one UpdateHealth, and returns the
// webhooks whose status changed and the alerts queued. It fails with errUnread, having stored
// nothing, when an alert needs an account's email that r does not hold.
func (m *Monitor) apply(ctx context.Context, ids []int64, tallies map[int64]*tally, r recipients, now time.Time) ([]store.Webhook, []store.Alert, error) {
	var queued []store.Alert
	changed, err := m.st.UpdateHealth(ctx, ids, func(w *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		unread := false
		to := func() string {
			email, ok := r.of(*w)
			unread = unread || !ok
			return email
		}
		alerts := m.fold(w, st, tallies[w.ID], to, now)
		if unread {
			return nil, errUnread
		}
		queued = append(queued, alerts...)
		return alerts, nil
	})
	return changed, queued, err
}

// restore puts back tallies a failed flush did not write, so the next flush writes them.
func (m *Monitor) restore(tallies map[int64]*tally) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, t := range tallies {
		if newer := m.tallies[id]; newer != nil {
			// Failures before a later success stay before it; a later success wins.
			t.after.merge(newer.before)
			if newer.succeeded {
				t.before.merge(t.after)
				t.after = newer.after
				t.succeeded, t.lastSuccessAt = true, newer.lastSuccessAt
			} else {
				t.after.merge(newer.after)
			}
			if newer.lastAt.After(t.lastAt) {
				t.lastAt = newer.lastAt
			}
		}
		m.tallies[id] = t
	}
}

// Due queues the gathered failures of webhooks whose last alert is an interval old.
func (m *Monitor) Due(ctx context.Context, now time.Time) error {
	ids, err := m.st.AlertsDue(ctx, now.Add(-m.cfg.Interval))
	if err != nil || len(ids) == 0 {
		return err
	}
	var accounts []int64
	for _, id := range ids {
		w, err := m.st.WebhookByID(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		accounts = append(accounts, w.AccountID)
	}
	r := recipients{}
	if err := r.read(ctx, m.st, accounts); err != nil {
		return err
	}
	var queued []store.Alert
	_, err = m.st.UpdateHealth(ctx, ids, func(w *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		to, _ := r.of(*w)
		if st.Pending == 0 || now.Sub(st.LastAlertAt) < m.cfg.Interval {
			return nil, nil
		}
		if !w.SendAlertEmail || to == "" {
			clearPending(st)
			return nil, nil
		}
		a := m.failingAlert(w, st, to, now)
		queued = append(queued, a)
		return []store.Alert{a}, nil
	})
	if err != nil {
		return err
	}
	m.queued(queued)
	return nil
}

// recipients holds the emails of the accounts read, by account id ("" for one not found).
type recipients map[int64]string

// read reads the emails of the accounts not read yet.
func (r recipients) read(ctx context.Context, st store.Store, ids []int64) error {
	for _, id := range ids {
		if _, ok := r[id]; ok {
			continue
		}
		a, err := st.GetAccount(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		r[id] = a.Email
	}
	return nil
}

// of is where w's alerts go: its alertEmail, else its account's email; ok is false when the
// account's email is needed and was not read.
func (r recipients) of(w store.Webhook) (email string, ok bool) {
	if w.AlertEmail != "" && w.AlertEmail != HiddenEmail && w.AlertEmail != "[email protected]" {
		return w.AlertEmail, true
	}
	email, ok = r[w.AccountID]
	return email, ok
}

// fold folds a tally into the stored webhook and its alert state and returns the alerts to
// queue. to gives the alerts' recipient; it is called only when an email may be sent.
func (m *Monitor) fold(w *store.Webhook, st *store.AlertState, t *tally, to func() string, now time.Time) []store.Alert {
	if t.lastAt.After(w.LastDeliveryAt) {
		w.LastDeliveryAt = t.lastAt
	}
	mail := func() bool { return w.SendAlertEmail && to() != "" }
	var alerts []store.Alert
	if t.succeeded {
		// Failures before the success close the streak; a failing alert out means recovered.
		if st.Alerting {
			addPending(st, t.before)
			if mail() {
				alerts = append(alerts, m.alert(w, store.AlertRecovered, to(), pendingRun(st), now))
			}
		}
		st.Alerting = false
		clearPending(st)
		w.LastSuccessAt = t.lastSuccessAt
		w.ConsecutiveFailures, w.FailingDeliveries, w.FailingSince = 0, 0, time.Time{}
	}
	f := t.after
	if f.count == 0 || w.Status == store.WebhookDisabled {
		return alerts
	}
	if w.FailingSince.IsZero() {
		w.FailingSince = f.first
		w.FailingDeliveries = max(f.deliveries, 1)
	} else {
		w.FailingDeliveries += f.deliveries
	}
	w.ConsecutiveFailures += f.count
	if mail() {
		addPending(st, f)
	}
	var reason string
	switch {
	case f.gone:
		reason = "the endpoint answered 410 Gone"
	case m.cfg.DisableAfter > 0 && now.Sub(w.FailingSince) >= m.cfg.DisableAfter && w.FailingDeliveries >= m.cfg.MinFailingDeliveries:
		reason = fmt.Sprintf("no successful delivery since %s, across %d failed deliveries",
			w.FailingSince.UTC().Format(time.RFC3339), w.FailingDeliveries)
	}
	if reason != "" {
		// One email says so, with the failures not reported yet.
		w.Status, w.DisabledReason, w.UpdatedAt = store.WebhookDisabled, reason, now
		if mail() {
			a := m.alert(w, store.AlertDisabled, to(), pendingRun(st), now)
			a.Reason = reason
			alerts = append(alerts, a)
		}
		st.Alerting = false
		clearPending(st)
		return alerts
	}
	if mail() && (st.LastAlertAt.IsZero() || now.Sub(st.LastAlertAt) >= m.cfg.Interval) {
		alerts = append(alerts, m.failingAlert(w, st, to(), now))
	}
	return alerts
}

// failingAlert turns the pending failures into a failing alert and starts a new interval.
func (m *Monitor) failingAlert(w *store.Webhook, st *store.AlertState, recipient string, now time.Time) store.Alert {
	a := m.alert(w, store.AlertFailing, recipient, pendingRun(st), now)
	st.Alerting, st.LastAlertAt = true, now
	clearPending(st)
	return a
}

func (m *Monitor) alert(w *store.Webhook, kind, recipient string, r run, now time.Time) store.Alert {
	state := store.AlertPending
	if m.cfg.Mailer == nil {
		state = store.AlertLogged
	}
	return store.Alert{
		AccountID: w.AccountID, WebhookID: w.ID, Kind: kind, Recipient: recipient,
		URL: RedactURL(w.URL), Event: w.Event,
		Failures: r.count, FirstFailureAt: r.first, LastFailureAt: r.last, LastStatusCode: r.lastStatus,
		LastError: r.lastError, Events: r.events,
		State: state, NextTryAt: now, CreatedAt: now,
	}
}

func addPending(st *store.AlertState, r run) {
	if r.count == 0 {
		return
	}
	p := pendingRun(st)
	p.merge(r)
	st.Pending, st.PendingFirstAt, st.PendingLastAt = p.count, p.first, p.last
	st.PendingLastStatus, st.PendingLastError, st.PendingEvents = p.lastStatus, p.lastError, p.events
}

func pendingRun(st *store.AlertState) run {
	return run{count: st.Pending, first: st.PendingFirstAt, last: st.PendingLastAt, lastStatus: st.PendingLastStatus,
		lastError: st.PendingLastError, events: slices.Clone(st.PendingEvents)}
}

func clearPending(st *store.AlertState) {
	st.Pending, st.PendingFirstAt, st.PendingLastAt, st.PendingLastStatus, st.PendingLastError, st.PendingEvents =
		0, time.Time{}, time.Time{}, 0, "", nil
}

// changed tells about webhooks whose status the monitor changed.
func (m *Monitor) changed(ws []store.Webhook) {
	for _, w := range ws {
		m.log.Warn("webhook disabled", "webhook", w.ID, "account", w.AccountID, "reason", w.DisabledReason)
		if m.cfg.StatusChanged != nil {
			m.cfg.StatusChanged(w)
		}
	}
}

// queued logs alerts kept without a mail server and wakes the mailer for the others.
func (m *Monitor) queued(alerts []store.Alert) {
	for _, a := range alerts {
		if a.State == store.AlertLogged {
			m.log.Warn("alert kept, not mailed (no mail server configured)", "webhook", a.WebhookID, "kind", a.Kind,
				"to", a.Recipient, "failures", a.Failures, "last_status", a.LastStatusCode, "last_error", a.LastError,
				"reason", a.Reason)
			if m.cfg.Metrics != nil {
				m.cfg.Metrics.AlertsSent.WithLabelValues(a.Kind, "logged").Inc()
			}
		}
	}
	if len(alerts) > 0 {
		m.kick()
	}
}

func (m *Monitor) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// mailLoop sends queued alerts until ctx ends. A failed send is retried with backoff; mail
// never holds up deliveries, which do not wait for it.
func (m *Monitor) mailLoop(ctx context.Context) {
	if m.cfg.Mailer == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for m.mailOnce(ctx) > 0 && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.wake:
		}
	}
}

// mailOnce claims a few due alerts and sends them; it returns how many it claimed.
func (m *Monitor) mailOnce(ctx context.Context) int {
	now := time.Now()
	// The claim is not cancelled with ctx: on PostgreSQL a claim cancelled in flight can commit
	// and still fail here, and its alerts would then wait out the lease (5 minutes) unsent
	// after a restart. A claim that ran is sent or given back (send).
	alerts, err := m.st.ClaimAlerts(context.WithoutCancel(ctx), m.cfg.Owner, now, 10, now.Add(5*time.Minute))
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("claim alerts", "err", err)
		}
		return 0
	}
	for _, a := range alerts {
		m.send(ctx, a)
	}
	return len(alerts)
}

func (m *Monitor) send(ctx context.Context, a store.Alert) {
	if ctx.Err() != nil {
		// Stopping: give the alert back, due now and without counting a try, for the next
		// node or start to send.
		a.NextTryAt = time.Now()
		if err := m.st.FinishAlert(context.WithoutCancel(ctx), m.cfg.Owner, a); err != nil {
			m.log.Error("give back alert", "alert", a.ID, "err", err)
		}
		return
	}
	msg, err := Render(a, m.cfg.From, m.cfg.Interval)
	if err == nil {
		err = m.cfg.Mailer.Send(ctx, msg)
	}
	now := time.Now()
	a.Tries++
	result := "sent"
	switch {
	case err == nil:
		a.State, a.SentAt, a.SendError = store.AlertSent, now, ""
		m.log.Info("alert sent", "alert", a.ID, "webhook", a.WebhookID, "kind", a.Kind, "to", a.Recipient)
	case now.Sub(a.CreatedAt) >= m.cfg.GiveUpAfter:
		a.State, a.SendError = store.AlertFailed, err.Error()
		result = "failed"
		m.log.Error("alert not sent; giving up", "alert", a.ID, "webhook", a.WebhookID, "tries", a.Tries, "err", err)
	default:
		backoff := min(time.Duration(1<<min(a.Tries-1, 20))*time.Second, 10*time.Minute)
		a.NextTryAt, a.SendError = now.Add(backoff), err.Error()
		result = "retry"
		m.log.Warn("alert not sent; will retry", "alert", a.ID, "webhook", a.WebhookID, "in", backoff, "err", err)
	}
	if m.cfg.Metrics != nil {
		m.cfg.Metrics.AlertsSent.WithLabelValues(a.Kind, result).Inc()
	}
	if err := m.st.FinishAlert(context.WithoutCancel(ctx), m.cfg.Owner, a); err != nil {
		m.log.Error("record alert", "alert", a.ID, "err", err)
	}
}
