package rest

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/equitas/equitas/fhir/resourcetype"
	"github.com/equitas/equitas/store"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	panics   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st store.Store) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "equitas_http_requests_total",
			Help: "HTTP requests by FHIR interaction, resource type and status code.",
		}, []string{"interaction", "type", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "equitas_http_request_duration_seconds",
			Help:    "HTTP request latency by FHIR interaction and resource type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"interaction", "type"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "equitas_http_panics_total",
			Help: "Requests that ended in the recover middleware (a bug).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.panics, &countsCollector{st: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(interaction, rtype string, status int, d time.Duration) {
	// Only real type names become label values: the label set stays
	// bounded whatever clients put in URLs.
	if !resourcetype.Valid(rtype) {
		rtype = ""
	}
	m.requests.WithLabelValues(interaction, rtype, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(interaction, rtype).Observe(d.Seconds())
}

// countsCollector reports store.Counts at scrape time.
type countsCollector struct{ st store.Store }

var countsDesc = prometheus.NewDesc("equitas_store_resources",
	"Current (non-deleted) resources in the store by type.", []string{"type"}, nil)

var countsErrDesc = prometheus.NewDesc("equitas_store_counts_error",
	"1 when the last scrape could not read the store counts.", nil, nil)

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- countsDesc
	ch <- countsErrDesc
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.st.Counts(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(countsErrDesc, prometheus.GaugeValue, failed)
	for typ, n := range counts {
		ch <- prometheus.MustNewConstMetric(countsDesc, prometheus.GaugeValue, float64(n), typ)
	}
}
