// Package postgres is the distributed store: several hookrelay nodes share one PostgreSQL
// database (pgx/v5, pgxpool).
//
// Unlike SQLite, PostgreSQL has many writers, so nothing is funnelled through one goroutine;
// instead every hot path is a constant number of round trips whatever the size of its batch.
// Publish is one pipelined batch (one implicit transaction) that inserts all events and all their
// deliveries from arrays; Claim is one UPDATE … FOR UPDATE SKIP LOCKED statement; Complete is
// one statement that applies every outcome and logs every attempt. Correctness across nodes
// comes from the database itself: row locks for claims and webhook deletes, the unique index on
// idempotency keys for concurrent publishers, and the lease owner as a fence for outcomes.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/hookrelay/hookrelay/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of Options.
const (
	DefaultMaxConns        = 16
	DefaultMinConns        = 2
	DefaultMaxConnLifetime = 30 * time.Minute
	DefaultMaxConnIdleTime = 5 * time.Minute
	DefaultPingTimeout     = 2 * time.Second
	// DefaultConnectTimeout applies when the URL sets no connect_timeout, so that a database
	// that does not answer at all (a dropped route, a firewall) fails a connect instead of
	// hanging on it.
	DefaultConnectTimeout = 5 * time.Second
)

// Options tune the store. A zero pool setting takes the URL's pool_* parameter when the URL
// has one (pool_max_conns, pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time, as
// pgxpool parses them), else the default; a non-zero one wins over the URL.
type Options struct {
	MaxConns        int32         // default 16
	MinConns        int32         // default 2
	MaxConnLifetime time.Duration // default 30m
	MaxConnIdleTime time.Duration // default 5m
	// PingTimeout bounds Ping, so a readiness probe answers promptly when the database is gone.
	PingTimeout time.Duration // default 2s
	// Schema, when set, is created if missing and is the only schema on every connection's
	// search_path: the tables and their migration history live there.
	Schema string
	Logger *slog.Logger
}

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	pool        *pgxpool.Pool
	pingTimeout time.Duration
	schema      string // the schema the tables are in (names the notification channel)
	log         *slog.Logger

	// Cancellations of deleted or disabled webhooks' deliveries that go on after the change
	// returned (see cancelBehind): Close closes stopping under cancels' lock, so that no more
	// start, stops those going on between two chunks and waits for them.
	cancelWait time.Duration
	cancels    struct {
		sync.Mutex
		wg sync.WaitGroup
	}
	stopping  chan struct{}
	closeOnce sync.Once
}

// Open connects to the database at url, applies pending migrations and returns the store.
// Several nodes may open the same database at once: migrations run under a session-level
// advisory lock, so only one applies them and the others wait.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	cfg, err := poolConfig(url, opt)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, cfg.ConnConfig, opt.Schema, opt.Logger); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := newStore(pool, opt)
	// The migrations have just connected, so only the caller's context bounds this first use.
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return s, nil
}

// Migrate applies pending migrations to the database at url without keeping it open.
func Migrate(ctx context.Context, url string, logger *slog.Logger) error {
	cfg, err := poolConfig(url, Options{})
	if err != nil {
		return err
	}
	return migrate(ctx, cfg.ConnConfig, "", logger)
}

