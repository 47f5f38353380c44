// Package storetest is the conformance suite every store driver must pass: the same
// behaviour, asserted the same way, whatever the database underneath.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/store"
)

// Open returns a new, empty store for one test; the driver's test registers its cleanup.
type Open func(t *testing.T) store.Store

// Run runs the whole suite against the driver.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Accounts", testAccounts},
		{"APIKeys", testAPIKeys},
		{"Webhooks", testWebhooks},
		{"WebhookIsolation", testWebhookIsolation},
		{"PublishFanout", testPublishFanout},
		{"PublishIdempotency", testPublishIdempotency},
		{"PublishUnknownAccount", testPublishUnknownAccount},
		{"PublishLeased", testPublishLeased},
		{"PublishLeasedMany", testPublishLeasedMany},
		{"PublishSeesChanges", testPublishSeesChanges},
		{"EventBodies", testEventBodies},
		{"ClaimLease", testClaimLease},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimVersions", testClaimVersions},
		{"Complete", testComplete},
		{"CompleteFenced", testCompleteFenced},
		{"Release", testRelease},
		{"DeleteWebhookCancels", testDeleteWebhookCancels},
		{"RetryDelivery", testRetryDelivery},
		{"ListDeliveries", testListDeliveries},
		{"ListDeliveriesMany", testListDeliveriesMany},
		{"QueueStats", testQueueStats},
		{"Prune", testPrune},
		{"UpdateHealth", testUpdateHealth},
		{"UpdateHealthDisables", testUpdateHealthDisables},
		{"UpdateHealthMany", testUpdateHealthMany},
		{"DisableByUpdateWebhook", testDisableByUpdateWebhook},
		{"Alerts", testAlerts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if r := recover(); r != nil {
					f, ok := r.(failure)
					if !ok {
						panic(r)
					}
					t.Fatalf("unexpected error: %v", f.err)
				}
			}()
			tt.fn(t, open(t))
		})
	}
}

// t0 is a fixed, millisecond-precise instant the tests count from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// failure carries an unexpected error out of must to the test that called it.
type failure struct{ err error }

// must returns v, or ends the calling test with err (Run turns the panic into t.Fatal).
func must[T any](v T, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

func must2[T any](v T, n int, err error) (T, int) {
	if err != nil {
		panic(failure{err})
	}
	return v, n
}

var keySeq struct {
	sync.Mutex
	n int
}

func newKey() store.NewAPIKey {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return store.NewAPIKey{Prefix: fmt.Sprintf("hr_%04d", keySeq.n), Hash: []byte(fmt.Sprintf("hash-%08d-%d", keySeq.n, time.Now().UnixNano()))}
}

func createAccount(t *testing.T, s store.Store, email string) store.Account {
	t.Helper()
	a, _, err := s.CreateAccount(context.Background(), store.Account{Email: email, Name: "Name of " + email, CreatedAt: t0}, newKey())
	if err != nil {
		t.Fatalf("create account %s: %v", email, err)
	}
	return a
}

func webhookFor(accountID int64, event string) store.Webhook {
	return store.Webhook{
		AccountID:              accountID,
		Event:                  event,
		URL:                    "https://example.com/hooks",
		Secret:                 "s3cret",
		SkipErrorCodes:         []string{},
		RetryOnError:           true,
		MaxThroughputPerMinute: 600,
		Status:                 store.WebhookActive,
		CreatedAt:              t0,
		UpdatedAt:              t0,
	}
}

func createWebhook(t *testing.T, s store.Store, accountID int64, event string) store.Webhook {
	t.Helper()
	return must(s.CreateWebhook(context.Background(), webhookFor(accountID, event)))
}

var eventSeq struct {
	sync.Mutex
	n int
}

func newEvent(accountID int64, typ string, at time.Time) store.NewEvent {
	eventSeq.Lock()
	defer eventSeq.Unlock()
	eventSeq.n++
	id := fmt.Sprintf("evt-%d-%08d", time.Now().UnixNano(), eventSeq.n)
	return store.NewEvent{ID: id, AccountID: accountID, Type: typ, Body: []byte(`{"type":"` + typ + `","n":` + fmt.Sprint(eventSeq.n) + `}`), CreatedAt: at}
}

func publish(t *testing.T, s store.Store, events ...store.NewEvent) []store.Published {
	t.Helper()
	res, err := s.Publish(context.Background(), store.PublishParams{Events: events, IdempotencySince: t0.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if len(res) != len(events) {
		t.Fatalf("publish returned %d results for %d events", len(res), len(events))
	}
	return res
}

// testEventBodies reads many bodies in one call, of events whose ids hold characters that
// need escaping in SQL or JSON, asked for in any order, repeated or missing.
func testEventBodies(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "bodies@example.com")
	events := make([]store.NewEvent, 1200)
	for i := range events {
		events[i] = newEvent(a.ID, "message-send", t0)
	}
	for i, odd := range []string{`"quoted"`, `back\\slash`, "<&>", "é–😀", "it's", "tab\tnew\nline", ""} {
		events[i].ID += odd
	}
	for i := 0; i < len(events); i += 1000 {
		publish(t, s, events[i:min(i+1000, len(events))]...)
	}
	ids := []string{"missing", events[7].ID}
	for i := len(events) - 1; i >= 0; i-- {
		ids = append(ids, events[i].ID)
	}
	bodies := must(s.EventBodies(ctx, ids))
	if len(bodies) != len(events) {
		t.Fatalf("EventBodies returned %d bodies, want %d", len(bodies), len(events))
	}
	for _, e := range events {
		if !bytes.Equal(bodies[e.ID], e.Body) {
			t.Fatalf("body of %q = %q, want %q", e.ID, bodies[e.ID], e.Body)
		}
	}
	if empty := must(s.EventBodies(ctx, nil)); len(empty) != 0 {
		t.Fatalf("EventBodies(nil) = %q", empty)
	}
}

// testClaimVersions claims deliveries to 501 webhooks, some updated since they were created,
// and checks that each job carries its webhook's current version: the engine reloads a webhook
// whose version is newer than the one it holds. (501: a driver that reads versions 500 at a
// time must not lose the last.)
func testClaimVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "versions@acme.test")
	want := map[int64]int64{}
	var ws []store.Webhook
	for range 501 {
		w := createWebhook(t, s, a.ID, "message-send")
		ws = append(ws, w)
		want[w.ID] = w.Version
	}
	for _, n := range []int{0, 250, 500, 500} {
		w := must(s.UpdateWebhook(ctx, a.ID, ws[n].ID, func(x *store.Webhook) error { x.URL += "x"; return nil }))
		want[w.ID] = w.Version
	}
	if want[ws[500].ID] != ws[500].Version+2 {
		t.Fatalf("webhook updated twice has version %d, created with %d", want[ws[500].ID], ws[500].Version)
	}
	if r := publish(t, s, newEvent(a.ID, "message-send", t0)); r[0].Err != nil || r[0].Deliveries != len(ws) {
		t.Fatalf("publish = %+v", r[0])
	}
	jobs := claim(t, s, "node", t0, 1000)
	if len(jobs) != len(ws) {
		t.Fatalf("claimed %d jobs, want %d", len(jobs), len(ws))
	}
	for _, j := range jobs {
		if j.WebhookVersion != want[j.WebhookID] {
			t.Fatalf("job for webhook %d has version %d, want %d", j.WebhookID, j.WebhookVersion, want[j.WebhookID])
		}
	}
}

func claim(t *testing.T, s store.Store, owner string, now time.Time, limit int) []store.Job {
	t.Helper()
	return must(s.Claim(context.Background(), store.ClaimParams{Owner: owner, Now: now, Limit: limit, LeaseUntil: now.Add(time.Minute)}))
}

