// Package server assembles a running hookrelay from its configuration: the store, the admin
// key, the delivery engine, the metrics and the HTTP API, and runs them until told to stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/internal/alert"
	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/apikey"
	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/delivery"
	"github.com/hookrelay/hookrelay/internal/metrics"
	"github.com/hookrelay/hookrelay/internal/store"
	"github.com/hookrelay/hookrelay/internal/store/postgres"
	"github.com/hookrelay/hookrelay/internal/store/sqlite"
)

// AdminKeyFile is the file in the data directory that holds a generated admin key.
const AdminKeyFile = "admin.key"

// OpenStore opens the store the configuration names and applies pending migrations.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log, MaxConns: int32(cfg.DBMaxConns)})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open embedded store in %s: %w", cfg.DataDir, err)
	}
	return s, nil
}

// Server is a running hookrelay.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	store    store.Store
	unlock   func()
	adminKey string
	metrics  *metrics.Metrics
	engine   *delivery.Engine
	monitor  *alert.Monitor
	ln       net.Listener
	http     *http.Server
}

// New opens everything the configuration names and starts listening, but serves nothing
// until Run.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	tuneGC()
	s := &Server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if cfg.DatabaseURL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		// The embedded store belongs to one process: a second one would deliver everything twice.
		if s.unlock, err = lockDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if s.store, err = OpenStore(ctx, cfg, log); err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		// Leases left by a previous process of this data dir are void: it is gone.
		if err := s.store.Release(ctx, "", time.Now()); err != nil {
			return nil, err
		}
	}
	if s.adminKey, err = adminKey(cfg, log); err != nil {
		return nil, err
	}

	s.metrics = metrics.New(s.store)
	node := owner()
	var mailer alert.Mailer
	if cfg.SMTPURL != "" {
		if mailer, err = alert.NewSMTP(cfg.SMTPURL, 30*time.Second); err != nil {
			return nil, err
		}
	}
	s.monitor = alert.New(alert.Config{
		Store:        s.store,
		Owner:        node,
		Interval:     cfg.AlertInterval,
		DisableAfter: cfg.DisableAfter,
		Mailer:       mailer,
		From:         cfg.AlertFrom,
		Logger:       log,
		Metrics:      s.metrics,
		// The engine is made next; it and the monitor each need the other.
		StatusChanged: func(w store.Webhook) { s.engine.WebhookChanged(w) },
	})
	s.engine = delivery.New(delivery.Config{
		Store:              s.store,
		Owner:              node,
		RetrySchedule:      cfg.RetrySchedule,
		Timeout:            cfg.DeliveryTimeout,
		AllowPrivate:       cfg.AllowPrivateDestinations,
		Metrics:            s.metrics,
		Logger:             log,
		Observer:           s.monitor,
		Concurrency:        cfg.MaxInFlight,
		WebhookConcurrency: cfg.MaxInFlightPerWebhook,
	})
	// The embedded store cancels a deleted or disabled webhook's deliveries after the change
	// commits, a chunk per write: the engine hears of the change first, so that it sends the
	// webhook nothing more meanwhile. (The API and the monitor tell it again afterwards.)
	if st, ok := s.store.(interface {
		OnStop(func(w store.Webhook, deleted bool))
	}); ok {
		st.OnStop(func(w store.Webhook, deleted bool) {
			if deleted {
				s.engine.WebhookDeleted(w.ID)
			} else {
				s.engine.WebhookChanged(w)
			}
		})
	}
	handler := api.New(api.Config{
		Store:                    s.store,
		Engine:                   s.engine,
		AdminKey:                 s.adminKey,
		AllowPrivateDestinations: cfg.AllowPrivateDestinations,
		IdempotencyWindow:        delivery.IdempotencyWindow,
		Metrics:                  s.metrics,
		Logger:                   log,
	})
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AdminKey is the admin key in force.
func (s *Server) AdminKey() string { return s.adminKey }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.store }

// Metrics returns the server's metrics (the bench reads the engine's attempts from them).
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Run serves until ctx ends, then stops accepting requests, lets the ones in progress finish,
// stops the delivery engine (in-flight attempts finish, held deliveries are given back) and
// closes everything. It returns nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("hookrelay listening", "addr", "http://"+s.Addr(), "store", s.storeName(),
		"retry_schedule", s.cfg.RetrySchedule, "delivery_timeout", s.cfg.DeliveryTimeout)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()

	bg, stopBackground := context.WithCancel(context.Background())
	engineDone := make(chan error, 1)
	go func() { engineDone <- s.engine.Run(bg) }()
	// The monitor stops after the engine, so the last attempts' health and alerts are written.
	monitorCtx, stopMonitor := context.WithCancel(context.Background())
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		s.monitor.Run(monitorCtx)
	}()
	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		delivery.Prune(bg, s.store, s.cfg.Retention, time.Hour, s.log)
	}()

	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
		s.log.Info("shutting down")
		// The engine stops starting attempts at once, while the HTTP server finishes the
		// requests it has; events accepted meanwhile are durable and go out after the restart.
		stopBackground()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.DeliveryTimeout+5*time.Second)
		defer cancel()
		if e := s.http.Shutdown(sctx); e != nil {
			err = fmt.Errorf("shut down http: %w", e)
		}
	}
	stopBackground()
	err = errors.Join(err, <-engineDone)
	<-pruneDone
	stopMonitor()
	<-monitorDone
	s.log.Info("stopped")
	return errors.Join(err, s.close())
}

// owner names this process's leases: host, process id and a random part, so two processes
// never share one, even across restarts.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), apikey.New("")[:8])
}

func (s *Server) storeName() string {
	if s.cfg.DatabaseURL != "" {
		return "postgres:" + redactDSN(s.cfg.DatabaseURL)
	}
	return "sqlite:" + filepath.Join(s.cfg.DataDir, sqlite.FileName)
}

func (s *Server) close() error {
	var err error
	if s.store != nil {
		err = s.store.Close()
	}
	if s.unlock != nil {
		s.unlock()
	}
	return err
}

// adminKey returns the configured admin key, or the one kept in the data dir, generating and
// keeping one on first start.
func adminKey(cfg config.Config, log *slog.Logger) (string, error) {
	if cfg.AdminKey != "" {
		return cfg.AdminKey, nil
	}
	path := filepath.Join(cfg.DataDir, AdminKeyFile)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(b))
		if len(key) < 16 {
			return "", fmt.Errorf("admin key file %s holds no key of at least 16 characters", path)
		}
		log.Info("admin key loaded", "path", path)
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read admin key: %w", err)
	}
	key := apikey.New(apikey.AdminPrefix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write admin key: %w", err)
	}
	_, err = f.WriteString(key + "\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return "", fmt.Errorf("write admin key: %w", err)
	}
	log.Info("admin key generated", "path", path)
	return key, nil
}

// redactDSN shows a database URL without its password.
func redactDSN(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// tuneGC lets the heap grow to three times what is live before collecting (GOGC=200) unless
// GOGC is set: delivery makes short-lived garbage at a high rate, and at the default (100)
// collection took about a tenth of the CPU, for a live heap of a few tens of MB.
var tuneGC = sync.OnceFunc(func() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
})
