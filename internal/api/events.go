package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/store"
)

// MaxBatch is the most events one batch may publish.
const MaxBatch = 1000

const maxIdempotencyKeyLen = 255

var eventFields = []string{"accountId", "event", "data", "idempotencyKey"}

// PublishedEvent is the data of an accepted event.
type PublishedEvent struct {
	ID         string `json:"id"`
	Event      string `json:"event"`
	Deliveries int    `json:"deliveries"`
}

// newEvent checks one event object and returns it ready to store. Errors name the field with
// prefix before it ("events[3]." in a batch).
func (s *Server) newEvent(o object, prefix string) (store.NewEvent, error) {
	for _, name := range eventFields[:3] {
		if !o.has(name) {
			return store.NewEvent{}, fmt.Errorf("%s%s is required", prefix, name)
		}
	}
	accountID, err := o.integer("accountId", 1, 1<<62)
	if err != nil {
		return store.NewEvent{}, fmt.Errorf("%saccountId must be a positive integer", prefix)
	}
	typ, ok := o.oneOf("event", event.Types)
	if !ok {
		return store.NewEvent{}, fmt.Errorf("%sevent must be one of %s", prefix, eventList)
	}
	var key string
	if o.has("idempotencyKey") && !o.isNull("idempotencyKey") {
		key, err = o.str("idempotencyKey")
		if n := utf8.RuneCountInString(key); err != nil || n < 1 || n > maxIdempotencyKeyLen {
			return store.NewEvent{}, fmt.Errorf("%sidempotencyKey must be a string of 1 to %d characters", prefix, maxIdempotencyKeyLen)
		}
	}
	body, err := event.Normalize(typ, o.value("data"))
	if err != nil {
		return store.NewEvent{}, errors.New(prefix + err.Error())
	}
	id, err := uuid.NewV7()
	if err != nil {
		return store.NewEvent{}, fmt.Errorf("event id: %w", err)
	}
	return store.NewEvent{ID: id.String(), AccountID: accountID, Type: typ, Body: body, IdempotencyKey: key, CreatedAt: s.now()}, nil
}

// publish stores the events. When the delivery engine has room, their deliveries are leased to
// it and handed over directly: no claim, no read back of the bodies.
func (s *Server) publish(r *http.Request, events []store.NewEvent) ([]store.Published, error) {
	p := store.PublishParams{Events: events, IdempotencySince: s.now().Add(-s.cfg.IdempotencyWindow)}
	if s.engine != nil {
		if owner, until, ok := s.engine.Lease(); ok {
			p.Owner, p.LeaseUntil = owner, until
		}
	}
	res, err := s.store.Publish(r.Context(), p)
	if err != nil {
		return nil, err
	}
	var jobs []store.Job
	for _, pub := range res {
		if pub.Err == nil && !pub.Duplicate && s.cfg.Metrics != nil {
			s.cfg.Metrics.EventsPublished.WithLabelValues(pub.Type).Inc()
		}
		jobs = append(jobs, pub.Jobs...)
	}
	if s.engine != nil {
		if len(jobs) > 0 {
			bodies := make(map[string][]byte, len(events))
			for _, e := range events {
				bodies[e.ID] = e.Body
			}
			s.engine.Adopt(context.WithoutCancel(r.Context()), jobs, bodies)
		}
		if p.Owner == "" {
			// Not leased to the engine: it claims them from the store.
			s.engine.Notify()
		}
	}
	return res, nil
}

func accountMissing(prefix string, id int64) string {
	return fmt.Sprintf("%saccountId %d does not match any account", prefix, id)
}

func (s *Server) createEvent(w http.ResponseWriter, r *http.Request, _ caller) {
	o, ok := readObject(w, r, eventFields...)
	if !ok {
		return
	}
	e, err := s.newEvent(o, "")
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.publish(r, []store.NewEvent{e})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p := res[0]
	switch {
	case p.Err != nil:
		s.storeError(w, r, p.Err, accountMissing("", e.AccountID), "")
	case p.Duplicate:
		writeJSON(w, http.StatusOK, envelope{Message: "Event already accepted.", Data: PublishedEvent{p.EventID, p.Type, p.Deliveries}})
	default:
		writeJSON(w, http.StatusAccepted, envelope{Message: "Event accepted.", Data: PublishedEvent{p.EventID, p.Type, p.Deliveries}})
	}
}

// BatchResult is one event's result in a batch, in the order sent: Status is 202 (accepted),
// 200 (a duplicate of an earlier event by idempotency key) or the error status, with Message.
type BatchResult struct {
	Status     int    `json:"status"`
	ID         string `json:"id,omitempty"`
	Event      string `json:"event,omitempty"`
	Deliveries *int   `json:"deliveries,omitempty"`
	Message    string `json:"message,omitempty"`
}

