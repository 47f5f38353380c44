package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/hookrelay/hookrelay/internal/store"
)

// TestBucketIndexMigration: a store holding deliveries, taken back to the index by webhook
// (migration 4) and opened again, migrates to the bucketed index and lists every delivery.
func TestBucketIndexMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, a, hooks := storeWithWebhooks(t, dir, 1, at)
	w := hooks[0]
	events := make([]store.NewEvent, 3000) // three buckets of ids
	for i := range events {
		events[i] = store.NewEvent{ID: fmt.Sprintf("evt-%d", i), AccountID: a.ID, Type: "message-send", Body: []byte(`{}`), CreatedAt: at}
	}
	if _, err := s.Publish(ctx, store.PublishParams{Events: events, IdempotencySince: at.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db := migrateDown(t, dir, 4)
	var indexes int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'deliveries_webhook'`).Scan(&indexes); err != nil || indexes != 1 {
		t.Fatalf("after going down to 4: %d indexes deliveries_webhook (%v)", indexes, err)
	}
	db.Close()

	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var bucketed, byWebhook int
	if err := s.rdb.QueryRow(`SELECT count(*) FILTER (WHERE name = 'deliveries_webhook_bucket'), count(*) FILTER (WHERE name = 'deliveries_webhook')
		FROM sqlite_master WHERE type = 'index'`).Scan(&bucketed, &byWebhook); err != nil || bucketed != 1 || byWebhook != 0 {
		t.Fatalf("after migrating again: %d bucketed indexes, %d by webhook (%v)", bucketed, byWebhook, err)
	}
	list, total, err := s.ListDeliveries(ctx, a.ID, w.ID, store.DeliveryFilter{}, store.Page{Page: 1, Size: 1000})
	if err != nil || total != len(events) || len(list) != 1000 || list[0].ID <= list[999].ID {
		t.Fatalf("after migrating again: %d listed of %d (%v)", len(list), total, err)
	}
}

// migrateDown takes the closed store in dir down to migration version, and returns the
// database open on it.
func migrateDown(t *testing.T, dir string, version int64) *sql.DB {
	t.Helper()
	db, err := openDB(filepath.Join(dir, FileName), 1, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return db
}
