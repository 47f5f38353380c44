package postgres_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

// The same benchmarks as the SQLite driver's (storetest runs both), each in a fresh schema.

func BenchmarkPublish(b *testing.B) {
	storetest.BenchPublish(b, openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b)))
}

func BenchmarkPublishLeased(b *testing.B) {
	storetest.BenchPublishLeased(b, openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b)))
}

func BenchmarkClaimComplete(b *testing.B) {
	storetest.BenchClaimComplete(b, openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b)))
}

func BenchmarkWebhookByID(b *testing.B) {
	storetest.BenchWebhookByID(b, openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b)))
}

func BenchmarkListDeliveries(b *testing.B) {
	storetest.BenchListDeliveries(b, openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b)))
}

func BenchmarkUpdateHealth(b *testing.B) {
	storetest.BenchUpdateHealth(b, openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b)))
}