// Batch is the data of a batch answer.
type Batch struct {
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	Rejected   int           `json:"rejected"`
	Results    []BatchResult `json:"results"`
}

// batch is a batch request decoded: the events to store, and a result for each item sent,
// set so far for the items rejected.
type batch struct {
	events  []store.NewEvent
	index   []int // events[k] is item index[k]
	results []BatchResult
}

var batchFields = []string{"events"}

// decodeBatch reads a batch request body. Its error is about the whole body: then nothing is
// published.
func (s *Server) decodeBatch(body []byte) (batch, error) {
	o, err := parseObject(body, batchFields)
	if err != nil {
		return batch{}, err
	}
	raw := o.value("events")
	if raw == nil {
		return batch{}, errors.New("events is required")
	}
	if raw[0] != '[' {
		return batch{}, errors.New("events must be an array of event objects")
	}
	items := elements(nil, raw)
	if len(items) == 0 || len(items) > MaxBatch {
		return batch{}, fmt.Errorf("events must hold 1 to %d events, got %d", MaxBatch, len(items))
	}
	b := batch{
		events:  make([]store.NewEvent, 0, len(items)),
		index:   make([]int, 0, len(items)),
		results: make([]BatchResult, len(items)),
	}
	eo := newObject(eventFields) // newEvent keeps none of it, so one serves every item
	for i, item := range items {
		if err := eo.parse(item); err != nil {
			b.results[i] = BatchResult{Status: http.StatusBadRequest, Message: "events[" + strconv.Itoa(i) + "]: " + err.Error()}
			continue
		}
		e, err := s.newEvent(eo, "events["+strconv.Itoa(i)+"].")
		if err != nil {
			b.results[i] = BatchResult{Status: http.StatusBadRequest, Message: err.Error()}
			continue
		}
		b.events = append(b.events, e)
		b.index = append(b.index, i)
	}
	return b, nil
}

func (s *Server) createEvents(w http.ResponseWriter, r *http.Request, _ caller) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := s.decodeBatch(body)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	events, index, results := req.events, req.index, req.results
	if len(events) > 0 {
		res, err := s.publish(r, events)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		for k, p := range res {
			i := index[k]
			switch {
			case p.Err != nil && isNotFound(p.Err):
				results[i] = BatchResult{Status: http.StatusNotFound, Message: accountMissing("events["+strconv.Itoa(i)+"].", events[k].AccountID)}
			case p.Err != nil:
				s.internalError(w, r, p.Err)
				return
			case p.Duplicate:
				results[i] = BatchResult{Status: http.StatusOK, ID: p.EventID, Event: p.Type, Deliveries: &p.Deliveries}
			default:
				results[i] = BatchResult{Status: http.StatusAccepted, ID: p.EventID, Event: p.Type, Deliveries: &p.Deliveries}
			}
		}
	}
	b := Batch{Results: results}
	for _, res := range results {
		switch res.Status {
		case http.StatusAccepted:
			b.Accepted++
		case http.StatusOK:
			b.Duplicates++
		default:
			b.Rejected++
		}
	}
	msg := fmt.Sprintf("Events processed: %d accepted, %d duplicate, %d rejected.", b.Accepted, b.Duplicates, b.Rejected)
	writeBody(w, http.StatusAccepted, appendBatchAnswer(make([]byte, 0, 128+128*len(results)), msg, b))
}

// appendBatchAnswer appends what writeJSON writes for envelope{Message: msg, Data: b}. It is
// written by hand because encoding/json, through reflection, takes twice as long, and the
// answer to a batch of 100 events was 7% of the handler's time (less the store's).
func appendBatchAnswer(dst []byte, msg string, b Batch) []byte {
	dst = append(dst, '{')
	if msg != "" {
		dst = append(appendStringMember(dst, `"message":`, msg), ',')
	}
	dst = appendIntMember(dst, `"data":{"accepted":`, b.Accepted)
	dst = appendIntMember(dst, `,"duplicates":`, b.Duplicates)
	dst = appendIntMember(dst, `,"rejected":`, b.Rejected)
	dst = append(dst, `,"results":`...)
	if b.Results == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, r := range b.Results {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = r.append(dst)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}\n"...)
}

func (r BatchResult) append(dst []byte) []byte {
	dst = appendIntMember(dst, `{"status":`, r.Status)
	dst = appendStringMember(dst, `,"id":`, r.ID)
	dst = appendStringMember(dst, `,"event":`, r.Event)
	if r.Deliveries != nil {
		dst = appendIntMember(dst, `,"deliveries":`, *r.Deliveries)
	}
	dst = appendStringMember(dst, `,"message":`, r.Message)
	return append(dst, '}')
}
