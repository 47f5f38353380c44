package sqlite

import (
	"context"
	"strings"
	"testing"
)

// TestQueryPlans: the queries that run on every publish or prune, and those that find a
// webhook's deliveries, use the indexes meant for them; a full scan of events or deliveries
// here would grow with the retention.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ofWebhook1 := strings.Replace(ofWebhook, "?", "1", 1) // the webhook's id
	for _, c := range []struct {
		query string
		want  string // in the plan
	}{
		// Pruning walks both tables by rowid, up to a bound found by binary search.
		{`SELECT rowid FROM events WHERE rowid < 10 AND live <= 0 ORDER BY rowid LIMIT 10`, "USING INTEGER PRIMARY KEY (rowid<?)"},
		{`SELECT created_at FROM events WHERE rowid >= 5 ORDER BY rowid LIMIT 1`, "USING INTEGER PRIMARY KEY (rowid>?)"},
		{`SELECT id FROM deliveries WHERE id < 10 AND completed_at IS NOT NULL AND completed_at < 1 ORDER BY id LIMIT 10`,
			"USING INTEGER PRIMARY KEY (rowid<?)"},
		{`SELECT id, type, deliveries, created_at FROM events WHERE account_id = 1 AND idempotency_key = 'k'`, "USING INDEX events_idempotency"},
		{`UPDATE events SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND created_at < 1`, "USING INDEX events_idempotency_created"},
		// Event bodies: each id of the array looked up in the index on events' ids.
		{strings.Replace(eventBodiesSQL, "?", `'["a", "b"]'`, 1), "SEARCH e USING INDEX sqlite_autoindex_events_1 (id=?)"},
		{`UPDATE events SET live = live - 1 WHERE id = 'a'`, "USING INDEX sqlite_autoindex_events_1"},
		{`SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= 1 ORDER BY next_attempt_at LIMIT 10`, "INDEX deliveries_due"},
		// The claim's form, its limit through CAST (statements.go says why).
		{`SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= 1 ORDER BY next_attempt_at LIMIT CAST(10 AS INTEGER)`, "INDEX deliveries_due"},
		// A webhook's deliveries: the range of buckets from the table's two ends, then one
		// search of the bucketed index per bucket, for the count, a page and cancelling its
		// pending deliveries.
		{bucketRange, "SEARCH deliveries"},
		{bucketsDown("9", "0") + `SELECT count(*) FROM b` + ofWebhook1 + ` AND d.account_id = 1`,
			"SEARCH d USING COVERING INDEX deliveries_webhook_bucket (<expr>=? AND webhook_id=? AND account_id=?)"},
		{bucketsDown("9", "0") + `SELECT ` + deliveryColumns + ` FROM b` + ofWebhook1 + `
			AND d.account_id = 1 AND d.status = 'failed' ORDER BY d.id DESC LIMIT 25`,
			"SEARCH d USING INDEX deliveries_webhook_bucket (<expr>=? AND webhook_id=? AND account_id=?)"},
		{strings.NewReplacer("?", "1").Replace(cancelRows), "SEARCH d USING COVERING INDEX deliveries_webhook_bucket (<expr>=? AND webhook_id=?)"},
	} {
		rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, c.want) {
			t.Errorf("%s\nplan: %s\nwant: %s", c.query, p, c.want)
		}
	}
}
