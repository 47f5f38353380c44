// Package sqlite is the embedded store: one SQLite file in WAL mode (modernc.org/sqlite, no cgo).
//
// SQLite allows one writer at a time, so every write goes through one goroutine that owns the
// only write connection. It takes whatever writes are waiting and commits them in one
// transaction (each in its own savepoint, so one failing write does not undo the others): under
// load many publishes, claims and outcomes share one commit and one fsync. Reads use a separate
// pool of read-only connections, which WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite" // registers the "sqlite" database/sql driver; its fdatasync switch

	"github.com/hookrelay/hookrelay/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data directory.
const FileName = "hookrelay.db"

// maxBatch bounds the writes committed together, so one commit never grows without limit.
const maxBatch = 512

var errClosed = errors.New("sqlite store: closed")

// fdatasyncOnce makes SQLite commit with fdatasync(2) instead of fsync(2), process-wide, as
// SQLite's own builds for Linux do (the transpiled library keeps fsync unless told). fdatasync
// writes a file's data and the metadata needed to read it back, its size included, so a commit
// is as durable; it skips the timestamps, which on ext4 cost fsync a journal commit.
var fdatasyncOnce sync.Once

// Store is the SQLite implementation of store.Store.
type Store struct {
	wdb *sql.DB // one connection, used only by the writer goroutine
	rdb *sql.DB // read-only connections
	cdb *sql.DB // one connection, used only by the checkpointer goroutine

	committed chan struct{} // the writer tells the checkpointer it committed
	ckptDone  chan struct{}

	ops    chan *op
	stats  writerStats
	closed chan struct{}
	done   chan struct{}
	once   sync.Once

	stmts statements // the writer's
	reads reads      // the read pool's

	// Owned by the writer goroutine: what it knows of the committed state, so that a publish
	// needs no query for it.
	cache writerCache
	// Owned by the writer goroutine too: Publish's argument lists, kept between publishes.
	publishArgs publishArgs

	log *slog.Logger
	// stopped is OnStop's function, nil when none.
	stopped func(w store.Webhook, deleted bool)

	// deleting holds the cancellations of deleted or disabled webhooks that go on after the
	// change returned (see cancelWait), by webhook id; reads show their deliveries as cancelled.
	deleting struct {
		sync.Mutex
		m map[int64]cancellation
	}
	deletingWG sync.WaitGroup
	// stopping is closed by Close, under deleting's lock: no more cancellations start in the
	// background, and those going on stop, before the writer does.
	stopping   chan struct{}
	cancelWait time.Duration
}

// OnStop has f called once a webhook's delete or disable is committed, before its pending
// deliveries are cancelled (which takes many writes when it has a backlog): with the webhook
// as disabled, or with deleted set and only its ID and AccountID. The server tells the
// delivery engine from it, so that nothing more is sent to the webhook meanwhile. Call it
// before the store is in use.
func (s *Store) OnStop(f func(w store.Webhook, deleted bool)) { s.stopped = f }

// writerCache holds what Publish reads of accounts and webhooks, and the next delivery id.
// Every write that may change what it holds empties it (see op.keepsCache), as do a failed
// write and a failed commit, so it never holds what the database does not.
type writerCache struct {
	accounts map[int64]bool        // account id → exists
	targets  map[fanoutKey]targets // the webhooks an event of that account and type goes to
	// health holds webhooks as UpdateHealth last read or wrote them, so that the flush every
	// second reads only the ones it has not seen.
	health map[int64]healthRow
	// nextDelivery is the id the next delivery gets (0 = not read yet). The writer assigns ids
	// itself, so that inserting deliveries needs no RETURNING; the process holds the data
	// directory's lock, so no one else inserts. It only grows: ids of a rolled-back insert are
	// skipped, never reused, as AUTOINCREMENT would.
	nextDelivery int64
}

// lastDelivery is the highest delivery id given so far (0 when none), read in the writer's tx
// the first time.
func (s *Store) lastDelivery(ctx context.Context, tx *sql.Tx) (int64, error) {
	if s.cache.nextDelivery == 0 {
		if err := tx.StmtContext(ctx, s.stmts.nextDelivery).QueryRowContext(ctx).Scan(&s.cache.nextDelivery); err != nil {
			return 0, fmt.Errorf("read the next delivery id: %w", err)
		}
	}
	return s.cache.nextDelivery - 1, nil
}

// writerStats is the writer's share of store.WriterStats, in nanoseconds where a duration.
type writerStats struct {
	commits, writes, busy, committing atomic.Int64
	commitsBy                         [len(store.CommitBounds) + 1]atomic.Int64
}

