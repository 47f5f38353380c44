package api

import (
	"context"
	_ "embed"
	"net/http"
	"time"
)

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ caller) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the store answers within two seconds, 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ caller) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		writeError(w, r, http.StatusServiceUnavailable, "store unreachable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ caller) {
	if s.cfg.Metrics == nil {
		writeError(w, r, http.StatusNotFound, "metrics are not enabled")
		return
	}
	s.cfg.Metrics.Handler().ServeHTTP(w, r)
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ caller) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiDoc)
}