func poolConfig(url string, opt Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database url: %w", err)
	}
	// pgxpool has already taken its pool_* parameters out of the URL; read them again to tell
	// a value the URL set from pgxpool's own default.
	raw, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database url: %w", err)
	}
	inURL := func(key string) bool { _, ok := raw.RuntimeParams[key]; return ok }
	switch {
	case opt.MaxConns > 0:
		cfg.MaxConns = opt.MaxConns
	case !inURL("pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	switch {
	case opt.MinConns > 0:
		cfg.MinConns = opt.MinConns
	case !inURL("pool_min_conns"):
		cfg.MinConns = DefaultMinConns
	}
	cfg.MinConns = min(cfg.MinConns, cfg.MaxConns)
	switch {
	case opt.MaxConnLifetime > 0:
		cfg.MaxConnLifetime = opt.MaxConnLifetime
	case !inURL("pool_max_conn_lifetime"):
		cfg.MaxConnLifetime = DefaultMaxConnLifetime
	}
	switch {
	case opt.MaxConnIdleTime > 0:
		cfg.MaxConnIdleTime = opt.MaxConnIdleTime
	case !inURL("pool_max_conn_idle_time"):
		cfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "hookrelay"
	}
	if opt.Schema != "" {
		// A startup parameter, so every connection has it from its first statement and no
		// round trip is spent setting it.
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opt.Schema}.Sanitize()
	}
	return cfg, nil
}

// migrationLockID is the advisory lock that serialises migrations of one schema; stores in
// different schemas of the same database (the tests' isolation) do not wait for each other.
func migrationLockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("hookrelay migrations\x00" + schema))
	return int64(h.Sum64())
}

func migrate(ctx context.Context, connConfig *pgx.ConnConfig, schema string, logger *slog.Logger) error {
	db := stdlib.OpenDB(*connConfig.Copy())
	defer db.Close()
	lockKey := schema
	if lockKey == "" {
		// A schema chosen by the URL's search_path (hookrelay migrate has no other way).
		lockKey = connConfig.RuntimeParams["search_path"]
	}
	lockID := migrationLockID(lockKey)
	if schema != "" {
		if err := createSchema(ctx, db, schema, lockID); err != nil {
			return err
		}
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// goose polls for the lock no faster than once a second; give a slow migration on another
	// node ten minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 600))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	if logger != nil {
		for _, r := range results {
			logger.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}

// createSchema creates the schema if it is missing. Two nodes creating it at once would race
// on the catalog, so the creation holds the schema's migration lock.
func createSchema(ctx context.Context, db *sql.DB, schema string, lockID int64) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up schema %q: %w", schema, err)
	}
	if exists {
		// Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when
		// there is nothing to create.
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", schema, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID); err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", schema, err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", schema, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", schema, err)
	}
	return nil
}

// newStore is a Store on pool, its options' defaults filled in.
func newStore(pool *pgxpool.Pool, opt Options) *Store {
	s := &Store{pool: pool, pingTimeout: opt.PingTimeout, log: opt.Logger, cancelWait: cancelWait, stopping: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.pingTimeout <= 0 {
		s.pingTimeout = DefaultPingTimeout
	}
	return s
}

// Close stops the cancellations still going on after their deletes (what they leave pending
// reads as cancelled, and the engine cancels it as it claims it), then closes every connection
// of the pool, waiting for those in use to be given back. When the database has stopped
// answering, pgx's attempt to cancel what a broken connection was running can hold Close up
// for as long as 15 seconds.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancels.Lock()
		close(s.stopping)
		s.cancels.Unlock()
		s.cancels.wg.Wait()
	})
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers, within the ping timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.pingTimeout)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// ts is the stored form of a time: milliseconds, UTC (which also drops the monotonic reading).
func ts(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// fromTS converts a stored time back; NULL is the zero time.
func fromTS(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// nullTS is the stored form of a time that may be unset: the zero time is NULL.
func nullTS(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: ts(t), Valid: true}
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// uniqueViolation reports whether err is a violation of the named unique index.
func uniqueViolation(err error, index string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == index
}

// transient reports whether err aborted a transaction that may simply be run again: a
// deadlock between writers that touched the same rows in different orders, or a
// serialization failure.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// retry runs fn, again when it failed with a transient error. fn must be a whole transaction:
// a transient error has rolled all of it back.
func retry(ctx context.Context, fn func() error) error {
	const attempts = 5
	for i := 1; ; i++ {
		err := fn()
		if err == nil || i == attempts || !transient(err) {
			return err
		}
		select {
		case <-time.After(time.Duration(i) * 5 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

var _ store.Store = (*Store)(nil)