func deliveryIDs(jobs []store.Job) []int64 {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.DeliveryID
	}
	slices.Sort(ids)
	return ids
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "Ops@Acme.test")
	if a.ID == 0 || a.Email != "Ops@Acme.test" || a.Name != "Name of Ops@Acme.test" || !a.CreatedAt.Equal(t0) || !a.UpdatedAt.Equal(t0) {
		t.Fatalf("created account = %+v", a)
	}
	got := must(s.GetAccount(ctx, a.ID))
	if got != a {
		t.Fatalf("GetAccount = %+v, want %+v", got, a)
	}
	if _, _, err := s.CreateAccount(ctx, store.Account{Email: "ops@acme.TEST", CreatedAt: t0}, newKey()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email (other case): err = %v, want ErrConflict", err)
	}
	if _, err := s.GetAccount(ctx, a.ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAccount(missing): err = %v, want ErrNotFound", err)
	}
	b := createAccount(t, s, "b@acme.test")
	c := createAccount(t, s, "c@acme.test")

	list, total := must2(s.ListAccounts(ctx, store.Page{Page: 0, Size: 2}))
	if total != 3 || len(list) != 2 || list[0].ID != c.ID || list[1].ID != b.ID {
		t.Fatalf("ListAccounts page 0 = %v total %d", list, total)
	}
	list, total = must2(s.ListAccounts(ctx, store.Page{Page: 1, Size: 2}))
	if total != 3 || len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("ListAccounts page 1 = %v total %d", list, total)
	}

	later := t0.Add(time.Hour)
	upd, err := s.UpdateAccount(ctx, b.ID, func(x *store.Account) error {
		x.Name = "Bee"
		x.UpdatedAt = later
		return nil
	})
	if err != nil || upd.Name != "Bee" || upd.Email != "b@acme.test" || !upd.UpdatedAt.Equal(later) || !upd.CreatedAt.Equal(t0) {
		t.Fatalf("UpdateAccount = %+v, %v", upd, err)
	}
	if got := must(s.GetAccount(ctx, b.ID)); got != upd {
		t.Fatalf("after update GetAccount = %+v, want %+v", got, upd)
	}
	_, err = s.UpdateAccount(ctx, b.ID, func(x *store.Account) error { x.Email = "C@acme.test"; return nil })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateAccount to a taken email: err = %v, want ErrConflict", err)
	}
	refuse := errors.New("refused")
	if _, err := s.UpdateAccount(ctx, b.ID, func(x *store.Account) error { x.Name = "changed"; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("UpdateAccount with failing update: err = %v", err)
	}
	if got := must(s.GetAccount(ctx, b.ID)); got.Name != "Bee" {
		t.Fatalf("a failed update changed the account: %+v", got)
	}
	if _, err := s.UpdateAccount(ctx, 99999, func(*store.Account) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateAccount(missing): err = %v", err)
	}
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := newKey()
	a, k1, err := s.CreateAccount(ctx, store.Account{Email: "keys@acme.test", CreatedAt: t0}, first)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID == 0 || k1.AccountID != a.ID || k1.Prefix != first.Prefix || !k1.CreatedAt.Equal(t0) || !k1.LastUsedAt.IsZero() {
		t.Fatalf("first key = %+v", k1)
	}
	second := newKey()
	k2 := must(s.CreateAPIKey(ctx, a.ID, second, t0.Add(time.Second)))
	if k2.ID == k1.ID || k2.AccountID != a.ID {
		t.Fatalf("second key = %+v", k2)
	}
	if _, err := s.CreateAPIKey(ctx, 99999, newKey(), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateAPIKey for a missing account: err = %v", err)
	}

	got := must(s.LookupAPIKey(ctx, second.Hash))
	if got.ID != k2.ID || got.AccountID != a.ID {
		t.Fatalf("LookupAPIKey = %+v, want key %d", got, k2.ID)
	}
	if _, err := s.LookupAPIKey(ctx, []byte("no such hash")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LookupAPIKey(unknown): err = %v", err)
	}

	used := t0.Add(time.Minute)
	if err := s.TouchAPIKey(ctx, k1.ID, used); err != nil {
		t.Fatal(err)
	}
	keys := must(s.ListAPIKeys(ctx, a.ID))
	if len(keys) != 2 || keys[0].ID != k2.ID || keys[1].ID != k1.ID || !keys[1].LastUsedAt.Equal(used) || !keys[0].LastUsedAt.IsZero() {
		t.Fatalf("ListAPIKeys = %+v", keys)
	}
	if _, err := s.ListAPIKeys(ctx, 99999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ListAPIKeys(missing account): err = %v", err)
	}

	other := createAccount(t, s, "other-keys@acme.test")
	if err := s.DeleteAPIKey(ctx, other.ID, k1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteAPIKey through another account: err = %v", err)
	}
	if err := s.DeleteAPIKey(ctx, a.ID, k1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIKey(ctx, first.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted key is still found: err = %v", err)
	}
	if err := s.DeleteAPIKey(ctx, a.ID, k1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteAPIKey twice: err = %v", err)
	}
	if keys := must(s.ListAPIKeys(ctx, a.ID)); len(keys) != 1 || keys[0].ID != k2.ID {
		t.Fatalf("after delete ListAPIKeys = %+v", keys)
	}
}

func testWebhooks(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "hooks@acme.test")
	in := webhookFor(a.ID, "delivery-status")
	in.AlertEmail = "alerts@acme.test"
	in.SendAlertEmail = true
	in.SkipErrors = true
	in.SkipErrorCodes = []string{"404", "410"}
	in.RetryOnError = false
	in.MaxThroughputPerMinute = 42
	w := must(s.CreateWebhook(ctx, in))
	if w.ID == 0 || w.Version == 0 {
		t.Fatalf("created webhook has no id or version: %+v", w)
	}
	want := in
	want.ID, want.Version = w.ID, w.Version
	if !equalWebhook(w, want) {
		t.Fatalf("CreateWebhook = %+v, want %+v", w, want)
	}
	if got := must(s.GetWebhook(ctx, a.ID, w.ID)); !equalWebhook(got, want) {
		t.Fatalf("GetWebhook = %+v, want %+v", got, want)
	}
	if got := must(s.WebhookByID(ctx, w.ID)); !equalWebhook(got, want) {
		t.Fatalf("WebhookByID = %+v, want %+v", got, want)
	}
	if _, err := s.CreateWebhook(ctx, webhookFor(99999, "delivery-status")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateWebhook for a missing account: err = %v", err)
	}

	w2 := createWebhook(t, s, a.ID, "message-reply")
	w3 := createWebhook(t, s, a.ID, "delivery-status")
	other := createWebhook(t, s, createAccount(t, s, "other-hooks@acme.test").ID, "message-send")

	// WebhooksByID: any account's; ids with no webhook are left out, however many are asked
	// for (more than one statement's worth of parameters here).
	ask := []int64{w.ID, other.ID, w.ID}
	for id := other.ID + 1000; len(ask) < 1200; id++ {
		ask = append(ask, id)
	}
	byID := must(s.WebhooksByID(ctx, ask))
	if len(byID) != 2 || !equalWebhook(byID[w.ID], want) || byID[other.ID].AccountID != other.AccountID || byID[other.ID].Event != "message-send" {
		t.Fatalf("WebhooksByID = %+v", byID)
	}
	if byID := must(s.WebhooksByID(ctx, nil)); len(byID) != 0 {
		t.Fatalf("WebhooksByID(none) = %+v", byID)
	}

	list, total := must2(s.ListWebhooks(ctx, a.ID, store.WebhookFilter{}, store.Page{Size: 25}))
	if total != 3 || len(list) != 3 || list[0].ID != w3.ID || list[1].ID != w2.ID || list[2].ID != w.ID {
		t.Fatalf("ListWebhooks = %v (total %d)", ids(list), total)
	}
	if list[2].Secret != "s3cret" || !slices.Equal(list[2].SkipErrorCodes, []string{"404", "410"}) {
		t.Fatalf("listed webhook lost fields: %+v", list[2])
	}
	list, total = must2(s.ListWebhooks(ctx, a.ID, store.WebhookFilter{Event: "delivery-status"}, store.Page{Page: 1, Size: 1}))
	if total != 2 || len(list) != 1 || list[0].ID != w.ID {
		t.Fatalf("ListWebhooks(event, page 1) = %v (total %d)", ids(list), total)
	}

	later := t0.Add(time.Hour)
	upd, err := s.UpdateWebhook(ctx, a.ID, w.ID, func(x *store.Webhook) error {
		x.URL = "https://example.org/new"
		x.SkipErrorCodes = nil
		x.AlertEmail = ""
		x.UpdatedAt = later
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.URL != "https://example.org/new" || upd.Version != w.Version+1 || !upd.UpdatedAt.Equal(later) ||
		!upd.CreatedAt.Equal(t0) || upd.AlertEmail != "" || len(upd.SkipErrorCodes) != 0 || upd.MaxThroughputPerMinute != 42 {
		t.Fatalf("UpdateWebhook = %+v", upd)
	}
	if got := must(s.GetWebhook(ctx, a.ID, w.ID)); !equalWebhook(got, upd) {
		t.Fatalf("after update GetWebhook = %+v, want %+v", got, upd)
	}
	refuse := errors.New("refused")
	if _, err := s.UpdateWebhook(ctx, a.ID, w.ID, func(x *store.Webhook) error { x.URL = "x"; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("UpdateWebhook with failing update: err = %v", err)
	}
	if got := must(s.GetWebhook(ctx, a.ID, w.ID)); got.URL != upd.URL || got.Version != upd.Version {
		t.Fatalf("a failed update changed the webhook: %+v", got)
	}

	if err := s.DeleteWebhook(ctx, a.ID, w2.ID, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(ctx, a.ID, w2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWebhook after delete: err = %v", err)
	}
	if err := s.DeleteWebhook(ctx, a.ID, w2.ID, later); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteWebhook twice: err = %v", err)
	}
	// Ids are never reused, even for the newest row once deleted.
	if err := s.DeleteWebhook(ctx, a.ID, w3.ID, later); err != nil {
		t.Fatal(err)
	}
	w4 := createWebhook(t, s, a.ID, "delivery-status")
	if w4.ID <= w3.ID {
		t.Fatalf("a new webhook reused id %d (newest deleted was %d)", w4.ID, w3.ID)
	}
}

func ids(list []store.Webhook) []int64 {
	out := make([]int64, len(list))
	for i, w := range list {
		out[i] = w.ID
	}
	return out
}

func equalWebhook(a, b store.Webhook) bool {
	return a.ID == b.ID && a.AccountID == b.AccountID && a.Event == b.Event && a.URL == b.URL && a.Secret == b.Secret &&
		a.AlertEmail == b.AlertEmail && a.SendAlertEmail == b.SendAlertEmail && a.SkipErrors == b.SkipErrors &&
		slices.Equal(a.SkipErrorCodes, b.SkipErrorCodes) && a.RetryOnError == b.RetryOnError &&
		a.MaxThroughputPerMinute == b.MaxThroughputPerMinute && a.Status == b.Status && a.Version == b.Version &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func testWebhookIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "a@iso.test")
	b := createAccount(t, s, "b@iso.test")
	w := createWebhook(t, s, a.ID, "message-send")
	if _, err := s.GetWebhook(ctx, b.ID, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetWebhook from another account: err = %v", err)
	}
	if _, err := s.UpdateWebhook(ctx, b.ID, w.ID, func(x *store.Webhook) error { x.URL = "https://evil.test"; return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateWebhook from another account: err = %v", err)
	}
	if err := s.DeleteWebhook(ctx, b.ID, w.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteWebhook from another account: err = %v", err)
	}
	if list, total := must2(s.ListWebhooks(ctx, b.ID, store.WebhookFilter{}, store.Page{Size: 25})); total != 0 || len(list) != 0 {
		t.Fatalf("another account lists %d webhooks", total)
	}
	if got := must(s.GetWebhook(ctx, a.ID, w.ID)); got.URL != w.URL {
		t.Fatalf("webhook changed by another account: %+v", got)
	}

	res := publish(t, s, newEvent(a.ID, "message-send", t0))
	jobs := claim(t, s, "node", t0, 10)
	if len(jobs) != 1 || res[0].Deliveries != 1 {
		t.Fatalf("claimed %d jobs", len(jobs))
	}
	if _, _, err := s.GetDelivery(ctx, b.ID, jobs[0].DeliveryID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDelivery from another account: err = %v", err)
	}
	if _, err := s.RetryDelivery(ctx, b.ID, jobs[0].DeliveryID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RetryDelivery from another account: err = %v", err)
	}
	if list, total := must2(s.ListDeliveries(ctx, b.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 25})); total != 0 || len(list) != 0 {
		t.Fatalf("another account lists %d deliveries", total)
	}
}

func testPublishFanout(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "fan@acme.test")
	b := createAccount(t, s, "fan-b@acme.test")
	w1 := createWebhook(t, s, a.ID, "delivery-status")
	w2 := createWebhook(t, s, a.ID, "delivery-status")
	createWebhook(t, s, a.ID, "message-reply")
	createWebhook(t, s, b.ID, "delivery-status")
	disabled := webhookFor(a.ID, "delivery-status")
	disabled.Status = store.WebhookDisabled
	w4 := must(s.CreateWebhook(ctx, disabled))

	e1 := newEvent(a.ID, "delivery-status", t0)
	e2 := newEvent(a.ID, "number-opt-in", t0)
	res := publish(t, s, e1, e2)
	if res[0].Err != nil || res[0].EventID != e1.ID || res[0].Type != "delivery-status" || res[0].Deliveries != 3 || res[0].Duplicate {
		t.Fatalf("publish e1 = %+v", res[0])
	}
	if res[1].Err != nil || res[1].Deliveries != 0 {
		t.Fatalf("publish e2 (no webhooks) = %+v", res[1])
	}

	jobs := claim(t, s, "node", t0, 100)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d jobs, want 2 (the disabled webhook's delivery is cancelled)", len(jobs))
	}
	hooks := []int64{jobs[0].WebhookID, jobs[1].WebhookID}
	slices.Sort(hooks)
	if !slices.Equal(hooks, []int64{w1.ID, w2.ID}) {
		t.Fatalf("claimed deliveries for webhooks %v, want %v", hooks, []int64{w1.ID, w2.ID})
	}
	for _, j := range jobs {
		if j.EventID != e1.ID || j.Event != "delivery-status" || j.AccountID != a.ID || j.Attempts != 0 || !j.CreatedAt.Equal(t0) || j.WebhookVersion != 1 {
			t.Fatalf("job = %+v", j)
		}
	}
	list, total := must2(s.ListDeliveries(ctx, a.ID, w4.ID, store.DeliveryFilter{}, store.Page{Size: 25}))
	if total != 1 || list[0].Status != store.StatusCancelled || list[0].LastError == "" || list[0].CompletedAt.IsZero() {
		t.Fatalf("disabled webhook's deliveries = %+v", list)
	}

	bodies := must(s.EventBodies(ctx, []string{e1.ID, e2.ID, "missing", e1.ID}))
	if len(bodies) != 2 || !bytes.Equal(bodies[e1.ID], e1.Body) || !bytes.Equal(bodies[e2.ID], e2.Body) {
		t.Fatalf("EventBodies = %q", bodies)
	}

	// A webhook created after the event gets nothing of it.
	late := createWebhook(t, s, a.ID, "number-opt-in")
	if _, n := must2(s.ListDeliveries(ctx, a.ID, late.ID, store.DeliveryFilter{}, store.Page{Size: 25})); n != 0 {
		t.Fatalf("a webhook created after publish got %d deliveries", n)
	}
}

func testPublishIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "idem@acme.test")
	b := createAccount(t, s, "idem-b@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	createWebhook(t, s, b.ID, "message-send")

	e1 := newEvent(a.ID, "message-send", t0)
	e1.IdempotencyKey = "k-1"
	first := publish(t, s, e1)[0]
	if first.Duplicate || first.Deliveries != 1 {
		t.Fatalf("first publish = %+v", first)
	}
	again := newEvent(a.ID, "message-send", t0.Add(time.Minute))
	again.IdempotencyKey = "k-1"
	inBatch := newEvent(a.ID, "message-send", t0.Add(time.Minute))
	inBatch.IdempotencyKey = "k-2"
	inBatchAgain := newEvent(a.ID, "message-send", t0.Add(time.Minute))
	inBatchAgain.IdempotencyKey = "k-2"
	otherAccount := newEvent(b.ID, "message-send", t0.Add(time.Minute))
	otherAccount.IdempotencyKey = "k-1"
	res := publish(t, s, again, inBatch, inBatchAgain, otherAccount)
	if !res[0].Duplicate || res[0].EventID != e1.ID || res[0].Deliveries != 1 || res[0].Type != "message-send" {
		t.Fatalf("same key again = %+v, want the first event %s", res[0], e1.ID)
	}
	if res[1].Duplicate || !res[2].Duplicate || res[2].EventID != inBatch.ID {
		t.Fatalf("same key twice in one batch = %+v, %+v", res[1], res[2])
	}
	if res[3].Duplicate || res[3].EventID != otherAccount.ID {
		t.Fatalf("same key, other account = %+v", res[3])
	}
	if jobs := claim(t, s, "node", t0.Add(time.Hour), 100); len(jobs) != 3 {
		t.Fatalf("claimed %d deliveries, want 3 (duplicates create none)", len(jobs))
	}

	// Outside the window the key binds no more: a new event is stored.
	late := newEvent(a.ID, "message-send", t0.Add(25*time.Hour))
	late.IdempotencyKey = "k-1"
	res2, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{late}, IdempotencySince: t0.Add(time.Hour)})
	if err != nil || res2[0].Duplicate || res2[0].EventID != late.ID {
		t.Fatalf("publish after the window = %+v, %v", res2, err)
	}
	// And the new event now holds the key.
	late2 := newEvent(a.ID, "message-send", t0.Add(25*time.Hour))
	late2.IdempotencyKey = "k-1"
	res3, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{late2}, IdempotencySince: t0.Add(time.Hour)})
	if err != nil || !res3[0].Duplicate || res3[0].EventID != late.ID {
		t.Fatalf("publish again after the window = %+v, %v", res3, err)
	}
}

