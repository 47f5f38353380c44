package api

import (
	"net/http"

	"github.com/hookrelay/hookrelay/internal/store"
)

// Alert is an alert email of a webhook, sent or waiting.
type Alert struct {
	ID             int64    `json:"id"`
	Kind           string   `json:"kind"`
	Recipient      string   `json:"recipient"`
	State          string   `json:"state"`
	Failures       int      `json:"failures"`
	FirstFailureAt *string  `json:"firstFailureAt"`
	LastFailureAt  *string  `json:"lastFailureAt"`
	LastStatusCode *int     `json:"lastStatusCode"`
	LastError      *string  `json:"lastError"`
	Events         []string `json:"events"`
	Reason         *string  `json:"reason"`
	Tries          int      `json:"tries"`
	SendError      *string  `json:"sendError"`
	CreatedAt      string   `json:"createdAt"`
	SentAt         *string  `json:"sentAt"`
}

func alertView(a store.Alert) Alert {
	events := a.Events
	if events == nil {
		events = []string{}
	}
	return Alert{
		ID:             a.ID,
		Kind:           a.Kind,
		Recipient:      a.Recipient,
		State:          a.State,
		Failures:       a.Failures,
		FirstFailureAt: optTime(a.FirstFailureAt),
		LastFailureAt:  optTime(a.LastFailureAt),
		LastStatusCode: optInt(a.LastStatusCode),
		LastError:      optString(a.LastError),
		Events:         events,
		Reason:         optString(a.Reason),
		Tries:          a.Tries,
		SendError:      optString(a.SendError),
		CreatedAt:      formatTime(a.CreatedAt),
		SentAt:         optTime(a.SentAt),
	}
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c caller) {
	id, p, ok := webhookPage(w, r)
	if !ok {
		return
	}
	if _, ok := s.webhookOf(w, r, c, id); !ok {
		return
	}
	alerts, total, err := s.store.ListAlerts(r.Context(), c.accountID, id, p)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeList(w, alerts, alertView, p, total)
}
