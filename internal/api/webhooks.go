package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/store"
)

// Webhook is the webhook object of the API. The secret is never part of it.
type Webhook struct {
	ID                     int64    `json:"id"`
	Event                  string   `json:"event"`
	URL                    string   `json:"url"`
	AlertEmail             *string  `json:"alertEmail"`
	SendAlertEmail         bool     `json:"sendAlertEmail"`
	SkipErrors             bool     `json:"skipErrors"`
	SkipErrorCodes         []string `json:"skipErrorCodes"`
	RetryOnError           bool     `json:"retryOnError"`
	MaxThroughputPerMinute int      `json:"maxThroughputPerMinute"`
	Status                 string   `json:"status"`
	CreatedAt              string   `json:"createdAt"`
	UpdatedAt              string   `json:"updatedAt"`
	// Health, read-only.
	LastDeliveryAt      *string `json:"lastDeliveryAt"`
	LastSuccessAt       *string `json:"lastSuccessAt"`
	ConsecutiveFailures int     `json:"consecutiveFailures"`
	DisabledReason      *string `json:"disabledReason"`
}

func webhookView(w store.Webhook) Webhook {
	v := Webhook{
		ID:                     w.ID,
		Event:                  w.Event,
		URL:                    w.URL,
		SendAlertEmail:         w.SendAlertEmail,
		SkipErrors:             w.SkipErrors,
		SkipErrorCodes:         w.SkipErrorCodes,
		RetryOnError:           w.RetryOnError,
		MaxThroughputPerMinute: w.MaxThroughputPerMinute,
		Status:                 w.Status,
		CreatedAt:              formatTime(w.CreatedAt),
		UpdatedAt:              formatTime(w.UpdatedAt),
		LastDeliveryAt:         optTime(w.LastDeliveryAt),
		LastSuccessAt:          optTime(w.LastSuccessAt),
		ConsecutiveFailures:    w.ConsecutiveFailures,
		DisabledReason:         optString(w.DisabledReason),
	}
	if w.AlertEmail != "" {
		v.AlertEmail = &w.AlertEmail
	}
	if v.SkipErrorCodes == nil {
		v.SkipErrorCodes = []string{}
	}
	return v
}

// webhookFields are the members a webhook body may have, in the order they are checked.
var webhookFields = []string{"event", "url", "secret", "alertEmail", "sendAlertEmail", "skipErrors",
	"skipErrorCodes", "retryOnError", "maxThroughputPerMinute"}

// webhookPatchFields adds status, which only an update may set.
var webhookPatchFields = append(slices.Clone(webhookFields), "status")

// Limits of webhook fields.
const (
	maxURLLen      = 2048
	maxSecretLen   = 1024
	maxThroughput  = 1_000_000
	maxSkipCodes   = 100
	maxEmailLength = 254
)

var eventList = strings.Join(event.Types, ", ")

// applyWebhook checks the members present in o and copies them into w. It returns the first
// error, naming its field.
func (s *Server) applyWebhook(o object, w *store.Webhook) error {
	for _, name := range webhookPatchFields {
		if !o.has(name) {
			continue
		}
		var err error
		switch name {
		case "event":
			v, err := o.str(name)
			if err != nil || !event.Valid(v) {
				return fmt.Errorf("event must be one of %s", eventList)
			}
			w.Event = v
		case "url":
			var v string
			if v, err = o.str(name); err != nil {
				return errors.New("url must be an absolute http or https URL")
			}
			if err := s.checkURL(v); err != nil {
				return err
			}
			w.URL = v
		case "secret":
			v, err := o.str(name)
			if n := utf8.RuneCountInString(v); err != nil || n < 1 || n > maxSecretLen {
				return fmt.Errorf("secret must be a string of 1 to %d characters", maxSecretLen)
			}
			w.Secret = v
		case "alertEmail":
			if o.isNull(name) {
				w.AlertEmail = ""
				continue
			}
			v, err := o.str(name)
			if err != nil || !validEmail(v) {
				return errors.New("alertEmail must be a valid email address (or null)")
			}
			w.AlertEmail = v
		case "sendAlertEmail":
			if w.SendAlertEmail, err = o.boolean(name); err != nil {
				return err
			}
		case "skipErrors":
			if w.SkipErrors, err = o.boolean(name); err != nil {
				return err
			}
		case "retryOnError":
			if w.RetryOnError, err = o.boolean(name); err != nil {
				return err
			}
		case "skipErrorCodes":
			if w.SkipErrorCodes, err = statusCodes(o.value(name)); err != nil {
				return err
			}
		case "maxThroughputPerMinute":
			n, err := o.integer(name, 1, maxThroughput)
			if err != nil {
				return err
			}
			w.MaxThroughputPerMinute = int(n)
		case "status":
			v, err := o.str(name)
			if err != nil || (v != store.WebhookActive && v != store.WebhookDisabled) {
				return errors.New("status must be active or disabled")
			}
			switch {
			case v == store.WebhookActive && w.Status != store.WebhookActive:
				// Turned back on: it starts afresh, with no failure streak behind it.
				w.DisabledReason, w.FailingSince, w.FailingDeliveries, w.ConsecutiveFailures = "", time.Time{}, 0, 0
			case v == store.WebhookDisabled && w.Status != store.WebhookDisabled:
				w.DisabledReason = "disabled through the API"
			}
			w.Status = v
		}
	}
	return nil
}

