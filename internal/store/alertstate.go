package store

import (
	"encoding/json"
	"time"
)

// storedAlertState is AlertState as every driver stores it: JSON, times in milliseconds since
// the epoch, 0 for the zero time.
type storedAlertState struct {
	Alerting          bool     `json:"alerting,omitempty"`
	LastAlertAt       int64    `json:"lastAlertAt,omitempty"`
	Pending           int      `json:"pending,omitempty"`
	PendingFirstAt    int64    `json:"pendingFirstAt,omitempty"`
	PendingLastAt     int64    `json:"pendingLastAt,omitempty"`
	PendingLastStatus int      `json:"pendingLastStatus,omitempty"`
	PendingLastError  string   `json:"pendingLastError,omitempty"`
	PendingEvents     []string `json:"pendingEvents,omitempty"`
}

// EncodeAlertState returns st in the form the drivers store.
func EncodeAlertState(st AlertState) []byte {
	b, _ := json.Marshal(storedAlertState{
		Alerting: st.Alerting, LastAlertAt: toMs(st.LastAlertAt), Pending: st.Pending,
		PendingFirstAt: toMs(st.PendingFirstAt), PendingLastAt: toMs(st.PendingLastAt),
		PendingLastStatus: st.PendingLastStatus, PendingLastError: st.PendingLastError, PendingEvents: st.PendingEvents,
	})
	return b // a struct of plain fields always encodes
}

// DecodeAlertState reads what EncodeAlertState wrote.
func DecodeAlertState(b []byte) (AlertState, error) {
	var a storedAlertState
	if err := json.Unmarshal(b, &a); err != nil {
		return AlertState{}, err
	}
	return AlertState{
		Alerting: a.Alerting, LastAlertAt: fromMs(a.LastAlertAt), Pending: a.Pending,
		PendingFirstAt: fromMs(a.PendingFirstAt), PendingLastAt: fromMs(a.PendingLastAt),
		PendingLastStatus: a.PendingLastStatus, PendingLastError: a.PendingLastError, PendingEvents: a.PendingEvents,
	}, nil
}

func toMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
