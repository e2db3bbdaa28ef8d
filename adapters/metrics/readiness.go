package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Dependency is what a node cannot serve without, as /readyz checks it.
type Dependency struct {
	Name string
	Ping func(context.Context) error
}

// readiness pings each dependency when scraped: a node that stopped being
// ready shows at the next scrape, whether or not a load balancer polls
// /readyz, and an idle node costs nothing between scrapes.
type readiness struct {
	desc    *prometheus.Desc
	timeout time.Duration
	deps    []Dependency
}

// RegisterReadiness registers chat_ready{check}: 1 when the dependency
// answered its ping within timeout at the scrape, else 0.
func RegisterReadiness(reg prometheus.Registerer, timeout time.Duration, deps ...Dependency) error {
	return reg.Register(&readiness{
		desc: prometheus.NewDesc("chat_ready",
			"Whether the dependency answered a ping within the readiness timeout at this scrape (1) or not (0), by check.",
			[]string{"check"}, nil),
		timeout: timeout, deps: deps,
	})
}

func (r *readiness) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *readiness) Collect(ch chan<- prometheus.Metric) {
	for _, d := range r.deps {
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		up := 0.0
		if d.Ping(ctx) == nil {
			up = 1
		}
		cancel()
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, up, d.Name)
	}
}