func testPublishUnknownAccount(t *testing.T, s store.Store) {
	a := createAccount(t, s, "known@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	res := publish(t, s, newEvent(99999, "message-send", t0), newEvent(a.ID, "message-send", t0))
	if !errors.Is(res[0].Err, store.ErrNotFound) {
		t.Fatalf("unknown account: err = %v", res[0].Err)
	}
	if res[1].Err != nil || res[1].Deliveries != 1 {
		t.Fatalf("the other event of the batch = %+v", res[1])
	}
}

func testClaimLease(t *testing.T, s store.Store) {
	a := createAccount(t, s, "lease@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	for i := range 5 {
		publish(t, s, newEvent(a.ID, "message-send", t0.Add(time.Duration(i)*time.Second)))
	}
	if jobs := claim(t, s, "n1", t0.Add(-time.Second), 10); len(jobs) != 0 {
		t.Fatalf("claimed %d deliveries before they were due", len(jobs))
	}
	now := t0.Add(2 * time.Second)
	first := claim(t, s, "n1", now, 2)
	if len(first) != 2 || !first[0].CreatedAt.Before(now.Add(time.Millisecond)) {
		t.Fatalf("first claim = %+v", first)
	}
	for _, j := range first {
		if !j.CreatedAt.Before(t0.Add(2 * time.Second)) {
			t.Fatalf("claim did not take the oldest due first: %+v", first)
		}
		if j.WebhookID != w.ID {
			t.Fatalf("job webhook = %d", j.WebhookID)
		}
	}
	second := claim(t, s, "n2", now, 10)
	if len(second) != 1 {
		t.Fatalf("second claim got %d, want the 1 remaining due delivery", len(second))
	}
	if slices.Contains(deliveryIDs(first), second[0].DeliveryID) {
		t.Fatal("a leased delivery was claimed again")
	}
	// The leases run for a minute; after that the deliveries are due again.
	if jobs := claim(t, s, "n2", now.Add(59*time.Second), 10); len(jobs) != 2 {
		t.Fatalf("before the leases end claimed %d, want the 2 that became due", len(jobs))
	}
	again := claim(t, s, "n2", now.Add(61*time.Second), 10)
	if !slices.Equal(deliveryIDs(again), deliveryIDs(append(first, second...))) {
		t.Fatalf("after the leases ended claimed %v, want %v", deliveryIDs(again), deliveryIDs(append(first, second...)))
	}
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	a := createAccount(t, s, "conc@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	createWebhook(t, s, a.ID, "message-send")
	const events = 200
	batch := make([]store.NewEvent, events)
	for i := range batch {
		batch[i] = newEvent(a.ID, "message-send", t0)
	}
	publish(t, s, batch...)

	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for n := range 4 {
		owner := fmt.Sprintf("node-%d", n)
		wg.Go(func() {
			for {
				jobs, err := s.Claim(context.Background(), store.ClaimParams{Owner: owner, Now: t0, Limit: 7, LeaseUntil: t0.Add(time.Hour)})
				if err != nil {
					errs <- err
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					if prev, dup := seen[j.DeliveryID]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("delivery %d claimed by %s and %s", j.DeliveryID, prev, owner)
						return
					}
					seen[j.DeliveryID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != 2*events {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(seen), 2*events)
	}
}

func testComplete(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "complete@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0))
	jobs := claim(t, s, "n1", t0, 10)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d", len(jobs))
	}
	ok, retry := jobs[0], jobs[1]
	at := t0.Add(time.Second)
	err := s.Complete(ctx, []store.Outcome{
		{DeliveryID: ok.DeliveryID, Owner: "n1", Status: store.StatusSucceeded, At: at,
			Attempt: &store.Attempt{Attempt: 1, At: at, StatusCode: 200, DurationMs: 12, ResponseBody: "ok"}},
		{DeliveryID: retry.DeliveryID, Owner: "n1", Status: store.StatusPending, NextAttemptAt: at.Add(30 * time.Second), At: at,
			Attempt: &store.Attempt{Attempt: 1, At: at, StatusCode: 500, DurationMs: 3, Error: "HTTP 500", ResponseBody: "boom"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, attempts := must2attempts(t, s, a.ID, ok.DeliveryID)
	if d.Status != store.StatusSucceeded || d.Attempts != 1 || d.LastStatusCode != 200 || d.LastError != "" ||
		!d.CompletedAt.Equal(at) || !d.NextAttemptAt.IsZero() || d.WebhookID != w.ID || d.EventID != ok.EventID || d.Event != "message-send" {
		t.Fatalf("succeeded delivery = %+v", d)
	}
	if len(attempts) != 1 || attempts[0] != (store.Attempt{Attempt: 1, At: at, StatusCode: 200, DurationMs: 12, ResponseBody: "ok"}) {
		t.Fatalf("attempt log = %+v", attempts)
	}
	d, _ = must2attempts(t, s, a.ID, retry.DeliveryID)
	if d.Status != store.StatusPending || d.Attempts != 1 || d.LastStatusCode != 500 || d.LastError != "HTTP 500" ||
		!d.NextAttemptAt.Equal(at.Add(30*time.Second)) || !d.CompletedAt.IsZero() {
		t.Fatalf("rescheduled delivery = %+v", d)
	}
	if jobs := claim(t, s, "n1", at.Add(29*time.Second), 10); len(jobs) != 0 {
		t.Fatalf("claimed %d before the retry was due", len(jobs))
	}
	jobs = claim(t, s, "n1", at.Add(30*time.Second), 10)
	if len(jobs) != 1 || jobs[0].DeliveryID != retry.DeliveryID || jobs[0].Attempts != 1 {
		t.Fatalf("retry claim = %+v", jobs)
	}
	at2 := at.Add(31 * time.Second)
	err = s.Complete(ctx, []store.Outcome{{DeliveryID: retry.DeliveryID, Owner: "n1", Status: store.StatusFailed, At: at2,
		Attempt: &store.Attempt{Attempt: 2, At: at2, DurationMs: 15000, Error: "timeout"}}})
	if err != nil {
		t.Fatal(err)
	}
	d, attempts = must2attempts(t, s, a.ID, retry.DeliveryID)
	if d.Status != store.StatusFailed || d.Attempts != 2 || d.LastStatusCode != 0 || d.LastError != "timeout" || !d.CompletedAt.Equal(at2) {
		t.Fatalf("failed delivery = %+v", d)
	}
	if len(attempts) != 2 || attempts[0].Attempt != 1 || attempts[0].ResponseBody != "boom" || attempts[1].Attempt != 2 || attempts[1].StatusCode != 0 {
		t.Fatalf("attempt log = %+v", attempts)
	}
}

func must2attempts(t *testing.T, s store.Store, accountID, id int64) (store.Delivery, []store.Attempt) {
	t.Helper()
	d, a, err := s.GetDelivery(context.Background(), accountID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d, a
}

func testCompleteFenced(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "fence@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0))
	old := claim(t, s, "dead-node", t0, 1)
	// The lease ends, another node takes the delivery over and succeeds.
	taken := claim(t, s, "live-node", t0.Add(2*time.Minute), 1)
	if len(old) != 1 || len(taken) != 1 || taken[0].DeliveryID != old[0].DeliveryID {
		t.Fatalf("claims = %+v, %+v", old, taken)
	}
	at := t0.Add(2 * time.Minute)
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: taken[0].DeliveryID, Owner: "live-node", Status: store.StatusSucceeded, At: at,
		Attempt: &store.Attempt{Attempt: 1, At: at, StatusCode: 200}}}); err != nil {
		t.Fatal(err)
	}
	// The old owner's late outcome must not undo that.
	late := at.Add(time.Second)
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: old[0].DeliveryID, Owner: "dead-node", Status: store.StatusPending,
		NextAttemptAt: late.Add(time.Minute), At: late, Attempt: &store.Attempt{Attempt: 1, At: late, StatusCode: 500}}}); err != nil {
		t.Fatal(err)
	}
	d, attempts := must2attempts(t, s, a.ID, old[0].DeliveryID)
	if d.Status != store.StatusSucceeded || d.Attempts != 1 || d.LastStatusCode != 200 {
		t.Fatalf("a stale outcome changed the delivery: %+v", d)
	}
	if len(attempts) != 2 {
		t.Fatalf("attempt log has %d entries, want both requests logged", len(attempts))
	}

	// Nor does a stale success finish a delivery another node holds now, also in a call whose
	// other outcome applies.
	publish(t, s, newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0))
	lost := claim(t, s, "dead-node", late, 2)
	held := claim(t, s, "live-node", late.Add(2*time.Minute), 2)
	if len(lost) != 2 || len(held) != 2 {
		t.Fatalf("claims = %+v, %+v", lost, held)
	}
	done := late.Add(2 * time.Minute)
	if err := s.Complete(ctx, []store.Outcome{
		{DeliveryID: held[0].DeliveryID, Owner: "dead-node", Status: store.StatusSucceeded, At: done,
			Attempt: &store.Attempt{Attempt: 1, At: done, StatusCode: 200}},
		{DeliveryID: held[1].DeliveryID, Owner: "live-node", Status: store.StatusSucceeded, At: done,
			Attempt: &store.Attempt{Attempt: 1, At: done, StatusCode: 200}},
	}); err != nil {
		t.Fatal(err)
	}
	if d, _ := must2attempts(t, s, a.ID, held[0].DeliveryID); d.Status != store.StatusPending || d.Attempts != 0 {
		t.Fatalf("a stale success finished a delivery held by another node: %+v", d)
	}
	if d, _ := must2attempts(t, s, a.ID, held[1].DeliveryID); d.Status != store.StatusSucceeded || d.Attempts != 1 {
		t.Fatalf("the holder's success beside a stale one: %+v", d)
	}
}

func testRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "release@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	for range 3 {
		publish(t, s, newEvent(a.ID, "message-send", t0))
	}
	mine := claim(t, s, "me", t0, 2)
	theirs := claim(t, s, "them", t0, 1)
	if len(mine) != 2 || len(theirs) != 1 {
		t.Fatalf("claims %d %d", len(mine), len(theirs))
	}
	now := t0.Add(time.Second)
	if err := s.Release(ctx, "me", now); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "x", now, 10); !slices.Equal(deliveryIDs(got), deliveryIDs(mine)) {
		t.Fatalf("after Release(me) claimed %v, want %v", deliveryIDs(got), deliveryIDs(mine))
	}
	if err := s.Release(ctx, "", now); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "y", now, 10); len(got) != 3 {
		t.Fatalf("after Release(all) claimed %d, want 3", len(got))
	}
}

