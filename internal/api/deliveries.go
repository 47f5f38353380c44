package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/internal/delivery"
	"github.com/hookrelay/hookrelay/internal/store"
)

// Delivery is the delivery object of the API.
type Delivery struct {
	ID             int64   `json:"id"`
	WebhookID      int64   `json:"webhookId"`
	EventID        string  `json:"eventId"`
	Event          string  `json:"event"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	LastStatusCode *int    `json:"lastStatusCode"`
	LastError      *string `json:"lastError"`
	NextAttemptAt  *string `json:"nextAttemptAt"`
	CreatedAt      string  `json:"createdAt"`
	CompletedAt    *string `json:"completedAt"`
}

// DeliveryDetail is a delivery with its attempt log, oldest attempt first.
type DeliveryDetail struct {
	Delivery
	AttemptLog []Attempt `json:"attemptLog"`
}

// Attempt is one entry of a delivery's attempt log.
type Attempt struct {
	Attempt      int     `json:"attempt"`
	At           string  `json:"at"`
	StatusCode   *int    `json:"statusCode"`
	DurationMs   int64   `json:"durationMs"`
	Error        *string `json:"error"`
	ResponseBody string  `json:"responseBody"`
}

func optInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deliveryView(d store.Delivery) Delivery {
	v := Delivery{
		ID:             d.ID,
		WebhookID:      d.WebhookID,
		EventID:        d.EventID,
		Event:          d.Event,
		Status:         d.Status,
		Attempts:       d.Attempts,
		LastStatusCode: optInt(d.LastStatusCode),
		LastError:      optString(d.LastError),
		CreatedAt:      formatTime(d.CreatedAt),
		CompletedAt:    optTime(d.CompletedAt),
	}
	if d.Status == store.StatusPending {
		v.NextAttemptAt = optTime(d.NextAttemptAt)
	}
	return v
}

// webhookPage reads the webhook id of the path (404 when it is not one) and the page of the
// query (400 when it is wrong) of a list under a webhook. On failure it has answered.
func webhookPage(w http.ResponseWriter, r *http.Request) (id int64, p store.Page, ok bool) {
	if id, ok = pathID(r, "id"); !ok {
		writeError(w, r, http.StatusNotFound, webhookNotFound(r))
		return 0, p, false
	}
	p, err := page(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return 0, p, false
	}
	return id, p, true
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, c caller) {
	id, p, ok := webhookPage(w, r)
	if !ok {
		return
	}
	var f store.DeliveryFilter
	if q := r.URL.Query(); q.Has("status") {
		f.Status = q.Get("status")
		if !slices.Contains(store.DeliveryStatuses, f.Status) {
			writeError(w, r, http.StatusBadRequest, "status must be one of "+strings.Join(store.DeliveryStatuses, ", "))
			return
		}
	}
	if _, ok := s.webhookOf(w, r, c, id); !ok {
		return
	}
	list, total, err := s.store.ListDeliveries(r.Context(), c.accountID, id, f, p)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeList(w, list, deliveryView, p, total)
}

func deliveryNotFound(r *http.Request) string {
	return fmt.Sprintf("delivery %s not found", r.PathValue("id"))
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request, c caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, deliveryNotFound(r))
		return
	}
	d, attempts, err := s.store.GetDelivery(r.Context(), c.accountID, id)
	if err != nil {
		s.storeError(w, r, err, deliveryNotFound(r), "")
		return
	}
	v := DeliveryDetail{Delivery: deliveryView(d), AttemptLog: make([]Attempt, len(attempts))}
	for i, a := range attempts {
		v.AttemptLog[i] = Attempt{
			Attempt:      a.Attempt,
			At:           formatTime(a.At),
			StatusCode:   optInt(a.StatusCode),
			DurationMs:   a.DurationMs,
			Error:        optString(a.Error),
			ResponseBody: a.ResponseBody,
		}
	}
	writeJSON(w, http.StatusOK, envelope{Data: v})
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, c caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, deliveryNotFound(r))
		return
	}
	d, err := s.store.RetryDelivery(r.Context(), c.accountID, id, s.now())
	if err != nil {
		s.storeError(w, r, err, deliveryNotFound(r), "")
		return
	}
	if s.engine != nil {
		s.engine.Notify()
	}
	writeJSON(w, http.StatusAccepted, envelope{Message: fmt.Sprintf("Delivery %d queued for another attempt.", d.ID), Data: deliveryView(d)})
}

// TestSend is the data of a test send's answer.
type TestSend struct {
	StatusCode *int    `json:"statusCode"`
	DurationMs int64   `json:"durationMs"`
	Error      *string `json:"error"`
	Success    bool    `json:"success"`
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request, c caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, webhookNotFound(r))
		return
	}
	wh, ok := s.webhookOf(w, r, c, id)
	if !ok {
		return
	}
	if s.engine == nil {
		writeError(w, r, http.StatusServiceUnavailable, "delivery is not running on this server")
		return
	}
	res, err := s.engine.Test(r.Context(), wh)
	var throttled *delivery.ThrottledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(int((throttled.RetryIn+time.Second-1)/time.Second)))
		writeError(w, r, http.StatusTooManyRequests, err.Error())
		return
	case errors.Is(err, delivery.ErrDeleted):
		writeError(w, r, http.StatusNotFound, webhookNotFound(r))
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, envelope{Data: TestSend{
		StatusCode: optInt(res.StatusCode),
		DurationMs: res.DurationMs,
		Error:      optString(res.Error),
		Success:    res.Success,
	}})
}
