package subscription

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what the Manager queues and delivers.
type metrics struct {
	queued     prometheus.Counter
	deliveries *prometheus.CounterVec // result: delivered, retried, dead
}

func newMetrics(reg prometheus.Registerer, pending func() int) (*metrics, error) {
	m := &metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "equitas_subscription_notifications_queued_total",
			Help: "Subscription notifications queued for delivery (one per event and Subscription).",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "equitas_subscription_deliveries_total",
			Help: "Subscription delivery attempts by result: delivered, retried (failed, will retry) or dead (dead-lettered).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "equitas_subscription_queue_depth",
		Help: "Subscription notifications waiting for delivery.",
	}, func() float64 { return float64(pending()) })
	for _, c := range []prometheus.Collector{m.queued, m.deliveries, depth} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("subscription: register metrics: %w", err)
		}
	}
	return m, nil
}