func testDeleteWebhookCancels(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "cancel@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	keep := createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0))
	var done, inflight int64
	for _, j := range claim(t, s, "n", t0, 10) {
		if j.WebhookID != w.ID {
			continue
		}
		if done == 0 {
			done = j.DeliveryID
			if err := s.Complete(ctx, []store.Outcome{{DeliveryID: j.DeliveryID, Owner: "n", Status: store.StatusSucceeded, At: t0,
				Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}}}); err != nil {
				t.Fatal(err)
			}
		} else {
			inflight = j.DeliveryID
		}
	}
	if err := s.DeleteWebhook(ctx, a.ID, w.ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	d, _ := must2attempts(t, s, a.ID, inflight)
	if d.Status != store.StatusCancelled || d.CompletedAt.IsZero() || d.LastError == "" {
		t.Fatalf("pending delivery of a deleted webhook = %+v", d)
	}
	if d, _ := must2attempts(t, s, a.ID, done); d.Status != store.StatusSucceeded {
		t.Fatalf("a finished delivery changed on delete: %+v", d)
	}
	// The in-flight attempt ends after the delete: its outcome does not revive the delivery.
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: inflight, Owner: "n", Status: store.StatusPending, At: t0,
		NextAttemptAt: t0.Add(time.Second), Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 500}}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := must2attempts(t, s, a.ID, inflight); d.Status != store.StatusCancelled {
		t.Fatalf("an outcome revived a cancelled delivery: %+v", d)
	}
	if jobs := claim(t, s, "n", t0.Add(time.Hour), 10); len(jobs) != 2 || jobs[0].WebhookID != keep.ID || jobs[1].WebhookID != keep.ID {
		t.Fatalf("after delete claimed %+v, want only the other webhook's two (their leases ended)", jobs)
	}
	w2 := must(s.WebhookByID(ctx, keep.ID))
	if w2.ID != keep.ID {
		t.Fatal("the other webhook is gone")
	}
	if _, err := s.WebhookByID(ctx, w.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("WebhookByID(deleted): err = %v", err)
	}

	// A job whose webhook is gone claims with version 0.
	gone := createWebhook(t, s, a.ID, "number-opt-in")
	publish(t, s, newEvent(a.ID, "number-opt-in", t0.Add(2*time.Hour)))
	if err := s.DeleteWebhook(ctx, a.ID, gone.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if jobs := claim(t, s, "n", t0.Add(3*time.Hour), 10); len(jobs) != 2 {
		t.Fatalf("claimed %d", len(jobs))
	}
}

