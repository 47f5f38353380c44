package postgres_test

import (
	"testing"

	"github.com/hookrelay/hookrelay/internal/store/postgres"
	"github.com/hookrelay/hookrelay/internal/store/postgres/pgtest"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

// The same benchmarks as the SQLite driver's (storetest runs both), each in a fresh schema.

func openBench(b *testing.B) *postgres.Store {
	return openStore(b, pgtest.DatabaseURL(b), pgtest.NewSchema(b))
}

func BenchmarkPublish(b *testing.B) { storetest.BenchPublish(b, openBench(b)) }

func BenchmarkPublishLeased(b *testing.B) { storetest.BenchPublishLeased(b, openBench(b)) }

func BenchmarkClaimComplete(b *testing.B) { storetest.BenchClaimComplete(b, openBench(b)) }

func BenchmarkClaimSpread(b *testing.B) { storetest.BenchClaimSpread(b, openBench(b)) }

func BenchmarkWebhookByID(b *testing.B) { storetest.BenchWebhookByID(b, openBench(b)) }

func BenchmarkListDeliveries(b *testing.B) { storetest.BenchListDeliveries(b, openBench(b)) }

func BenchmarkUpdateHealth(b *testing.B) { storetest.BenchUpdateHealth(b, openBench(b)) }

func BenchmarkEventBodies(b *testing.B) { storetest.BenchEventBodies(b, openBench(b)) }
