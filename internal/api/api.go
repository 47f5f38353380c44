// Package api serves hookrelay's HTTP API: the Mobile Text Alerts–compatible v3 resources
// (accounts, API keys, webhooks, events, deliveries) and the operational endpoints.
//
// Every route is declared once in the table built by routes; the same table drives the mux,
// the 404/405 answers, authentication, and the test that keeps openapi.json true to the code.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hookrelay/hookrelay/internal/apikey"
	"github.com/hookrelay/hookrelay/internal/delivery"
	"github.com/hookrelay/hookrelay/internal/metrics"
	"github.com/hookrelay/hookrelay/internal/store"
)

// MaxBodySize is the largest request body accepted.
const MaxBodySize = 1 << 20

// Engine is what the API needs of the delivery engine. A nil Engine is allowed: then
// deliveries are only stored.
type Engine interface {
	// Notify says deliveries may have become due (after publish or retry).
	Notify()
	// Lease says whether the engine takes what is published here straight away, and under
	// which lease to store it; Adopt hands it the deliveries so stored, with their bodies.
	Lease() (owner string, until time.Time, ok bool)
	Adopt(ctx context.Context, jobs []store.Job, bodies map[string][]byte)
	// WebhookChanged is called after a webhook was updated; later attempts use the new one.
	WebhookChanged(w store.Webhook)
	// WebhookDeleted is called after a webhook was deleted; when it returns, nothing more
	// will be sent to it.
	WebhookDeleted(id int64)
	// Test sends a sample event to the webhook now and reports what happened.
	Test(ctx context.Context, w store.Webhook) (delivery.TestResult, error)
}

// Config is what the API needs to know beyond its store.
type Config struct {
	Store  store.Store
	Engine Engine
	// AdminKey authorises account management and publishing.
	AdminKey string
	// AllowPrivateDestinations allows webhook URLs on loopback, private and link-local addresses.
	AllowPrivateDestinations bool
	// IdempotencyWindow is how long an idempotency key binds (24h by default).
	IdempotencyWindow time.Duration
	// Metrics counts published events and serves GET /metrics; nil answers 404.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Now is the clock (time.Now by default); tests may replace it.
	Now func() time.Time
}

// Server is the HTTP API.
type Server struct {
	cfg      Config
	store    store.Store
	engine   Engine
	log      *slog.Logger
	adminKey string
	handler  http.Handler

	touchMu sync.Mutex
	touched map[int64]time.Time // when each key's lastUsedAt was last written
}

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdempotencyWindow == 0 {
		cfg.IdempotencyWindow = 24 * time.Hour
	}
	s := &Server{
		cfg:      cfg,
		store:    cfg.Store,
		engine:   cfg.Engine,
		log:      cfg.Logger,
		adminKey: cfg.AdminKey,
		touched:  map[int64]time.Time{},
	}
	s.handler = s.routes()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// now is the current time at the store's precision.
func (s *Server) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// access says who may call a route.
type access int

const (
	public  access = iota
	admin          // the admin key
	account        // an account API key
)

// Route is one method and path of the API.
type Route struct {
	Method  string
	Pattern string
	access  access
	// body: the route reads a JSON body, so it needs Content-Type: application/json.
	body    bool
	handler func(w http.ResponseWriter, r *http.Request, c caller)
}

// caller is who made an authenticated request.
type caller struct {
	admin     bool
	accountID int64
	keyID     int64
}

func (s *Server) table() []Route {
	return []Route{
		{Method: "GET", Pattern: "/healthz", handler: s.healthz},
		{Method: "GET", Pattern: "/readyz", handler: s.readyz},
		{Method: "GET", Pattern: "/metrics", handler: s.metrics},
		{Method: "GET", Pattern: "/v3/openapi.json", handler: s.openapi},

		{Method: "POST", Pattern: "/v3/accounts", access: admin, body: true, handler: s.createAccount},
		{Method: "GET", Pattern: "/v3/accounts", access: admin, handler: s.listAccounts},
		{Method: "GET", Pattern: "/v3/accounts/{id}", access: admin, handler: s.getAccount},
		{Method: "PATCH", Pattern: "/v3/accounts/{id}", access: admin, body: true, handler: s.updateAccount},
		{Method: "POST", Pattern: "/v3/accounts/{id}/api-keys", access: admin, handler: s.createAPIKey},
		{Method: "GET", Pattern: "/v3/accounts/{id}/api-keys", access: admin, handler: s.listAPIKeys},
		{Method: "DELETE", Pattern: "/v3/accounts/{id}/api-keys/{keyId}", access: admin, handler: s.deleteAPIKey},

		{Method: "POST", Pattern: "/v3/webhooks", access: account, body: true, handler: s.createWebhook},
		{Method: "GET", Pattern: "/v3/webhooks", access: account, handler: s.listWebhooks},
		{Method: "GET", Pattern: "/v3/webhooks/{id}", access: account, handler: s.getWebhook},
		{Method: "PATCH", Pattern: "/v3/webhooks/{id}", access: account, body: true, handler: s.updateWebhook},
		{Method: "DELETE", Pattern: "/v3/webhooks/{id}", access: account, handler: s.deleteWebhook},
		{Method: "GET", Pattern: "/v3/webhooks/{id}/deliveries", access: account, handler: s.listDeliveries},
		{Method: "POST", Pattern: "/v3/webhooks/{id}/test", access: account, handler: s.testWebhook},
		{Method: "GET", Pattern: "/v3/webhooks/{id}/alerts", access: account, handler: s.listAlerts},

		{Method: "POST", Pattern: "/v3/events", access: admin, body: true, handler: s.createEvent},
		{Method: "POST", Pattern: "/v3/events/batch", access: admin, body: true, handler: s.createEvents},

		{Method: "GET", Pattern: "/v3/deliveries/{id}", access: account, handler: s.getDelivery},
		{Method: "POST", Pattern: "/v3/deliveries/{id}/retry", access: account, handler: s.retryDelivery},
	}
}

