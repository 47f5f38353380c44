// Package pgtest gives a test a PostgreSQL schema of its own in the database that
// HOOKRELAY_TEST_POSTGRES_URL names, so tests run in parallel on one database. Tests import it;
// nothing else does.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
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
// test ends. It does not create it: the store does, when given the name.
func NewSchema(t testing.TB) string {
	t.Helper()
	return newSchema(t, false)
}

// SchemaURL creates a fresh schema, dropped as NewSchema's is, and returns the database's URL
// with the schema as its search_path, for code that is given only a URL (a server).
func SchemaURL(t testing.TB) string {
	t.Helper()
	schema := newSchema(t, true)
	u, err := url.Parse(DatabaseURL(t))
	if err != nil {
		t.Fatalf("HOOKRELAY_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func newSchema(t testing.TB, create bool) string {
	t.Helper()
	u := DatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("HOOKRELAY_TEST_POSTGRES_URL is set but the database cannot be reached: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "hookrelay_test_" + hex.EncodeToString(b[:])
	name := pgx.Identifier{schema}.Sanitize()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+name+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if create {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
			t.Fatalf("create schema %s: %v", schema, err)
		}
	}
	return schema
}
