package mllp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections prometheus.Gauge
	messages    *prometheus.CounterVec
	latency     prometheus.Histogram
	frameErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "equitas_mllp_connections",
			Help: "Open MLLP connections.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "equitas_mllp_messages_total",
			Help: "HL7 v2 messages acknowledged over MLLP, by acknowledgement code (MSA-1).",
		}, []string{"ack"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "equitas_mllp_ack_seconds",
			Help:    "Time from a message's start block to its acknowledgement being written (includes the durable commit).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		frameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "equitas_mllp_frame_errors_total",
			Help: "MLLP framing problems by reason (garbage, too-large, truncated, timeout, restarted, idle, handler-panic).",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connections, m.messages, m.latency, m.frameErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(ack string, d time.Duration) {
	switch ack {
	case "AA", "AE", "AR", "CA", "CE", "CR":
	default:
		ack = "other" // the label set stays bounded whatever a Handler returns
	}
	m.messages.WithLabelValues(ack).Inc()
	m.latency.Observe(d.Seconds())
}
