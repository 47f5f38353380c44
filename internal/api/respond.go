package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/hookrelay/hookrelay/internal/store"
)

// TimeFormat is how every time is written: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// optTime is a time that is null when zero.
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

type requestIDKey struct{}

// withRequestID gives every request an id, in X-Request-Id and in error bodies.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// errorKinds maps a status to the type and name of the error body.
var errorKinds = map[int][2]string{
	400: {"bad_request_error", "BadRequestError"},
	401: {"unauthorized_error", "UnauthorizedError"},
	403: {"forbidden_error", "ForbiddenError"},
	404: {"not_found_error", "NotFoundError"},
	405: {"method_not_allowed_error", "MethodNotAllowedError"},
	409: {"conflict_error", "ConflictError"},
	413: {"payload_too_large_error", "PayloadTooLargeError"},
	415: {"unsupported_media_type_error", "UnsupportedMediaTypeError"},
	429: {"rate_limit_error", "RateLimitError"},
	500: {"internal_server_error", "InternalServerError"},
	503: {"service_unavailable_error", "ServiceUnavailableError"},
}

// ErrorBody is the body of every 4xx and 5xx answer.
type ErrorBody struct {
	HTTPCode  int    `json:"httpCode"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Name      string `json:"name"`
	RequestID string `json:"requestId"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	kind, ok := errorKinds[status]
	if !ok {
		kind = errorKinds[500]
	}
	writeJSON(w, status, ErrorBody{
		HTTPCode:  status,
		Message:   msg,
		Timestamp: formatTime(time.Now()),
		Type:      kind[0],
		Name:      kind[1],
		RequestID: requestID(r),
	})
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
	writeError(w, r, http.StatusInternalServerError, "internal error; the request id identifies it in the server log")
}

// storeError answers for an error from the store: 404 for ErrNotFound (with notFound as the
// message), 409 for ErrConflict (with conflict), 500 otherwise.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error, notFound, conflict string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, notFound)
	case errors.Is(err, store.ErrConflict) && conflict != "":
		writeError(w, r, http.StatusConflict, conflict)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		s.internalError(w, r, err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// envelope is the success body.
type envelope struct {
	Message string `json:"message,omitempty"`
	Data    any    `json:"data,omitempty"`
}

// list is the data of a list answer.
type list[T any] struct {
	Rows     []T `json:"rows"`
	Page     int `json:"page"`
	PageSize int `json:"pageSize"`
	Total    int `json:"total"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"httpCode":500,"message":"encode response"}`, http.StatusInternalServerError)
		return
	}
	writeBody(w, status, b.Bytes())
}

// writeBody answers with the JSON body b.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// The functions below write JSON by hand, for answers too frequent for encoding/json's
// reflection; they write the same bytes as writeJSON.

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			// Escapes, invalid UTF-8, U+2028 and U+2029: leave them to encoding/json.
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string cannot fail
			return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendStringMember appends the member key (written with its colon and the comma before
// it) unless s is empty, as omitempty does.
func appendStringMember(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

func appendIntMember(dst []byte, key string, n int) []byte {
	return strconv.AppendInt(append(dst, key...), int64(n), 10)
}

// pathID parses the path parameter name as a positive integer id.
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// page reads page and pageSize from the query.
func page(r *http.Request) (store.Page, error) {
	p := store.Page{Page: 0, Size: 25}
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return p, fmt.Errorf("page must be an integer from 0 to 1000000, got %q", v)
		}
		p.Page = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, fmt.Errorf("pageSize must be an integer from 1 to 100, got %q", v)
		}
		p.Size = n
	}
	return p, nil
}

// writeList answers one page of rows, each shown through view.
func writeList[T, V any](w http.ResponseWriter, rows []T, view func(T) V, p store.Page, total int) {
	views := make([]V, len(rows))
	for i, r := range rows {
		views[i] = view(r)
	}
	writeJSON(w, http.StatusOK, envelope{Data: list[V]{Rows: views, Page: p.Page, PageSize: p.Size, Total: total}})
}