// WriterStats reports how busy the writer goroutine has been since Open.
func (s *Store) WriterStats() store.WriterStats {
	w := store.WriterStats{
		Commits:    s.stats.commits.Load(),
		Writes:     s.stats.writes.Load(),
		Busy:       time.Duration(s.stats.busy.Load()),
		Committing: time.Duration(s.stats.committing.Load()),
	}
	for i := range w.CommitsBy {
		w.CommitsBy[i] = s.stats.commitsBy[i].Load()
	}
	return w
}

func (c *writerCache) reset() {
	clear(c.accounts)
	clear(c.targets)
	clear(c.health)
}

type op struct {
	ctx context.Context
	fn  func(tx *sql.Tx) error
	err chan error
	// keepsCache says fn changes no account and no webhook's status, or resets the cache
	// itself when it does (it runs on the writer goroutine, which owns the cache).
	keepsCache bool
}

// Options tune the store; the zero value is the durable default.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "FULL" (default) syncs the WAL at every
	// commit, so a committed write survives power loss; "NORMAL" survives a process crash only.
	Synchronous string
	Logger      *slog.Logger
}

// Open opens (creating if needed) the database in dir and applies pending migrations.
func Open(ctx context.Context, dir string, opt Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	sync := opt.Synchronous
	if sync == "" {
		sync = "FULL"
	}
	path := filepath.Join(dir, FileName)
	fdatasyncOnce.Do(func() {
		// Unavailable on macOS and Windows, where SQLite syncs its own way: nothing to change.
		msqlite.Fdatasync(true)
	})
	wdb, err := openDB(path, 1, url.Values{"_txlock": {"immediate"}},
		"journal_mode(WAL)", "synchronous("+sync+")", "busy_timeout(10000)", "foreign_keys(OFF)", "temp_store(MEMORY)",
		"wal_autocheckpoint("+strconv.Itoa(walPages)+")")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, wdb, opt.Logger); err != nil {
		wdb.Close()
		return nil, err
	}

	rdb, err := openDB(path, 8, url.Values{}, "busy_timeout(10000)", "query_only(1)", "temp_store(MEMORY)")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}

	// The checkpointer's connection: checkpoints copy what commits appended to the WAL into
	// the database file, and this one does so beside the writer instead of inside its commits.
	cdb, err := openDB(path, 1, url.Values{}, "busy_timeout(10000)")
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("open %s for checkpoints: %w", path, err)
	}

	s := &Store{
		wdb:        wdb,
		rdb:        rdb,
		cdb:        cdb,
		committed:  make(chan struct{}, 1),
		ckptDone:   make(chan struct{}),
		ops:        make(chan *op, maxBatch),
		closed:     make(chan struct{}),
		done:       make(chan struct{}),
		stopping:   make(chan struct{}),
		cancelWait: cancelWait,
		cache:      writerCache{accounts: map[int64]bool{}, targets: map[fanoutKey]targets{}, health: map[int64]healthRow{}},
		log:        opt.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(s.stmts.prepare(ctx, wdb), s.reads.prepare(ctx, rdb)); err != nil {
		s.stmts.close()
		s.reads.close()
		s.wdb.Close()
		s.rdb.Close()
		s.cdb.Close()
		return nil, err
	}
	go s.writer()
	go s.checkpointer(opt.Logger)
	if err := s.resume(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// openDB opens the database at path with query (driver settings) and pragmas applied to
// every connection, on at most conns connections, all kept open.
func openDB(path string, conns int, query url.Values, pragmas ...string) (*sql.DB, error) {
	for _, p := range pragmas {
		query.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+query.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// Migrate applies pending migrations to the database in dir without keeping it open.
func Migrate(ctx context.Context, dir string, logger *slog.Logger) error {
	s, err := Open(ctx, dir, Options{Logger: logger})
	if err != nil {
		return err
	}
	return s.Close()
}

func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true))
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

// Close stops the cancellations still going on after their deletes (the next Open resumes
// them; meanwhile the engine cancels what they leave as it claims it), then the writer after
// the writes already queued, and closes the database.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.deleting.Lock()
		close(s.stopping)
		s.deleting.Unlock()
		s.deletingWG.Wait()
		close(s.closed)
	})
	<-s.done
	<-s.ckptDone
	s.stmts.close()
	s.reads.close()
	return errors.Join(s.rdb.Close(), s.cdb.Close(), s.wdb.Close())
}

// checkpointEvery is the shortest time between two of the checkpointer's checkpoints. Each
// checkpoint syncs the WAL and the database file: at 20 ms they were a third of a throughput
// run's syncs (1,402 fdatasync calls against 954 at 100 ms), and every sync costs the machine
// CPU beside its wait (BENCHMARKS.md, fifteenth session).
const checkpointEvery = 100 * time.Millisecond

