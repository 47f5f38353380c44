package sqlite_test

import (
	"context"
	"testing"

	"github.com/hookrelay/hookrelay/internal/store/sqlite"
	"github.com/hookrelay/hookrelay/internal/store/storetest"
)

// The same benchmarks as the PostgreSQL driver's (storetest runs both), with the durable
// default (synchronous=FULL), so the figures compare.

func openBench(b *testing.B) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkPublish(b *testing.B) { storetest.BenchPublish(b, openBench(b)) }

func BenchmarkPublishLeased(b *testing.B) { storetest.BenchPublishLeased(b, openBench(b)) }

func BenchmarkClaimComplete(b *testing.B) { storetest.BenchClaimComplete(b, openBench(b)) }

func BenchmarkClaimSpread(b *testing.B) { storetest.BenchClaimSpread(b, openBench(b)) }

func BenchmarkWebhookByID(b *testing.B) { storetest.BenchWebhookByID(b, openBench(b)) }

func BenchmarkListDeliveries(b *testing.B) { storetest.BenchListDeliveries(b, openBench(b)) }

func BenchmarkUpdateHealth(b *testing.B) { storetest.BenchUpdateHealth(b, openBench(b)) }

func BenchmarkEventBodies(b *testing.B) { storetest.BenchEventBodies(b, openBench(b)) }
