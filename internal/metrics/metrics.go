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
	InFlightLimit   prometheus.Gauge       // the engine's limit on attempts in flight, as it follows the CPU
	CPUBusy         prometheus.Gauge       // 1 while the engine counts its process's CPU as busy
	AlertsSent      *prometheus.CounterVec // by kind and result

	writer writerStore // nil unless the store commits through one writer
}

// writerStore is a store that commits every write through one writer (the embedded store).
type writerStore interface {
	WriterStats() store.WriterStats
}

// New creates the collectors and registers them, with the Go and process collectors, a
// queue-depth collector that asks st at each scrape, and, when st commits through one writer,
// that writer's figures.
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
		InFlightLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookrelay_delivery_attempts_in_flight_limit", Help: "How many delivery attempts this node lets run at once in all, as it follows its CPU.",
		}),
		CPUBusy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookrelay_delivery_cpu_busy", Help: "1 while the delivery engine counts this process's CPU as busy (at least 85% of GOMAXPROCS), which lowers the limits on attempts in flight of webhooks that wait for it.",
		}),
		AlertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookrelay_alert_emails_total", Help: "Alert emails by kind (failing, recovered, disabled) and result (sent, failed, logged).",
		}, []string{"kind", "result"}),
	}
	m.Registry.MustRegister(m.EventsPublished, m.Outcomes, m.Attempts, m.AttemptDuration, m.InFlight, m.Held, m.InFlightLimit, m.CPUBusy, m.AlertsSent,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		queueCollector{st: st})
	if w, ok := st.(writerStore); ok {
		m.writer = w
		m.Registry.MustRegister(writerCollector{w})
	}
	return m
}

// Writer reports the store's writer figures, if the store commits through one writer.
func (m *Metrics) Writer() (store.WriterStats, bool) {
	if m.writer == nil {
		return store.WriterStats{}, false
	}
	return m.writer.WriterStats(), true
}

var (
	writerBusyDesc = prometheus.NewDesc("hookrelay_store_writer_busy_seconds_total",
		"Time the embedded store's single writer spent on writes, committing included. Its rate near 1 means writes queue for the writer.", nil, nil)
	writerCommittingDesc = prometheus.NewDesc("hookrelay_store_writer_commit_seconds_total",
		"Part of the writer's busy time spent committing: writing the WAL and syncing it to disk.", nil, nil)
	writerCommitsDesc = prometheus.NewDesc("hookrelay_store_writer_commits_total",
		"Transactions the embedded store's writer committed; each holds every write that was waiting.", nil, nil)
	writerWritesDesc = prometheus.NewDesc("hookrelay_store_writer_writes_total",
		"Writes (publishes, claims, outcomes, API changes) the embedded store's writer committed.", nil, nil)
	writerCommitDurationDesc = prometheus.NewDesc("hookrelay_store_writer_commit_duration_seconds",
		"Time each commit of the embedded store's writer took (writing the WAL and syncing it to disk); every write waiting behind a slow one waits as long.", nil, nil)
)

// writerCollector reads the embedded store's writer figures at each scrape.
type writerCollector struct{ w writerStore }

func (c writerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- writerBusyDesc
	ch <- writerCommittingDesc
	ch <- writerCommitsDesc
	ch <- writerWritesDesc
	ch <- writerCommitDurationDesc
}

func (c writerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.w.WriterStats()
	ch <- prometheus.MustNewConstMetric(writerBusyDesc, prometheus.CounterValue, s.Busy.Seconds())
	ch <- prometheus.MustNewConstMetric(writerCommittingDesc, prometheus.CounterValue, s.Committing.Seconds())
	ch <- prometheus.MustNewConstMetric(writerCommitsDesc, prometheus.CounterValue, float64(s.Commits))
	ch <- prometheus.MustNewConstMetric(writerWritesDesc, prometheus.CounterValue, float64(s.Writes))
	buckets := make(map[float64]uint64, len(store.CommitBounds))
	var n uint64
	for i, bound := range store.CommitBounds {
		n += uint64(s.CommitsBy[i])
		buckets[bound.Seconds()] = n
	}
	n += uint64(s.CommitsBy[len(store.CommitBounds)])
	ch <- prometheus.MustNewConstHistogram(writerCommitDurationDesc, n, s.Committing.Seconds(), buckets)
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

// Deferred reports the deliveries given back to the store so far to wait for a throughput
// window or a slow webhook, with no attempt made.
func (m *Metrics) Deferred() int64 {
	var d dto.Metric
	if err := m.Outcomes.WithLabelValues("deferred").Write(&d); err != nil {
		return 0 // a counter's Write does not fail
	}
	return int64(d.GetCounter().GetValue())
}

// Engine reports the delivery engine's attempts in flight and the deliveries it holds in
// memory (queued or in flight), as its gauges last said.
func (m *Metrics) Engine() (inFlight, held int) {
	value := func(g prometheus.Gauge) int {
		var d dto.Metric
		if err := g.Write(&d); err != nil {
			return 0 // a gauge's Write does not fail
		}
		return int(d.GetGauge().GetValue())
	}
	return value(m.InFlight), value(m.Held)
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
