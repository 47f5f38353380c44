// Package store defines what hookrelay keeps and the one interface through which the rest of
// the program reads and writes it. Drivers (sqlite, postgres) implement Store; the conformance
// suite in storetest proves each of them behaves the same.
//
// Times handed to a Store are truncated to milliseconds and returned in UTC.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every driver returns for the same situations, so callers can map them to HTTP statuses.
var (
	// ErrNotFound: the row does not exist, or belongs to another account.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value is already taken (an account email).
	ErrConflict = errors.New("conflict")
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusIgnored   = "ignored"
	StatusCancelled = "cancelled"
)

// DeliveryStatuses lists every delivery status, for validation and documentation.
var DeliveryStatuses = []string{StatusPending, StatusSucceeded, StatusFailed, StatusIgnored, StatusCancelled}

// Webhook statuses.
const (
	WebhookActive   = "active"
	WebhookDisabled = "disabled"
)

// Account is a customer of the platform: it owns webhooks and API keys.
type Account struct {
	ID        int64
	Email     string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewAPIKey is what a store keeps of a freshly generated key: never the key itself.
type NewAPIKey struct {
	Prefix string // the first characters of the key, shown to tell keys apart
	Hash   []byte // SHA-256 of the whole key
}

// APIKey is a stored account key.
type APIKey struct {
	ID         int64
	AccountID  int64
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// Webhook is a customer's registration: deliver events of type Event to URL.
type Webhook struct {
	ID                     int64
	AccountID              int64
	Event                  string
	URL                    string
	Secret                 string
	AlertEmail             string // empty when unset
	SendAlertEmail         bool
	SkipErrors             bool
	SkipErrorCodes         []string
	RetryOnError           bool
	MaxThroughputPerMinute int
	Status                 string // WebhookActive or WebhookDisabled
	// Version grows by one with every change, so a cached copy can tell it is stale.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time

	// Health, kept up to date by the delivery engine (see UpdateHealth).
	LastDeliveryAt      time.Time // last attempt's time; zero before any
	LastSuccessAt       time.Time // last 200's time; zero before any
	ConsecutiveFailures int       // failed attempts since the last success (ignored errors do not count)
	FailingSince        time.Time // first failure since the last success; zero while healthy
	FailingDeliveries   int       // deliveries that failed since FailingSince
	DisabledReason      string    // why the webhook was disabled; empty while active
}

// AlertState is what alert coalescing remembers of a webhook between emails.
type AlertState struct {
	// Alerting: a failing alert went out and no success came since.
	Alerting bool
	// LastAlertAt is when the last failing alert was queued.
	LastAlertAt time.Time
	// Pending counts failures not reported yet; the others describe them.
	Pending           int
	PendingFirstAt    time.Time
	PendingLastAt     time.Time
	PendingLastStatus int
	PendingLastError  string
	PendingEvents     []string
}

// Alert kinds.
const (
	AlertFailing   = "failing"
	AlertRecovered = "recovered"
	AlertDisabled  = "disabled"
)

// Alert states.
const (
	AlertPending = "pending" // to be mailed
	AlertSent    = "sent"
	AlertFailed  = "failed" // mailing gave up
	AlertLogged  = "logged" // no mail server configured: kept and logged only
)

// Alert is one alert email, queued or done.
type Alert struct {
	ID             int64
	AccountID      int64
	WebhookID      int64
	Kind           string
	Recipient      string
	URL            string // the webhook's URL when the alert was made
	Event          string // the webhook's event type
	Failures       int
	FirstFailureAt time.Time
	LastFailureAt  time.Time
	LastStatusCode int
	LastError      string
	Events         []string // event types of the failed deliveries
	Reason         string   // for AlertDisabled: why
	State          string
	Tries          int
	NextTryAt      time.Time
	SendError      string
	CreatedAt      time.Time
	SentAt         time.Time
}

// Page selects one page of a list: rows [Page*Size, Page*Size+Size) of the newest-first order.
type Page struct {
	Page int
	Size int
}

// Offset is the number of rows before the page.
func (p Page) Offset() int { return p.Page * p.Size }

// WebhookFilter narrows ListWebhooks; zero values match everything.
type WebhookFilter struct {
	Event string
}

// NewEvent is an event accepted for publishing. Body is the exact bytes every webhook receives.
type NewEvent struct {
	ID             string
	AccountID      int64
	Type           string
	Body           []byte
	IdempotencyKey string // empty for none
	CreatedAt      time.Time
}

// Published is the result of publishing one NewEvent.
type Published struct {
	EventID    string
	Type       string
	Deliveries int
	// Duplicate: an event with the same idempotency key was published within the window;
	// EventID, Type and Deliveries are that first event's and nothing new was stored.
	Duplicate bool
	// Err is set for an event that was not stored (ErrNotFound: its account does not exist).
	Err error
	// Jobs are the event's new pending deliveries, leased to PublishParams.Owner; only when
	// an Owner was given.
	Jobs []Job
}

// PublishParams is a batch of events to store, each with one delivery per matching webhook.
type PublishParams struct {
	Events []NewEvent
	// IdempotencySince: an earlier event with the same account and key counts as the same
	// event only when it was created after this time.
	IdempotencySince time.Time
	// Owner, when set, leases the new pending deliveries to Owner until LeaseUntil, as a claim
	// would, and Publish returns them as Published.Jobs: the engine that published them sends
	// them without claiming them from the store first.
	Owner      string
	LeaseUntil time.Time
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID             int64
	AccountID      int64
	WebhookID      int64
	EventID        string
	Event          string
	Status         string
	Attempts       int
	LastStatusCode int    // 0 when no response was received
	LastError      string // empty when none
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	CompletedAt    time.Time // zero while pending
}

// Attempt is one HTTP request made for a delivery.
type Attempt struct {
	Attempt      int
	At           time.Time
	StatusCode   int // 0 when no response was received
	DurationMs   int64
	Error        string
	ResponseBody string // the first 4 KiB
}

// DeliveryFilter narrows ListDeliveries; zero values match everything.
type DeliveryFilter struct {
	Status string
}

// Job is a delivery claimed for an attempt. The claim is a lease held by its owner until
// LeaseUntil; after that any node may claim the delivery again.
type Job struct {
	DeliveryID     int64
	AccountID      int64
	WebhookID      int64
	WebhookVersion int64 // 0 when the webhook no longer exists
	EventID        string
	Event          string
	Attempts       int // attempts made before this claim
	CreatedAt      time.Time
}

// ClaimParams asks for up to Limit deliveries due at Now.
type ClaimParams struct {
	Owner      string
	Now        time.Time
	Limit      int
	LeaseUntil time.Time
}

// Outcome is what happened to a claimed delivery. It is applied only while Owner still holds
// the lease, so a delivery changed meanwhile (cancelled, retried by hand) is not overwritten;
// the attempt is logged either way.
type Outcome struct {
	DeliveryID int64
	Owner      string
	// Attempt is the request made, nil when the delivery is released or ended without one.
	Attempt *Attempt
	// Status is StatusPending to try again at NextAttemptAt, or a final status.
	Status        string
	NextAttemptAt time.Time
	// Error explains an outcome without an attempt (for example "webhook deleted").
	Error string
	// At is when the outcome was decided; it becomes CompletedAt for a final status.
	At time.Time
}

// QueueStats counts pending deliveries.
type QueueStats struct {
	Due       int // pending with NextAttemptAt <= now (claimed ones included)
	Scheduled int // pending with NextAttemptAt > now
}

// WriterStats describes a store that commits every write through one writer (the embedded
// store): how much of its time that writer was busy, and how it grouped writes into commits.
// Every figure counts from the store's opening.
type WriterStats struct {
	Commits int64 // transactions committed (or failed)
	Writes  int64 // writes (publishes, claims, outcomes, …) in them
	// Busy is the writer's time from taking a batch of writes to having their results;
	// Committing is the part of it spent committing: writing the WAL and syncing it to disk.
	Busy, Committing time.Duration
	// CommitsBy counts the commits by how long each took: CommitsBy[i] those that took at
	// most CommitBounds[i] and more than the bound before it, the last those over the last
	// bound. A writer waits for its commit, so slow ones delay every write behind them. (A
	// batch whose only write failed is rolled back, not committed: Commits counts it, CommitsBy
	// does not.)
	CommitsBy [len(CommitBounds) + 1]int64
}

// CommitBounds are the upper bounds of WriterStats.CommitsBy's buckets.
var CommitBounds = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// CommitBucket is the index in WriterStats.CommitsBy of a commit that took d.
func CommitBucket(d time.Duration) int {
	for i, b := range CommitBounds {
		if d <= b {
			return i
		}
	}
	return len(CommitBounds)
}

// PruneParams says what history may go.
type PruneParams struct {
	// Before: finished deliveries completed before it, events created before it that no
	// delivery refers to any more, and alerts done before it are deleted.
	Before time.Time
	// IdempotencyBefore: idempotency keys of events created before it are forgotten.
	IdempotencyBefore time.Time
	// Limit bounds the deliveries deleted in one call, so a large backlog is pruned in steps.
	Limit int
}

// Store is everything hookrelay asks of its database. Methods scoped by accountID answer
// ErrNotFound for rows of another account, exactly as for missing rows.
type Store interface {
	// Ping reports whether the database is reachable.
	Ping(ctx context.Context) error
	Close() error

	CreateAccount(ctx context.Context, a Account, key NewAPIKey) (Account, APIKey, error)
	GetAccount(ctx context.Context, id int64) (Account, error)
	ListAccounts(ctx context.Context, p Page) ([]Account, int, error)
	// UpdateAccount applies update to the stored account inside one transaction; an error
	// from update aborts the change and is returned as is.
	UpdateAccount(ctx context.Context, id int64, update func(*Account) error) (Account, error)

	CreateAPIKey(ctx context.Context, accountID int64, key NewAPIKey, now time.Time) (APIKey, error)
	ListAPIKeys(ctx context.Context, accountID int64) ([]APIKey, error)
	DeleteAPIKey(ctx context.Context, accountID, keyID int64) error
	// LookupAPIKey finds the key whose hash is given.
	LookupAPIKey(ctx context.Context, hash []byte) (APIKey, error)
	// TouchAPIKey records that the key was used at the given time.
	TouchAPIKey(ctx context.Context, keyID int64, at time.Time) error

	CreateWebhook(ctx context.Context, w Webhook) (Webhook, error)
	GetWebhook(ctx context.Context, accountID, id int64) (Webhook, error)
	// WebhookByID reads a webhook of any account (for the delivery engine).
	WebhookByID(ctx context.Context, id int64) (Webhook, error)
	// WebhooksByID reads the webhooks with these ids, of any account: the delivery engine
	// loads every webhook a batch of deliveries names that it has not seen in one call, not
	// one per webhook. An id with no webhook is absent from the map.
	WebhooksByID(ctx context.Context, ids []int64) (map[int64]Webhook, error)
	ListWebhooks(ctx context.Context, accountID int64, f WebhookFilter, p Page) ([]Webhook, int, error)
	// UpdateWebhook applies update to the stored webhook inside one transaction and bumps
	// its Version; an error from update aborts the change and is returned as is. update may
	// run more than once (a driver may run the transaction again), each time on the webhook as
	// stored then. If the update disables the webhook, the cancelling of its pending deliveries
	// (those stored up to then) is recorded in that transaction and carried out after it, a
	// chunk per statement: for up to about a second before UpdateWebhook returns, then behind
	// it. From the commit on, reads show those deliveries as cancelled, with the disable's time
	// and reason, and later publishes store the webhook's deliveries cancelled. An update that
	// enables the webhook again finishes a cancelling still under way before it changes the
	// status, so none of them is sent. The engine cancels any delivery it claims of a disabled
	// webhook.
	UpdateWebhook(ctx context.Context, accountID, id int64, update func(*Webhook) error) (Webhook, error)
	// DeleteWebhook deletes the webhook and cancels its pending deliveries, as UpdateWebhook
	// does when it disables one (for up to about a second, then behind the return).
	DeleteWebhook(ctx context.Context, accountID, id int64, now time.Time) error

	// Publish stores the events and their deliveries; when it returns nil every event whose
	// Published.Err is nil is durable. Results are in the order of p.Events.
	Publish(ctx context.Context, p PublishParams) ([]Published, error)
	// EventBodies returns the bodies of the given events (missing ones are left out).
	EventBodies(ctx context.Context, ids []string) (map[string][]byte, error)

	// Claim leases due deliveries, oldest due first.
	Claim(ctx context.Context, p ClaimParams) ([]Job, error)
	// Complete records outcomes of claimed deliveries.
	Complete(ctx context.Context, outcomes []Outcome) error
	// Release gives back every lease held by owner, due at now.
	Release(ctx context.Context, owner string, now time.Time) error

	GetDelivery(ctx context.Context, accountID, id int64) (Delivery, []Attempt, error)
	ListDeliveries(ctx context.Context, accountID, webhookID int64, f DeliveryFilter, p Page) ([]Delivery, int, error)
	// RetryDelivery makes the delivery pending and due at now, whatever its state. A delivery
	// claimed right now keeps its claim: the attempt under way is the one more attempt.
	RetryDelivery(ctx context.Context, accountID, id int64, now time.Time) (Delivery, error)
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)
	// Prune deletes old history and reports how many deliveries it deleted.
	Prune(ctx context.Context, p PruneParams) (int, error)

	// UpdateHealth runs update for each of the webhooks (missing ones are skipped) on the
	// stored webhook and its alert state, with both locked against concurrent updates, and
	// stores what it changed: the health fields, the alert state, the alerts it returns and,
	// when it disables the webhook (Status becomes WebhookDisabled), the cancelling of its
	// pending deliveries, recorded as UpdateWebhook records it and carried out behind the
	// return, without a wait. It returns the webhooks whose status changed.
	// An error from update aborts the whole call.
	UpdateHealth(ctx context.Context, ids []int64, update func(w *Webhook, st *AlertState) ([]Alert, error)) ([]Webhook, error)
	// AlertsDue lists the webhooks whose alert state holds unreported failures and whose last
	// alert was queued at or before before.
	AlertsDue(ctx context.Context, before time.Time) ([]int64, error)
	// ClaimAlerts leases up to limit pending alerts whose NextTryAt has come.
	ClaimAlerts(ctx context.Context, owner string, now time.Time, limit int, leaseUntil time.Time) ([]Alert, error)
	// FinishAlert records a send attempt of a claimed alert: State, Tries, NextTryAt,
	// SendError and SentAt are taken from a; applied only while owner holds the lease.
	FinishAlert(ctx context.Context, owner string, a Alert) error
	// ListAlerts lists a webhook's alerts, newest first.
	ListAlerts(ctx context.Context, accountID, webhookID int64, p Page) ([]Alert, int, error)
}

// Shared is implemented by stores that several nodes can share (PostgreSQL). Beyond the rows,
// the nodes must agree on when to look for work, on webhook changes, and on each webhook's
// throughput window; this is how.
type Shared interface {
	// Listen calls fn for every change any node announced, until ctx ends. Deliveries
	// becoming due (publish, retry, release) and webhooks changing (update, delete, disable)
	// are announced by the store itself.
	Listen(ctx context.Context, fn func(Change)) error
	// TakeSlots grants request slots of webhooks' throughput windows: for each request, at
	// most Want slots, and never so many that more than Limit slots count at once. A granted
	// slot counts for ValidFor (from the store's clock) unless SettleSlots shortens it.
	TakeSlots(ctx context.Context, reqs []SlotRequest) ([]SlotGrant, error)
	// SettleSlots records how many slots of each grant were used and for how much longer
	// they count; unused slots stop counting at once.
	SettleSlots(ctx context.Context, settles []SlotSettle) error
}

// Change is what a node announced.
type Change struct {
	Due       bool  // deliveries may have become due
	WebhookID int64 // this webhook changed or was deleted (0 when Due)
}

// SlotRequest asks for slots of one webhook's window.
type SlotRequest struct {
	WebhookID int64
	Limit     int
	Want      int
	ValidFor  time.Duration
}

// SlotGrant is what a SlotRequest got, in the order of the requests.
type SlotGrant struct {
	ID        int64 // 0 when nothing was granted
	WebhookID int64
	Granted   int
	// RetryIn: when nothing was granted, how long until a slot frees up.
	RetryIn time.Duration
}

// SlotSettle closes a grant.
type SlotSettle struct {
	ID       int64
	Used     int
	ValidFor time.Duration // how much longer the used slots count
}