// statusCodes reads skipErrorCodes: an array of 3-digit HTTP status codes, as strings or
// numbers, kept as strings in the order given, without repeats.
func statusCodes(raw json.RawMessage) ([]string, error) {
	bad := errors.New(`skipErrorCodes must be an array of 3-digit HTTP status codes from 100 to 599, for example ["404","410"]`)
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, bad
	}
	if len(items) > maxSkipCodes {
		return nil, fmt.Errorf("skipErrorCodes must have at most %d codes", maxSkipCodes)
	}
	codes := make([]string, 0, len(items))
	for _, it := range items {
		text := string(it)
		if len(it) > 0 && it[0] == '"' {
			if err := json.Unmarshal(it, &text); err != nil {
				return nil, bad
			}
		}
		n, err := strconv.Atoi(text)
		if err != nil || len(text) != 3 || n < 100 || n > 599 {
			return nil, bad
		}
		if !slices.Contains(codes, text) {
			codes = append(codes, text)
		}
	}
	return codes, nil
}

// HiddenEmail is what Mobile Text Alerts' published example shows in place of an email address
// (its page hides addresses from scrapers). Clients copy that example verbatim, so the API takes
// it; alerts for a webhook with this address go to the account's email instead.
const HiddenEmail = "[email protected]"

func validEmail(s string) bool {
	if s == HiddenEmail || s == "[email protected]" {
		return true
	}
	if len(s) > maxEmailLength {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// checkURL accepts absolute http(s) URLs with a host, and, unless private destinations are
// allowed, refuses hosts that are loopback, private or link-local addresses or localhost names.
// Names that only resolve to such addresses are refused when delivering, where the address
// used is known.
func (s *Server) checkURL(v string) error {
	bad := errors.New("url must be an absolute http or https URL")
	if len(v) > maxURLLen {
		return fmt.Errorf("url must be at most %d characters", maxURLLen)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return bad
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("url has an invalid port; it must be 1 to 65535")
		}
	}
	if s.cfg.AllowPrivateDestinations {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return errors.New("url must not point to localhost")
	}
	if ip, err := netip.ParseAddr(host); err == nil && !publicAddr(ip) {
		return errors.New("url must not point to a loopback, private, link-local or otherwise reserved address")
	}
	return nil
}

// publicAddr reports whether ip is an ordinary internet address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && !netip.MustParsePrefix("fc00::/7").Contains(ip)
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, c caller) {
	o, ok := readObject(w, r, webhookFields...)
	if !ok {
		return
	}
	for _, name := range []string{"event", "url", "secret"} {
		if !o.has(name) {
			writeError(w, r, http.StatusBadRequest, name+" is required")
			return
		}
	}
	now := s.now()
	wh := store.Webhook{
		AccountID:              c.accountID,
		SkipErrorCodes:         []string{},
		RetryOnError:           true,
		MaxThroughputPerMinute: 600,
		Status:                 store.WebhookActive,
		CreatedAt:              now,
		UpdatedAt:              now,
	}
	if err := s.applyWebhook(o, &wh); err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	wh, err := s.store.CreateWebhook(r.Context(), wh)
	if err != nil {
		s.storeError(w, r, err, "account not found", "")
		return
	}
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("Webhook %d created successfully.", wh.ID), Data: webhookView(wh)})
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, c caller) {
	p, err := page(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	var f store.WebhookFilter
	if q := r.URL.Query(); q.Has("event") {
		f.Event = q.Get("event")
		if !event.Valid(f.Event) {
			writeError(w, r, http.StatusBadRequest, "event must be one of "+eventList)
			return
		}
	}
	hooks, total, err := s.store.ListWebhooks(r.Context(), c.accountID, f, p)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeList(w, hooks, webhookView, p, total)
}

func webhookNotFound(r *http.Request) string {
	return fmt.Sprintf("webhook %s not found", r.PathValue("id"))
}

// webhookOf reads the caller's webhook id; if there is none, it has answered 404.
func (s *Server) webhookOf(w http.ResponseWriter, r *http.Request, c caller, id int64) (store.Webhook, bool) {
	wh, err := s.store.GetWebhook(r.Context(), c.accountID, id)
	if err != nil {
		s.storeError(w, r, err, webhookNotFound(r), "")
		return wh, false
	}
	return wh, true
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, c caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, webhookNotFound(r))
		return
	}
	wh, ok := s.webhookOf(w, r, c, id)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, envelope{Data: webhookView(wh)})
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, c caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, webhookNotFound(r))
		return
	}
	o, ok := readObject(w, r, webhookPatchFields...)
	if !ok {
		return
	}
	// Check the body before looking the webhook up, so a bad body is a 400 whatever the id.
	var scratch store.Webhook
	if err := s.applyWebhook(o, &scratch); err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	now := s.now()
	wh, err := s.store.UpdateWebhook(r.Context(), c.accountID, id, func(wh *store.Webhook) error {
		wh.UpdatedAt = now
		return s.applyWebhook(o, wh)
	})
	if err != nil {
		s.storeError(w, r, err, webhookNotFound(r), "")
		return
	}
	if s.engine != nil {
		s.engine.WebhookChanged(wh)
	}
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("Webhook %d updated successfully.", wh.ID), Data: webhookView(wh)})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, c caller) {
	id, ok := pathID(r, "id")
	if !ok {
		writeError(w, r, http.StatusNotFound, webhookNotFound(r))
		return
	}
	if err := s.store.DeleteWebhook(r.Context(), c.accountID, id, s.now()); err != nil {
		s.storeError(w, r, err, webhookNotFound(r), "")
		return
	}
	if s.engine != nil {
		s.engine.WebhookDeleted(id)
	}
	writeJSON(w, http.StatusOK, envelope{Message: fmt.Sprintf("Webhook %d deleted successfully.", id)})
}
