// Package metrics defines hookrelay's Prometheus metrics. One Metrics value per server owns its
// own registry, so several servers in one process (tests, the bench) never share counters.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookrelay/hookrelay/internal/store"
)

// Metrics holds every collector hookrelay updates.
type Metrics struct {
	Registry *prometheus.Registry

	EventsPublished *prometheus.CounterVec // by event type
	Outcomes        *prometheus.CounterVec // by outcome: succeeded, retry, failed, ignored, cancelled
	Attempts        *prometheus.CounterVec // by status code ("none" for transport errors and timeouts)
	AttemptDuration prometheus.Histogram   // seconds, whole attempt
	InFlight        prometheus.Gauge       // attempts under way
	Held            prometheus.Gauge       // claimed deliveries held in memory (queued or in flight)
	AlertsSent      *prometheus.CounterVec // by kind and result
}

// New creates the collectors and registers them, with the Go and process collectors and a
// queue-depth collector that asks st at each scrape.
func New(st store.Store) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		EventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_events_published_total", Help: "Events accepted for publishing (duplicates by idempotency key excluded).",
		}, []string{"event"}),
		Outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_delivery_outcomes_total", Help: "What each finished attempt led to: succeeded, retry, failed, ignored; and deliveries cancelled.",
		}, []string{"outcome"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_delivery_attempts_total", Help: "Delivery attempts by response status code; \"none\" when no response came (transport error or timeout).",
		}, []string{"status_code"}),
		AttemptDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookrelay_delivery_attempt_duration_seconds",
			Help:    "Time from sending a delivery to having its response (or error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookrelay_delivery_attempts_in_flight", Help: "Delivery attempts under way on this node.",
		}),
		Held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookrelay_deliveries_held", Help: "Deliveries claimed by this node and not yet finished (queued or in flight).",
		}),
		AlertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_alert_emails_total", Help: "Alert emails by kind (failing, recovered, disabled) and result (sent, failed, logged).",
		}, []string{"kind", "result"}),
	}
	m.Registry.MustRegister(m.EventsPublished, m.Outcomes, m.Attempts, m.AttemptDuration, m.InFlight, m.Held, m.AlertsSent,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		queueCollector{st: st})
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

var queueDesc = prometheus.NewDesc("hookrelay_queue_depth",
	"Pending deliveries in the store: due (now, or claimed and in progress) and scheduled (waiting for a later retry).",
	[]string{"state"}, nil)

// queueCollector reads the queue depth from the store at each scrape.
type queueCollector struct{ st store.Store }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := c.st.QueueStats(ctx, time.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(q.Due), "due")
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(q.Scheduled), "scheduled")
}

// Attempted reports the delivery attempts counted so far, and how many of them got no
// response (transport error or timeout).
func (m *Metrics) Attempted() (all, noResponse int64) {
	ch := make(chan prometheus.Metric)
	go func() {
		m.Attempts.Collect(ch)
		close(ch)
	}()
	for c := range ch {
		var d dto.Metric
		if err := c.Write(&d); err != nil {
			continue // a counter's Write does not fail
		}
		n := int64(d.GetCounter().GetValue())
		all += n
		for _, l := range d.GetLabel() {
			if l.GetName() == "status_code" && l.GetValue() == "none" {
				noResponse += n
			}
		}
	}
	return all, noResponse
}
