// Package metrics serves moor's Prometheus metrics. The parts of moor keep
// plain counters (atomics, read by Stats methods) and know nothing of
// Prometheus; this package reads them when scraped, so a scrape costs the
// hot paths nothing, and the Prometheus client stays inside this package.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds moor's metrics.
type Registry struct {
	reg      *prometheus.Registry
	logger   *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a registry with the Go runtime's and the process's metrics
// and moor's HTTP API metrics.
func New(logger *slog.Logger) *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), logger: logger}
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moor_http_requests_total", Help: "HTTP API requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "moor_http_request_duration_seconds", Help: "HTTP API request latency by route and method (websockets: the whole session).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.requests, r.duration)
	return r
}

// Handler serves the metrics in Prometheus's text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{r.logger}, ErrorHandling: promhttp.ContinueOnError})
}

// Instrument counts and times the requests h serves for route (a path
// template, so that names in paths do not make a label each).
func (r *Registry) Instrument(route, method string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route, "method": method}
	return promhttp.InstrumentHandlerCounter(r.requests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(r.duration.MustCurryWith(labels), h))
}

// Counter registers a counter read from fn at each scrape.
func (r *Registry) Counter(name, help string, fn func() float64) {
	r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// Gauge registers a gauge read from fn at each scrape.
func (r *Registry) Gauge(name, help string, fn func() float64) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// CounterVec registers counters with one label, read from fn at each
// scrape (label value -> count).
func (r *Registry) CounterVec(name, help, label string, fn func() map[string]float64) {
	r.reg.MustRegister(&vecFunc{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.CounterValue,
		read: func(context.Context) (map[string]float64, error) { return fn(), nil }})
}

// GaugeVecFrom registers gauges with one label read by fn at each scrape,
// e.g. from the database; when fn fails, the scrape reports that error and
// still serves the other metrics.
func (r *Registry) GaugeVecFrom(name, help, label string, timeout time.Duration, fn func(ctx context.Context) (map[string]float64, error)) {
	r.reg.MustRegister(&vecFunc{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.GaugeValue,
		timeout: timeout, read: fn})
}

// vecFunc is a collector of one labelled family read by a function.
type vecFunc struct {
	desc    *prometheus.Desc
	kind    prometheus.ValueType
	timeout time.Duration
	read    func(ctx context.Context) (map[string]float64, error)
}

func (v *vecFunc) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *vecFunc) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	if v.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.timeout)
		defer cancel()
	}
	values, err := v.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(v.desc, err)
		return
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(v.desc, v.kind, values[k], k)
	}
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.l.Warn("metrics", "err", v) }
