package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/internal/store"
)

// The store announces changes on one LISTEN/NOTIFY channel per schema, so stores in different
// schemas of one database (tests, several installations) do not hear each other.
const (
	dueMessage     = "due"
	webhookMessage = "webhook:"
)

// channel is the notification channel of the store's schema.
func (s *Store) channel() string { return "hookrelay:" + s.schema }

// announce tells every node about a change. Announcements are hints (a missed one costs a poll
// interval), so a failure is only logged by callers that care.
func (s *Store) announce(ctx context.Context, messages ...string) error {
	if len(messages) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, m := range messages {
		b.Queue(`SELECT pg_notify($1, $2)`, s.channel(), m)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}

func webhookChanged(id int64) string { return webhookMessage + strconv.FormatInt(id, 10) }

// Listen follows the store's channel on a connection of its own until ctx ends.
func (s *Store) Listen(ctx context.Context, fn func(store.Change)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The connection will have LISTENed: it is taken out of the pool and closed after.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel()}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("listen: %w", err)
		}
		switch {
		case n.Payload == dueMessage:
			fn(store.Change{Due: true})
		case strings.HasPrefix(n.Payload, webhookMessage):
			if id, err := strconv.ParseInt(strings.TrimPrefix(n.Payload, webhookMessage), 10, 64); err == nil {
				fn(store.Change{WebhookID: id})
			}
		}
	}
}

// takeSQL grants slots of one webhook's window; the webhook's advisory lock, taken by the
// statement before it in the same transaction, makes grants for one webhook one at a time,
// and as a statement of its own this one sees every grant committed before the lock was had.
// Expired grants of the webhook are deleted on the way.
const takeSQL = `WITH expired AS (
	DELETE FROM window_slots WHERE webhook_id = $1 AND until <= now()
), used AS (
	SELECT coalesce(sum(slots), 0)::int AS n, min(until) AS next
	FROM window_slots WHERE webhook_id = $1 AND until > now()
), ins AS (
	INSERT INTO window_slots (webhook_id, slots, until)
	SELECT $1, least($3::int, $2::int - n), now() + make_interval(secs => $4::float8) FROM used WHERE $2::int - n > 0
	RETURNING id, slots
)
SELECT coalesce((SELECT id FROM ins), 0), coalesce((SELECT slots FROM ins), 0),
	coalesce(extract(epoch FROM (SELECT next FROM used) - now()), 0)::float8`

// TakeSlots grants slots in one transaction and one round trip, locking the webhooks in id
// order so two nodes never wait for each other in a cycle.
func (s *Store) TakeSlots(ctx context.Context, reqs []store.SlotRequest) ([]store.SlotGrant, error) {
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(reqs[a].WebhookID - reqs[b].WebhookID) })
	grants := make([]store.SlotGrant, len(reqs))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, i := range order {
			r := reqs[i]
			b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, s.channel()+":window:"+strconv.FormatInt(r.WebhookID, 10))
			b.Queue(takeSQL, r.WebhookID, r.Limit, r.Want, r.ValidFor.Seconds())
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for _, i := range order {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("lock window of webhook %d: %w", reqs[i].WebhookID, err)
			}
			var retry float64
			g := store.SlotGrant{WebhookID: reqs[i].WebhookID}
			if err := br.QueryRow().Scan(&g.ID, &g.Granted, &retry); err != nil {
				return fmt.Errorf("take slots of webhook %d: %w", reqs[i].WebhookID, err)
			}
			if g.Granted == 0 {
				g.RetryIn = max(time.Duration(retry*float64(time.Second)), time.Millisecond)
			}
			grants[i] = g
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("take throughput slots: %w", err)
	}
	return grants, nil
}

// SettleSlots settles grants in one statement.
func (s *Store) SettleSlots(ctx context.Context, settles []store.SlotSettle) error {
	if len(settles) == 0 {
		return nil
	}
	ids := make([]int64, len(settles))
	used := make([]int32, len(settles))
	valid := make([]float64, len(settles))
	for i, st := range settles {
		if st.ID == 0 {
			return errors.New("settle throughput slots: a grant without an id")
		}
		ids[i], used[i], valid[i] = st.ID, int32(st.Used), st.ValidFor.Seconds()
	}
	_, err := s.pool.Exec(ctx, `WITH s AS (
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::float8[]) AS s(id, used, valid)
		), gone AS (
			DELETE FROM window_slots w USING s WHERE w.id = s.id AND (s.used = 0 OR s.valid <= 0)
		)
		UPDATE window_slots w SET slots = s.used, until = now() + make_interval(secs => s.valid)
		FROM s WHERE w.id = s.id AND s.used > 0 AND s.valid > 0`, ids, used, valid)
	if err != nil {
		return fmt.Errorf("settle throughput slots: %w", err)
	}
	return nil
}

var _ store.Shared = (*Store)(nil)

// The methods below do their work and then announce it to every node. An announcement that
// fails does not fail the call: the work is committed, and nodes that missed the hint find it
// at their next poll.

func (s *Store) Publish(ctx context.Context, p store.PublishParams) ([]store.Published, error) {
	res, err := s.publish(ctx, p)
	// Deliveries leased to the publishing node are that node's to send: nobody else need wake.
	if err == nil && p.Owner == "" {
		for _, r := range res {
			if r.Err == nil && !r.Duplicate && r.Deliveries > 0 {
				s.announce(ctx, dueMessage)
				break
			}
		}
	}
	return res, err
}

func (s *Store) RetryDelivery(ctx context.Context, accountID, id int64, now time.Time) (store.Delivery, error) {
	d, err := s.retryDelivery(ctx, accountID, id, now)
	if err == nil {
		s.announce(ctx, dueMessage)
	}
	return d, err
}

func (s *Store) Release(ctx context.Context, owner string, now time.Time) error {
	err := s.release(ctx, owner, now)
	if err == nil {
		s.announce(ctx, dueMessage)
	}
	return err
}

// UpdateWebhook announces the update as soon as it is committed; one that disables the webhook,
// before its deliveries are cancelled (see cancelBehind), so that other nodes stop sending to it
// meanwhile.
func (s *Store) UpdateWebhook(ctx context.Context, accountID, id int64, update func(*store.Webhook) error) (store.Webhook, error) {
	w, disabling, err := s.updateWebhook(ctx, accountID, id, update)
	if err != nil {
		return w, err
	}
	s.announce(ctx, webhookChanged(id))
	if disabling {
		s.cancelBehind(ctx, id, s.cancelWait)
	}
	return w, nil
}

// DeleteWebhook announces the delete as soon as it is committed, before the webhook's
// deliveries are cancelled (see deleteWebhook), so that other nodes stop sending to it meanwhile.
func (s *Store) DeleteWebhook(ctx context.Context, accountID, id int64, now time.Time) error {
	return s.deleteWebhook(ctx, accountID, id, now, func() { s.announce(ctx, webhookChanged(id)) })
}

func (s *Store) UpdateHealth(ctx context.Context, ids []int64, update func(*store.Webhook, *store.AlertState) ([]store.Alert, error)) ([]store.Webhook, error) {
	changed, err := s.applyHealth(ctx, ids, update)
	if err == nil {
		msgs := make([]string, len(changed))
		for i, w := range changed {
			msgs[i] = webhookChanged(w.ID)
		}
		s.announce(ctx, msgs...)
		// The health monitor does not wait for the cancelling of the webhooks it disabled.
		for _, w := range changed {
			if w.Status == store.WebhookDisabled {
				s.cancelBehind(ctx, w.ID, 0)
			}
		}
	}
	return changed, err
}