// Routes lists every route the server serves (for the OpenAPI check).
func (s *Server) Routes() []Route { return s.table() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	byPattern := map[string]map[string]Route{}
	var order []string
	for _, rt := range s.table() {
		if byPattern[rt.Pattern] == nil {
			byPattern[rt.Pattern] = map[string]Route{}
			order = append(order, rt.Pattern)
		}
		byPattern[rt.Pattern][rt.Method] = rt
	}
	for _, pattern := range order {
		methods := byPattern[pattern]
		var allow []string
		for _, m := range []string{"GET", "POST", "PATCH", "PUT", "DELETE"} {
			if _, ok := methods[m]; ok {
				allow = append(allow, m)
			}
		}
		if _, ok := methods["GET"]; ok {
			allow = append(allow, "HEAD")
		}
		allowed := strings.Join(allow, ", ")
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			method := r.Method
			if method == "HEAD" {
				method = "GET"
			}
			rt, ok := methods[method]
			if !ok {
				w.Header().Set("Allow", allowed)
				writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+pattern+"; allowed: "+allowed)
				return
			}
			s.serve(w, r, rt)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	return s.recover(withRequestID(mux))
}

// serve runs the checks every route shares, in the order a client can fix them: who is
// calling, then the body's media type and size, then the route itself.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt Route) {
	var c caller
	if rt.access != public {
		var ok bool
		if c, ok = s.authenticate(w, r); !ok {
			return
		}
		switch {
		case rt.access == admin && !c.admin:
			writeError(w, r, http.StatusForbidden, "this endpoint needs the admin key; an account API key cannot use it")
			return
		case rt.access == account && c.admin:
			writeError(w, r, http.StatusForbidden, "this endpoint needs an account API key; the admin key cannot use it")
			return
		}
	}
	if rt.body {
		if !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, r, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return
		}
		if r.ContentLength > MaxBodySize {
			tooLarge(w, r)
			return
		}
	}
	rt.handler(w, r, c)
}

// authenticate finds who holds the bearer key; on failure it has answered 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	h := r.Header.Get("Authorization")
	scheme, key, found := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if h == "" {
		writeError(w, r, http.StatusUnauthorized, "missing Authorization header; send Authorization: Bearer <key>")
		return caller{}, false
	}
	if !found || !strings.EqualFold(scheme, "Bearer") || key == "" {
		writeError(w, r, http.StatusUnauthorized, "Authorization header must be Bearer <key>")
		return caller{}, false
	}
	if s.adminKey != "" && apikey.Equal(key, s.adminKey) {
		return caller{admin: true}, true
	}
	k, err := s.store.LookupAPIKey(r.Context(), apikey.Hash(key))
	if err != nil {
		if isNotFound(err) {
			writeError(w, r, http.StatusUnauthorized, "unknown or revoked API key")
		} else {
			s.internalError(w, r, err)
		}
		return caller{}, false
	}
	s.touch(r.Context(), k.ID)
	return caller{accountID: k.AccountID, keyID: k.ID}, true
}

// touchEvery bounds how often a key's lastUsedAt is written: once a minute is precise enough
// and keeps a busy key from adding a write to every request.
const touchEvery = time.Minute

func (s *Server) touch(ctx context.Context, keyID int64) {
	now := s.now()
	s.touchMu.Lock()
	last, ok := s.touched[keyID]
	if ok && now.Sub(last) < touchEvery {
		s.touchMu.Unlock()
		return
	}
	s.touched[keyID] = now
	s.touchMu.Unlock()
	if err := s.store.TouchAPIKey(ctx, keyID, now); err != nil {
		s.log.Warn("record api key use", "key", keyID, "err", err)
	}
}

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v,
					"request_id", w.Header().Get("X-Request-Id"))
				writeError(w, r, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
