package postgres

// Test helpers shared by this package's tests and the external ones (package postgres_test).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DatabaseURL is the database the tests run against. Without HOOKRELAY_TEST_POSTGRES_URL they
// skip; with it, a database that cannot be reached fails them (CI sets it and must not pass by
// skipping).
func DatabaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("HOOKRELAY_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("HOOKRELAY_TEST_POSTGRES_URL is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	return u
}

// NewSchema names a fresh schema for one test and drops it, with everything in it, when the
// test ends. Each test has its own, so tests run in parallel on one database.
func NewSchema(t testing.TB) string {
	t.Helper()
	u := DatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("HOOKRELAY_TEST_POSTGRES_URL is set but the database cannot be reached: %v", err)
	}
	conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "hookrelay_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}