// walPages is the WAL's size in pages at which the writer checkpoints inside its commit
// (SQLite's automatic checkpoint; its default is 1,000). Between checkpoints 100 ms apart more
// pages pile up than 20 ms apart, and the writer would do more of the checkpointer's work: the
// publish scenario ran at 57,000 – 81,000 events/s at 100 ms with 1,000 pages, 71,000 – 75,000
// with 4,000 (16 MB), and 61,000 – 77,000 at 20 ms with 1,000 (three to six rounds each).
const walPages = 4000

// checkpointer copies committed WAL frames into the database file on its own connection, at
// most every checkpointEvery while the writer commits. Otherwise the writer would do it inside
// every commit that takes the WAL past walPages (SQLite's automatic checkpoint, 8% of the
// writer's time when publishing at its default 1,000 pages). The automatic checkpoint stays as
// the bound on the WAL's size: when it runs, the checkpointer has already copied all but the
// last few commits.
func (s *Store) checkpointer(logger *slog.Logger) {
	defer close(s.ckptDone)
	for {
		select {
		case <-s.committed:
		case <-s.closed:
			return
		}
		// PASSIVE never waits for the writer or readers; it copies what it can.
		if _, err := s.cdb.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil && logger != nil {
			logger.Warn("sqlite checkpoint failed", "err", err)
		}
		select {
		case <-time.After(checkpointEvery):
		case <-s.closed:
			return
		}
	}
}

// Ping reports whether both connections answer.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.closed:
		return errClosed
	default:
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error { return nil })
}

// write runs fn in the writer's next transaction and waits until it is committed.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.queue(ctx, &op{ctx: ctx, fn: fn, err: make(chan error, 1)})
}

// writeKeeping is write for an fn that changes no account and no webhook's status (or empties
// the cache itself when it does): the writer's cache survives it.
func (s *Store) writeKeeping(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.queue(ctx, &op{ctx: ctx, fn: fn, err: make(chan error, 1), keepsCache: true})
}

func (s *Store) queue(ctx context.Context, o *op) error {
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errClosed
	}
	// Once queued the write may be committed: wait for the verdict even if ctx ends.
	return <-o.err
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, maxBatch)
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.closed:
			// Finish what was queued before Close.
			for {
				select {
				case o := <-s.ops:
					s.run([]*op{o})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.run(batch)
	}
}

// run commits the batch, counts it in the writer's figures, then gives each op its result:
// whoever waits on an op sees figures that include it.
func (s *Store) run(batch []*op) {
	start := time.Now()
	errs := s.commit(batch)
	s.stats.commits.Add(1)
	s.stats.writes.Add(int64(len(batch)))
	s.stats.busy.Add(int64(time.Since(start)))
	for i, o := range batch {
		o.err <- errs[i]
	}
}

// commit runs the batch in one transaction and returns each op's error: each op sees only its
// own, and a failed commit fails every op that had succeeded.
func (s *Store) commit(batch []*op) []error {
	errs := make([]error, len(batch))
	tx, err := s.wdb.BeginTx(context.Background(), nil)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("begin: %w", err)
		}
		return errs
	}
	single := len(batch) == 1
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !o.keepsCache {
			s.cache.reset() // the ops after it read afresh
		}
		if single {
			errs[i] = o.fn(tx)
			continue
		}
		if _, err := tx.Exec("SAVEPOINT op"); err != nil {
			errs[i] = fmt.Errorf("savepoint: %w", err)
			continue
		}
		if errs[i] = o.fn(tx); errs[i] != nil {
			s.cache.reset() // the failed op may have changed it
			if _, err := tx.Exec("ROLLBACK TO op"); err != nil {
				errs[i] = errors.Join(errs[i], fmt.Errorf("rollback to savepoint: %w", err))
			}
		}
		if _, err := tx.Exec("RELEASE op"); err != nil {
			errs[i] = errors.Join(errs[i], fmt.Errorf("release savepoint: %w", err))
		}
	}
	if single && errs[0] != nil {
		tx.Rollback()
		s.cache.reset() // the failed op may have changed it
		return errs
	}
	committing := time.Now()
	err = tx.Commit()
	took := time.Since(committing)
	s.stats.committing.Add(int64(took))
	s.stats.commitsBy[store.CommitBucket(took)].Add(1)
	if err != nil {
		s.cache.reset() // it may hold what did not commit
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		}
	} else {
		select {
		case s.committed <- struct{}{}:
		default:
		}
	}
	return errs
}

// ms converts t to the stored form: milliseconds since the epoch.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMs converts a stored time back; 0 (NULL) is the zero time.
func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// nullMs stores the zero time as NULL.
func nullMs(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

var _ store.Store = (*Store)(nil)