func testRetryDelivery(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "retry@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0))
	j := claim(t, s, "n", t0, 1)[0]
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: j.DeliveryID, Owner: "n", Status: store.StatusFailed, At: t0,
		Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 500, Error: "HTTP 500"}}}); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	d := must(s.RetryDelivery(ctx, a.ID, j.DeliveryID, now))
	if d.Status != store.StatusPending || !d.NextAttemptAt.Equal(now) || !d.CompletedAt.IsZero() || d.Attempts != 1 || d.LastStatusCode != 500 {
		t.Fatalf("retried delivery = %+v", d)
	}
	jobs := claim(t, s, "n", now, 10)
	if len(jobs) != 1 || jobs[0].DeliveryID != j.DeliveryID || jobs[0].Attempts != 1 {
		t.Fatalf("claim after retry = %+v", jobs)
	}
	// Retrying a delivery that is claimed leaves the claim alone: its outcome still applies.
	if _, err := s.RetryDelivery(ctx, a.ID, j.DeliveryID, now); err != nil {
		t.Fatal(err)
	}
	if again := claim(t, s, "other", now, 10); len(again) != 0 {
		t.Fatalf("a retried delivery under claim was claimed again: %+v", again)
	}
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: j.DeliveryID, Owner: "n", Status: store.StatusSucceeded, At: now,
		Attempt: &store.Attempt{Attempt: 2, At: now, StatusCode: 200}}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := must2attempts(t, s, a.ID, j.DeliveryID); d.Status != store.StatusSucceeded || d.Attempts != 2 {
		t.Fatalf("the claimed attempt's outcome was not applied after a retry: %+v", d)
	}
	if _, err := s.RetryDelivery(ctx, a.ID, 99999, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RetryDelivery(missing): err = %v", err)
	}
}

func testListDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "list@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	other := createWebhook(t, s, a.ID, "message-send")
	for range 3 {
		publish(t, s, newEvent(a.ID, "message-send", t0))
	}
	jobs := claim(t, s, "n", t0, 100)
	var mine []int64
	for _, j := range jobs {
		if j.WebhookID == w.ID {
			mine = append(mine, j.DeliveryID)
		}
	}
	slices.Sort(mine)
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: mine[0], Owner: "n", Status: store.StatusIgnored, At: t0,
		Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 404}}}); err != nil {
		t.Fatal(err)
	}
	list, total := must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 2}))
	if total != 3 || len(list) != 2 || list[0].ID != mine[2] || list[1].ID != mine[1] {
		t.Fatalf("ListDeliveries = %+v (total %d), want newest first of %v", list, total, mine)
	}
	list, total = must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{Status: store.StatusIgnored}, store.Page{Size: 25}))
	if total != 1 || len(list) != 1 || list[0].ID != mine[0] || list[0].Status != store.StatusIgnored || list[0].LastStatusCode != 404 {
		t.Fatalf("ListDeliveries(ignored) = %+v", list)
	}
	if _, total := must2(s.ListDeliveries(ctx, a.ID, other.ID, store.DeliveryFilter{Status: store.StatusPending}, store.Page{Size: 25})); total != 3 {
		t.Fatalf("other webhook pending total = %d", total)
	}
}

// testListDeliveriesMany lists webhooks' deliveries among thousands of others, a page at a
// time: more deliveries than fit in a few of the SQLite driver's buckets of 256 ids or in the
// first windows of buckets its listing visits, and a webhook with three of them spread out.
func testListDeliveriesMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "list-many@acme.test")
	busy := []int64{createWebhook(t, s, a.ID, "message-send").ID, createWebhook(t, s, a.ID, "message-send").ID,
		createWebhook(t, s, a.ID, "message-send").ID}
	rare := createWebhook(t, s, a.ID, "number-opt-in").ID
	byHook := map[int64][]int64{}
	for batch := range 15 {
		events := make([]store.NewEvent, 100)
		for i := range events {
			typ := "message-send"
			if n := batch*100 + i; n == 0 || n == 777 || n == 1499 {
				typ = "number-opt-in"
			}
			events[i] = newEvent(a.ID, typ, t0)
		}
		res := must(s.Publish(ctx, store.PublishParams{Events: events, IdempotencySince: t0.Add(-24 * time.Hour),
			Owner: "many", LeaseUntil: t0.Add(time.Hour)}))
		for _, r := range res {
			for _, j := range r.Jobs {
				byHook[j.WebhookID] = append(byHook[j.WebhookID], j.DeliveryID)
			}
		}
	}
	newestFirst := func(ids []int64) []int64 {
		ids = slices.Clone(ids)
		slices.Sort(ids)
		slices.Reverse(ids)
		return ids
	}
	listIDs := func(hook int64, f store.DeliveryFilter, p store.Page) ([]int64, int) {
		list, total := must2(s.ListDeliveries(ctx, a.ID, hook, f, p))
		var ids []int64
		for _, d := range list {
			if d.WebhookID != hook || d.AccountID != a.ID {
				t.Fatalf("webhook %d's list holds %+v", hook, d)
			}
			ids = append(ids, d.ID)
		}
		return ids, total
	}

	want := newestFirst(byHook[busy[1]])
	if len(want) != 1497 {
		t.Fatalf("published %d deliveries to the webhook, want 1497", len(want))
	}
	var got []int64
	for page := 0; ; page++ {
		ids, total := listIDs(busy[1], store.DeliveryFilter{}, store.Page{Page: page, Size: 100})
		if total != len(want) {
			t.Fatalf("page %d: total %d, want %d", page, total, len(want))
		}
		if len(ids) == 0 {
			break
		}
		got = append(got, ids...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages of 100 list %d deliveries, want the %d newest first", len(got), len(want))
	}
	for _, p := range []store.Page{{Page: 0, Size: 1}, {Page: 7, Size: 33}, {Page: 1, Size: 1000}, {Page: 2, Size: 700}, {Page: 3, Size: 500}} {
		ids, _ := listIDs(busy[1], store.DeliveryFilter{}, p)
		if w := want[min(len(want), p.Offset()):min(len(want), p.Offset()+p.Size)]; !slices.Equal(ids, w) {
			t.Fatalf("page %+v lists %d deliveries, want %d from offset %d", p, len(ids), len(w), p.Offset())
		}
	}
	if ids, total := listIDs(rare, store.DeliveryFilter{}, store.Page{Size: 25}); total != 3 || !slices.Equal(ids, newestFirst(byHook[rare])) {
		t.Fatalf("rare webhook: %v (total %d), want %v", ids, total, newestFirst(byHook[rare]))
	}

	// The status filter, and another account's view.
	failed := want[800]
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: failed, Owner: "many", Status: store.StatusFailed, At: t0,
		Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 500}}}); err != nil {
		t.Fatal(err)
	}
	if ids, total := listIDs(busy[1], store.DeliveryFilter{Status: store.StatusFailed}, store.Page{Size: 25}); total != 1 || !slices.Equal(ids, []int64{failed}) {
		t.Fatalf("failed: %v (total %d), want [%d]", ids, total, failed)
	}
	if _, total := listIDs(busy[1], store.DeliveryFilter{Status: store.StatusPending}, store.Page{Size: 25}); total != len(want)-1 {
		t.Fatalf("pending total %d, want %d", total, len(want)-1)
	}
	b := createAccount(t, s, "list-many-other@acme.test")
	if list, total := must2(s.ListDeliveries(ctx, b.ID, busy[1], store.DeliveryFilter{}, store.Page{Size: 25})); total != 0 || len(list) != 0 {
		t.Fatalf("another account lists %d deliveries (total %d)", len(list), total)
	}
}

func testQueueStats(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "stats@acme.test")
	createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0.Add(time.Hour)))
	q := must(s.QueueStats(ctx, t0))
	if q.Due != 2 || q.Scheduled != 1 {
		t.Fatalf("QueueStats = %+v, want 2 due, 1 scheduled", q)
	}
	j := claim(t, s, "n", t0, 1)[0]
	if q := must(s.QueueStats(ctx, t0)); q.Due != 2 || q.Scheduled != 1 {
		t.Fatalf("QueueStats with one claimed = %+v, want it still counted as due", q)
	}
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: j.DeliveryID, Owner: "n", Status: store.StatusSucceeded, At: t0,
		Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}}}); err != nil {
		t.Fatal(err)
	}
	if q := must(s.QueueStats(ctx, t0)); q.Due != 1 || q.Scheduled != 1 {
		t.Fatalf("QueueStats after success = %+v", q)
	}
}

func testPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "prune@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	old := newEvent(a.ID, "message-send", t0)
	old.IdempotencyKey = "old-key"
	pendingOld := newEvent(a.ID, "message-send", t0)
	pendingOld.IdempotencyKey = "pending-key"
	fresh := newEvent(a.ID, "message-send", t0.Add(48*time.Hour))
	fresh.IdempotencyKey = "fresh-key"
	// Events no webhook takes have no delivery to wait for: only their age decides.
	oldAlone := newEvent(a.ID, "number-opt-in", t0)
	freshAlone := newEvent(a.ID, "number-opt-in", t0.Add(48*time.Hour))
	publish(t, s, old, pendingOld, oldAlone)
	publish(t, s, fresh, freshAlone)

	var oldID, pendingID, freshID int64
	for _, j := range claim(t, s, "n", t0.Add(48*time.Hour), 10) {
		switch j.EventID {
		case old.ID:
			oldID = j.DeliveryID
		case pendingOld.ID:
			pendingID = j.DeliveryID
		case fresh.ID:
			freshID = j.DeliveryID
		}
	}
	done := []store.Outcome{
		{DeliveryID: oldID, Owner: "n", Status: store.StatusSucceeded, At: t0.Add(time.Hour), Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}},
		{DeliveryID: freshID, Owner: "n", Status: store.StatusSucceeded, At: t0.Add(48 * time.Hour), Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}},
		{DeliveryID: pendingID, Owner: "n", Status: store.StatusPending, NextAttemptAt: t0.Add(72 * time.Hour), At: t0},
	}
	if err := s.Complete(ctx, done); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, store.PruneParams{Before: t0.Add(24 * time.Hour), IdempotencyBefore: t0.Add(47 * time.Hour), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Prune deleted %d deliveries, want 1", n)
	}
	if _, _, err := s.GetDelivery(ctx, a.ID, oldID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old finished delivery survived: err = %v", err)
	}
	if d, _ := must2attempts(t, s, a.ID, pendingID); d.Status != store.StatusPending {
		t.Fatalf("a pending delivery was pruned or changed: %+v", d)
	}
	if _, attempts := must2attempts(t, s, a.ID, freshID); len(attempts) != 1 {
		t.Fatal("a recent delivery lost its attempts")
	}
	bodies := must(s.EventBodies(ctx, []string{old.ID, pendingOld.ID, fresh.ID, oldAlone.ID, freshAlone.ID}))
	if _, ok := bodies[old.ID]; ok {
		t.Fatal("an old event with no deliveries left survived")
	}
	if _, ok := bodies[oldAlone.ID]; ok {
		t.Fatal("an old event that no webhook took survived")
	}
	if _, ok := bodies[freshAlone.ID]; !ok {
		t.Fatal("a recent event that no webhook took was pruned")
	}
	if _, ok := bodies[pendingOld.ID]; !ok {
		t.Fatal("an old event with a pending delivery was pruned")
	}
	if _, ok := bodies[fresh.ID]; !ok {
		t.Fatal("a recent event was pruned")
	}
	// The old event's key is forgotten: reusing it makes a new event, even within a wide
	// window; the recent event's key still binds.
	reuse := newEvent(a.ID, "message-send", t0.Add(49*time.Hour))
	reuse.IdempotencyKey = "pending-key"
	reuseFresh := newEvent(a.ID, "message-send", t0.Add(49*time.Hour))
	reuseFresh.IdempotencyKey = "fresh-key"
	res, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{reuse, reuseFresh}, IdempotencySince: t0.Add(-time.Hour)})
	if err != nil || res[0].Duplicate {
		t.Fatalf("a key older than IdempotencyBefore still binds: %+v, %v", res, err)
	}
	if !res[1].Duplicate || res[1].EventID != fresh.ID {
		t.Fatalf("a recent key was forgotten: %+v", res[1])
	}
	if list, _ := must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 25})); len(list) != 3 {
		t.Fatalf("after prune the webhook has %d deliveries, want 3 (pending, fresh, reuse)", len(list))
	}
}

func testUpdateHealth(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "health@acme.test")
	b := createAccount(t, s, "health-b@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	other := createWebhook(t, s, a.ID, "message-send")
	at := t0.Add(time.Hour)
	changed, err := s.UpdateHealth(ctx, []int64{w.ID, 99999}, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		if x.ID != w.ID || x.URL != w.URL || x.ConsecutiveFailures != 0 || !x.LastDeliveryAt.IsZero() || st.Alerting || st.Pending != 0 {
			t.Errorf("update sees webhook %+v, state %+v", x, st)
		}
		x.LastDeliveryAt, x.LastSuccessAt, x.FailingSince = at, at.Add(-time.Minute), at.Add(-30*time.Second)
		x.ConsecutiveFailures, x.FailingDeliveries = 3, 2
		*st = store.AlertState{Alerting: true, LastAlertAt: at, Pending: 2, PendingFirstAt: at.Add(time.Second),
			PendingLastAt: at.Add(2 * time.Second), PendingLastStatus: 503, PendingLastError: "HTTP 503", PendingEvents: []string{"message-send"}}
		return []store.Alert{{AccountID: x.AccountID, WebhookID: x.ID, Kind: store.AlertFailing, Recipient: "ops@acme.test",
			URL: x.URL, Event: x.Event, Failures: 1, FirstFailureAt: at, LastFailureAt: at, LastStatusCode: 500,
			LastError: "HTTP 500", Events: []string{"message-send"}, State: store.AlertPending, NextTryAt: at, CreatedAt: at}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 0 {
		t.Fatalf("UpdateHealth reported %d status changes, want none", len(changed))
	}
	got := must(s.GetWebhook(ctx, a.ID, w.ID))
	if !got.LastDeliveryAt.Equal(at) || !got.LastSuccessAt.Equal(at.Add(-time.Minute)) || !got.FailingSince.Equal(at.Add(-30*time.Second)) ||
		got.ConsecutiveFailures != 3 || got.FailingDeliveries != 2 || got.Version != w.Version || got.Status != store.WebhookActive {
		t.Fatalf("after UpdateHealth webhook = %+v", got)
	}
	// The state comes back as stored.
	_, err = s.UpdateHealth(ctx, []int64{w.ID}, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		want := store.AlertState{Alerting: true, LastAlertAt: at, Pending: 2, PendingFirstAt: at.Add(time.Second),
			PendingLastAt: at.Add(2 * time.Second), PendingLastStatus: 503, PendingLastError: "HTTP 503", PendingEvents: []string{"message-send"}}
		if st.Alerting != want.Alerting || !st.LastAlertAt.Equal(want.LastAlertAt) || st.Pending != want.Pending ||
			!st.PendingFirstAt.Equal(want.PendingFirstAt) || !st.PendingLastAt.Equal(want.PendingLastAt) ||
			st.PendingLastStatus != want.PendingLastStatus || st.PendingLastError != want.PendingLastError ||
			!slices.Equal(st.PendingEvents, want.PendingEvents) {
			t.Errorf("stored alert state = %+v, want %+v", st, want)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Webhooks with unreported failures are due once their last alert is old enough.
	if due := must(s.AlertsDue(ctx, at.Add(-time.Second))); len(due) != 0 {
		t.Fatalf("AlertsDue before the last alert = %v", due)
	}
	if due := must(s.AlertsDue(ctx, at)); !slices.Equal(due, []int64{w.ID}) {
		t.Fatalf("AlertsDue = %v, want [%d]", due, w.ID)
	}
	list, total := must2(s.ListAlerts(ctx, a.ID, w.ID, store.Page{Size: 25}))
	if total != 1 || list[0].ID == 0 || list[0].Kind != store.AlertFailing || list[0].Recipient != "ops@acme.test" ||
		list[0].LastStatusCode != 500 || list[0].LastError != "HTTP 500" || !slices.Equal(list[0].Events, []string{"message-send"}) ||
		list[0].State != store.AlertPending || !list[0].CreatedAt.Equal(at) || list[0].URL != w.URL || list[0].Failures != 1 {
		t.Fatalf("ListAlerts = %+v", list)
	}
	if _, total := must2(s.ListAlerts(ctx, b.ID, w.ID, store.Page{Size: 25})); total != 0 {
		t.Fatal("another account lists the webhook's alerts")
	}
	if _, total := must2(s.ListAlerts(ctx, a.ID, other.ID, store.Page{Size: 25})); total != 0 {
		t.Fatal("another webhook lists the alerts")
	}
	// Clearing the pending failures takes the webhook off AlertsDue.
	_, err = s.UpdateHealth(ctx, []int64{w.ID}, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		st.Pending, st.PendingEvents = 0, nil
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if due := must(s.AlertsDue(ctx, at.Add(time.Hour))); len(due) != 0 {
		t.Fatalf("AlertsDue after clearing = %v", due)
	}
	// An error aborts the whole call.
	refuse := errors.New("refused")
	_, err = s.UpdateHealth(ctx, []int64{w.ID, other.ID}, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		x.ConsecutiveFailures = 99
		if x.ID == other.ID {
			return nil, refuse
		}
		return nil, nil
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("UpdateHealth with a failing update: err = %v", err)
	}
	if got := must(s.GetWebhook(ctx, a.ID, w.ID)); got.ConsecutiveFailures != 3 {
		t.Fatalf("a failed UpdateHealth changed the webhook: %+v", got)
	}
}

func testUpdateHealthDisables(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "disable@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0))
	at := t0.Add(time.Minute)
	changed, err := s.UpdateHealth(ctx, []int64{w.ID}, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		x.Status, x.DisabledReason, x.UpdatedAt = store.WebhookDisabled, "endpoint answered 410 Gone", at
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].ID != w.ID || changed[0].Status != store.WebhookDisabled || changed[0].Version <= w.Version {
		t.Fatalf("UpdateHealth changed = %+v", changed)
	}
	got := must(s.GetWebhook(ctx, a.ID, w.ID))
	if got.Status != store.WebhookDisabled || got.DisabledReason != "endpoint answered 410 Gone" || got.Version != changed[0].Version || !got.UpdatedAt.Equal(at) {
		t.Fatalf("disabled webhook = %+v", got)
	}
	list, _ := must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 25}))
	for _, d := range list {
		if d.Status != store.StatusCancelled || !strings.Contains(d.LastError, "410 Gone") {
			t.Fatalf("pending delivery of a disabled webhook = %+v", d)
		}
	}
	if len(list) != 2 {
		t.Fatalf("%d deliveries", len(list))
	}
	// New events for a disabled webhook are kept as cancelled. (Its earlier deliveries may
	// still be claimed while their cancelling goes on behind the disable: the engine cancels
	// those of a disabled webhook as it claims them.)
	late := newEvent(a.ID, "message-send", at)
	publish(t, s, late)
	for _, j := range claim(t, s, "n", at.Add(time.Hour), 10) {
		if j.EventID == late.ID {
			t.Fatalf("a delivery published after its webhook was disabled was claimed: %+v", j)
		}
	}
	list, _ = must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{Status: store.StatusCancelled}, store.Page{Size: 25}))
	if len(list) != 3 {
		t.Fatalf("%d cancelled deliveries of the disabled webhook, want 3: %+v", len(list), list)
	}
}

func testDisableByUpdateWebhook(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "patch-disable@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	publish(t, s, newEvent(a.ID, "message-send", t0))
	if _, err := s.UpdateWebhook(ctx, a.ID, w.ID, func(x *store.Webhook) error {
		x.Status, x.DisabledReason = store.WebhookDisabled, "disabled by its owner"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	list, _ := must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 25}))
	if len(list) != 1 || list[0].Status != store.StatusCancelled {
		t.Fatalf("after disabling by update: %+v", list)
	}
	// Turning it back on resets nothing by itself but keeps what the update set.
	upd, err := s.UpdateWebhook(ctx, a.ID, w.ID, func(x *store.Webhook) error {
		x.Status, x.DisabledReason, x.ConsecutiveFailures, x.FailingSince = store.WebhookActive, "", 0, time.Time{}
		return nil
	})
	if err != nil || upd.Status != store.WebhookActive || upd.DisabledReason != "" {
		t.Fatalf("re-enable: %+v %v", upd, err)
	}
	if got := must(s.GetWebhook(ctx, a.ID, w.ID)); got.Status != store.WebhookActive || got.DisabledReason != "" {
		t.Fatalf("re-enabled webhook = %+v", got)
	}
	// What the disable cancelled stays cancelled; what is published now is delivered.
	publish(t, s, newEvent(a.ID, "message-send", t0))
	list, _ = must2(s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Size: 25}))
	if len(list) != 2 || list[0].Status != store.StatusPending || list[1].Status != store.StatusCancelled {
		t.Fatalf("after enabling again and publishing: %+v", list)
	}
	if jobs := claim(t, s, "n", t0.Add(time.Hour), 10); len(jobs) != 1 || jobs[0].DeliveryID != list[0].ID {
		t.Fatalf("after enabling again, claimed %+v, want delivery %d alone", jobs, list[0].ID)
	}
}

func testAlerts(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "alerts@acme.test")
	w := createWebhook(t, s, a.ID, "message-send")
	at := t0.Add(time.Hour)
	mk := func(kind, state string, created time.Time) store.Alert {
		return store.Alert{AccountID: a.ID, WebhookID: w.ID, Kind: kind, Recipient: "ops@acme.test", URL: w.URL, Event: w.Event,
			State: state, NextTryAt: created, CreatedAt: created}
	}
	_, err := s.UpdateHealth(ctx, []int64{w.ID}, func(*store.Webhook, *store.AlertState) ([]store.Alert, error) {
		return []store.Alert{mk(store.AlertFailing, store.AlertPending, at), mk(store.AlertRecovered, store.AlertPending, at.Add(time.Minute)),
			mk(store.AlertFailing, store.AlertLogged, t0)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := must(s.ClaimAlerts(ctx, "n1", at.Add(-time.Second), 10, at.Add(time.Hour))); len(got) != 0 {
		t.Fatalf("claimed %d alerts before they were due", len(got))
	}
	first := must(s.ClaimAlerts(ctx, "n1", at.Add(30*time.Second), 10, at.Add(time.Hour)))
	if len(first) != 1 || first[0].Kind != store.AlertFailing || first[0].State != store.AlertPending {
		t.Fatalf("first claim = %+v", first)
	}
	if got := must(s.ClaimAlerts(ctx, "n2", at.Add(2*time.Minute), 10, at.Add(time.Hour))); len(got) != 1 || got[0].Kind != store.AlertRecovered {
		t.Fatalf("second claim = %+v, want only the recovered alert (the other is leased, the logged one is not pending)", got)
	}
	// A failed send is retried later.
	retry := first[0]
	retry.Tries, retry.SendError, retry.NextTryAt = 1, "dial tcp: connection refused", at.Add(10*time.Minute)
	if err := s.FinishAlert(ctx, "n1", retry); err != nil {
		t.Fatal(err)
	}
	if got := must(s.ClaimAlerts(ctx, "n1", at.Add(9*time.Minute), 10, at.Add(2*time.Hour))); len(got) != 0 {
		t.Fatalf("claimed %d alerts before their retry time", len(got))
	}
	again := must(s.ClaimAlerts(ctx, "n1", at.Add(10*time.Minute), 10, at.Add(2*time.Hour)))
	if len(again) != 1 || again[0].ID != first[0].ID || again[0].Tries != 1 || again[0].SendError != "dial tcp: connection refused" {
		t.Fatalf("claim after retry time = %+v", again)
	}
	sent := again[0]
	sent.State, sent.Tries, sent.SentAt, sent.SendError = store.AlertSent, 2, at.Add(10*time.Minute), ""
	// Another owner's finish does not apply.
	if err := s.FinishAlert(ctx, "someone-else", sent); err != nil {
		t.Fatal(err)
	}
	list, _ := must2(s.ListAlerts(ctx, a.ID, w.ID, store.Page{Size: 25}))
	for _, x := range list {
		if x.ID == sent.ID && x.State != store.AlertPending {
			t.Fatalf("a finish by a non-owner applied: %+v", x)
		}
	}
	if err := s.FinishAlert(ctx, "n1", sent); err != nil {
		t.Fatal(err)
	}
	list, total := must2(s.ListAlerts(ctx, a.ID, w.ID, store.Page{Size: 2}))
	if total != 3 || len(list) != 2 || list[0].ID < list[1].ID {
		t.Fatalf("ListAlerts = %+v (total %d)", list, total)
	}
	var found bool
	for _, x := range must2first(s.ListAlerts(ctx, a.ID, w.ID, store.Page{Size: 25})) {
		if x.ID == sent.ID {
			found = true
			if x.State != store.AlertSent || x.Tries != 2 || !x.SentAt.Equal(at.Add(10*time.Minute)) || x.SendError != "" {
				t.Fatalf("sent alert = %+v", x)
			}
		}
	}
	if !found {
		t.Fatal("sent alert not listed")
	}
	if got := must(s.ClaimAlerts(ctx, "n1", at.Add(24*time.Hour), 10, at.Add(25*time.Hour))); len(got) != 1 || got[0].Kind != store.AlertRecovered {
		t.Fatalf("after send, claimable = %+v (want only the recovered one, whose lease ended)", got)
	}
	// Prune deletes old finished alerts, not pending ones.
	if _, err := s.Prune(ctx, store.PruneParams{Before: at.Add(48 * time.Hour), IdempotencyBefore: t0, Limit: 100}); err != nil {
		t.Fatal(err)
	}
	list, total = must2(s.ListAlerts(ctx, a.ID, w.ID, store.Page{Size: 25}))
	if total != 1 || list[0].Kind != store.AlertRecovered {
		t.Fatalf("after prune: %+v", list)
	}
}

func must2first[T any](v T, _ int, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

// twoAndDisabled creates an account with two active webhooks for message-send and a disabled
// one.
func twoAndDisabled(t *testing.T, s store.Store, email string) (a store.Account, w1, w2, off store.Webhook) {
	a = createAccount(t, s, email)
	w1 = createWebhook(t, s, a.ID, "message-send")
	w2 = createWebhook(t, s, a.ID, "message-send")
	off = webhookFor(a.ID, "message-send")
	off.Status = store.WebhookDisabled
	return a, w1, w2, must(s.CreateWebhook(context.Background(), off))
}

func testPublishLeased(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, w1, w2, _ := twoAndDisabled(t, s, "leased@acme.test")
	e1, e2 := newEvent(a.ID, "message-send", t0), newEvent(a.ID, "message-send", t0)
	e2.IdempotencyKey = "k"
	again := newEvent(a.ID, "message-send", t0)
	again.IdempotencyKey = "k"
	res, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{e1, e2, again}, IdempotencySince: t0.Add(-time.Hour),
		Owner: "me", LeaseUntil: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:2] {
		if r.Deliveries != 3 || len(r.Jobs) != 2 {
			t.Fatalf("event %d: %d deliveries, jobs %+v; want 3 deliveries, 2 jobs (the disabled webhook's is cancelled)", i, r.Deliveries, r.Jobs)
		}
		hooks := []int64{r.Jobs[0].WebhookID, r.Jobs[1].WebhookID}
		slices.Sort(hooks)
		if !slices.Equal(hooks, []int64{w1.ID, w2.ID}) {
			t.Fatalf("event %d: jobs for webhooks %v", i, hooks)
		}
		for _, j := range r.Jobs {
			if j.DeliveryID == 0 || j.EventID != r.EventID || j.AccountID != a.ID || j.Event != "message-send" ||
				j.Attempts != 0 || !j.CreatedAt.Equal(t0) || j.WebhookVersion != 1 {
				t.Fatalf("event %d: job %+v", i, j)
			}
		}
	}
	if !res[2].Duplicate || len(res[2].Jobs) != 0 || res[2].EventID != e2.ID {
		t.Fatalf("duplicate in a leased publish = %+v", res[2])
	}
	// Leased: nobody claims them while the lease runs…
	if jobs := claim(t, s, "other", t0.Add(30*time.Second), 10); len(jobs) != 0 {
		t.Fatalf("claimed %d leased deliveries", len(jobs))
	}
	// …the owner's outcome applies…
	j := res[0].Jobs[0]
	if err := s.Complete(ctx, []store.Outcome{{DeliveryID: j.DeliveryID, Owner: "me", Status: store.StatusSucceeded, At: t0,
		Attempt: &store.Attempt{Attempt: 1, At: t0, StatusCode: 200}}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := must2attempts(t, s, a.ID, j.DeliveryID); d.Status != store.StatusSucceeded {
		t.Fatalf("owner's outcome on a leased delivery: %+v", d)
	}
	// …and the others come back when the lease ends.
	if jobs := claim(t, s, "other", t0.Add(61*time.Second), 10); len(jobs) != 3 {
		t.Fatalf("after the lease claimed %d, want the 3 not finished", len(jobs))
	}
}

// testPublishLeasedMany publishes more deliveries in one call than a driver may write in one
// statement, leased and not, and checks that each is stored as its own: drivers write rows in
// chunks and may bind what the rows share once.
func testPublishLeasedMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, w1, w2, w3 := twoAndDisabled(t, s, "many@acme.test")
	const n = 75 // × 2 active webhooks: 150 rows, more than one chunk of any size
	leased := make([]store.NewEvent, n)
	free := make([]store.NewEvent, n)
	for i := range n {
		leased[i] = newEvent(a.ID, "message-send", t0.Add(time.Duration(i)*time.Millisecond))
		free[i] = newEvent(a.ID, "message-send", t0.Add(time.Duration(i)*time.Millisecond))
	}
	want := map[int64]store.Job{}
	for _, p := range []store.PublishParams{
		{Events: leased, IdempotencySince: t0.Add(-time.Hour), Owner: "me", LeaseUntil: t0.Add(time.Hour)},
		{Events: free, IdempotencySince: t0.Add(-time.Hour)},
	} {
		res, err := s.Publish(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.Deliveries != 3 {
				t.Fatalf("publish %d = %+v", i, r)
			}
			if p.Owner == "" {
				continue
			}
			if len(r.Jobs) != 2 {
				t.Fatalf("publish %d: %d jobs, want 2", i, len(r.Jobs))
			}
			for _, j := range r.Jobs {
				want[j.DeliveryID] = j
			}
		}
	}
	// The unleased ones are due at once, each as published.
	jobs := claim(t, s, "other", t0.Add(time.Second), 1000)
	if len(jobs) != 2*n {
		t.Fatalf("claimed %d unleased deliveries, want %d", len(jobs), 2*n)
	}
	byEvent := map[string]store.NewEvent{}
	for _, e := range append(leased, free...) {
		byEvent[e.ID] = e
	}
	for _, j := range jobs {
		e, ok := byEvent[j.EventID]
		if !ok || j.AccountID != a.ID || j.Event != "message-send" || !j.CreatedAt.Equal(e.CreatedAt) || j.Attempts != 0 ||
			(j.WebhookID != w1.ID && j.WebhookID != w2.ID) {
			t.Fatalf("claimed %+v for event %+v", j, e)
		}
		if _, dup := want[j.DeliveryID]; dup {
			t.Fatalf("claimed delivery %d, which is leased", j.DeliveryID)
		}
	}
	done := make([]store.Outcome, len(jobs))
	for i, j := range jobs {
		done[i] = store.Outcome{DeliveryID: j.DeliveryID, Owner: "other", Status: store.StatusSucceeded, At: t0.Add(time.Second),
			Attempt: &store.Attempt{Attempt: 1, At: t0.Add(time.Second), StatusCode: 200}}
	}
	if err := s.Complete(ctx, done); err != nil {
		t.Fatal(err)
	}
	// The leased ones come back, unchanged, when their lease ends.
	jobs = claim(t, s, "other", t0.Add(time.Hour+time.Second), 1000)
	if len(jobs) != 2*n {
		t.Fatalf("claimed %d deliveries after the lease, want %d", len(jobs), 2*n)
	}
	for _, j := range jobs {
		w, ok := want[j.DeliveryID]
		if !ok {
			t.Fatalf("claimed delivery %d, not one of the leased", j.DeliveryID)
		}
		w.WebhookVersion, j.WebhookVersion = 0, 0
		if j != w {
			t.Fatalf("after the lease claimed %+v, published %+v", j, w)
		}
		delete(want, j.DeliveryID)
	}
	list, total := must2(s.ListDeliveries(ctx, a.ID, w3.ID, store.DeliveryFilter{}, store.Page{Size: 1}))
	if total != 2*n || list[0].Status != store.StatusCancelled || list[0].LastError == "" || list[0].CompletedAt.IsZero() {
		t.Fatalf("disabled webhook: %d deliveries, newest %+v", total, list)
	}
}

// testPublishSeesChanges publishes between changes to accounts and webhooks: each publish goes
// by the state committed before it, whatever a driver remembers of earlier ones.
func testPublishSeesChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "changes@acme.test")
	w1 := createWebhook(t, s, a.ID, "message-send")
	leased := func(e store.NewEvent) store.Published {
		t.Helper()
		res, err := s.Publish(ctx, store.PublishParams{Events: []store.NewEvent{e}, IdempotencySince: t0.Add(-time.Hour),
			Owner: "me", LeaseUntil: t0.Add(time.Minute)})
		if err != nil || res[0].Err != nil {
			t.Fatalf("publish: %v %+v", err, res)
		}
		return res[0]
	}
	var ids []int64
	hooks := func(r store.Published) []int64 {
		var ws []int64
		for _, j := range r.Jobs {
			ws = append(ws, j.WebhookID)
			ids = append(ids, j.DeliveryID)
		}
		slices.Sort(ws)
		return ws
	}

	if r := leased(newEvent(a.ID, "message-send", t0)); !slices.Equal(hooks(r), []int64{w1.ID}) {
		t.Fatalf("first publish: jobs %+v", r.Jobs)
	}
	w2 := createWebhook(t, s, a.ID, "message-send")
	if r := leased(newEvent(a.ID, "message-send", t0)); !slices.Equal(hooks(r), []int64{w1.ID, w2.ID}) {
		t.Fatalf("after a webhook was created: jobs %+v", r.Jobs)
	}
	upd, err := s.UpdateWebhook(ctx, a.ID, w1.ID, func(x *store.Webhook) error { x.URL = "https://example.com/moved"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	r := leased(newEvent(a.ID, "message-send", t0))
	for _, j := range r.Jobs {
		if j.WebhookID == w1.ID && j.WebhookVersion != upd.Version {
			t.Fatalf("after an update to version %d: job %+v", upd.Version, j)
		}
	}
	hooks(r)
	if _, err := s.UpdateWebhook(ctx, a.ID, w2.ID, func(x *store.Webhook) error {
		x.Status, x.DisabledReason = store.WebhookDisabled, "disabled by its owner"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := leased(newEvent(a.ID, "message-send", t0)); r.Deliveries != 2 || !slices.Equal(hooks(r), []int64{w1.ID}) {
		t.Fatalf("after a webhook was disabled: %d deliveries, jobs %+v", r.Deliveries, r.Jobs)
	}
	// A health update that leaves the status alone changes nothing a publish goes by; one that
	// disables the webhook, as alerting does when it keeps failing, does.
	health := func(f func(*store.Webhook)) {
		t.Helper()
		if _, err := s.UpdateHealth(ctx, []int64{w1.ID}, func(w *store.Webhook, _ *store.AlertState) ([]store.Alert, error) {
			f(w)
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	health(func(w *store.Webhook) { w.LastDeliveryAt, w.LastSuccessAt = t0, t0 })
	r = leased(newEvent(a.ID, "message-send", t0))
	if r.Deliveries != 2 || !slices.Equal(hooks(r), []int64{w1.ID}) || r.Jobs[0].WebhookVersion != upd.Version {
		t.Fatalf("after a health update: %d deliveries, jobs %+v (version %d)", r.Deliveries, r.Jobs, upd.Version)
	}
	health(func(w *store.Webhook) { w.Status, w.DisabledReason = store.WebhookDisabled, "failing" })
	if r := leased(newEvent(a.ID, "message-send", t0)); r.Deliveries != 2 || len(r.Jobs) != 0 {
		t.Fatalf("after health disabled the webhook: %d deliveries, jobs %+v", r.Deliveries, r.Jobs)
	}
	if err := s.DeleteWebhook(ctx, a.ID, w1.ID, t0); err != nil {
		t.Fatal(err)
	}
	if r := leased(newEvent(a.ID, "message-send", t0)); r.Deliveries != 1 || len(r.Jobs) != 0 {
		t.Fatalf("after a webhook was deleted: %d deliveries, jobs %+v", r.Deliveries, r.Jobs)
	}

	// An account id unknown to one publish may exist by the next.
	next := a.ID + 1
	if res := publish(t, s, newEvent(next, "message-send", t0)); !errors.Is(res[0].Err, store.ErrNotFound) {
		t.Fatalf("publish for account %d before it exists: %+v", next, res[0])
	}
	b := createAccount(t, s, "changes-b@acme.test")
	if b.ID != next {
		t.Fatalf("the next account got id %d, not %d: this test needs another way to name an account that will exist", b.ID, next)
	}
	if res := publish(t, s, newEvent(b.ID, "message-send", t0)); res[0].Err != nil {
		t.Fatalf("publish for account %d once it exists: %v", b.ID, res[0].Err)
	}

	// Delivery ids never repeat.
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) || len(ids) != 7 {
		t.Fatalf("delivery ids %v", ids)
	}
}

// testUpdateHealthMany updates more webhooks at once than a driver is likely to read or write
// in one statement: each gets its own values, and the state and status changes stick.
func testUpdateHealthMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := createAccount(t, s, "many@acme.test")
	const n = 700
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = createWebhook(t, s, a.ID, "message-send").ID
	}
	seen := 0
	changed, err := s.UpdateHealth(ctx, ids, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		seen++
		k := int(x.ID % 7)
		x.LastDeliveryAt, x.ConsecutiveFailures = t0.Add(time.Duration(x.ID)*time.Second), k
		st.Pending = k
		if k == 0 {
			x.Status, x.DisabledReason, x.UpdatedAt = store.WebhookDisabled, fmt.Sprint("reason ", x.ID), t0
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("update called for %d webhooks, want %d", seen, n)
	}
	disabled := 0
	for _, id := range ids {
		w, err := s.WebhookByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		k := int(id % 7)
		if !w.LastDeliveryAt.Equal(t0.Add(time.Duration(id)*time.Second)) || w.ConsecutiveFailures != k {
			t.Fatalf("webhook %d: lastDeliveryAt %v, consecutiveFailures %d", id, w.LastDeliveryAt, w.ConsecutiveFailures)
		}
		if k == 0 {
			disabled++
			if w.Status != store.WebhookDisabled || w.DisabledReason != fmt.Sprint("reason ", id) || w.Version != 2 {
				t.Fatalf("webhook %d: %+v", id, w)
			}
		} else if w.Status != store.WebhookActive || w.Version != 1 {
			t.Fatalf("webhook %d: %+v", id, w)
		}
	}
	if len(changed) != disabled {
		t.Fatalf("%d reported changed, %d disabled", len(changed), disabled)
	}
	// The alert state written comes back to the next update.
	if _, err := s.UpdateHealth(ctx, ids, func(x *store.Webhook, st *store.AlertState) ([]store.Alert, error) {
		if st.Pending != int(x.ID%7) {
			t.Errorf("webhook %d: pending %d", x.ID, st.Pending)
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}
