package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Consumers holds the bus consumers' instruments, labelled by the kind of
// consumer group (delivery, projector, signals): the kind, not the group's
// name, which carries the topic and, routed, the node id.
type Consumers struct {
	lag          *prometheus.HistogramVec
	redelivered  *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
}

// NewConsumers creates the instruments and registers them on reg.
func NewConsumers(reg prometheus.Registerer) (*Consumers, error) {
	c := &Consumers{
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_bus_consume_lag_seconds",
			Help:    "Time from the broker storing a message to this node's consumer taking it, by consumer group kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"group"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_bus_redeliveries_total",
			Help: "Messages of failed batches handed back to the broker to be consumed again, by consumer group kind.",
		}, []string{"group"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_bus_dead_letters_total",
			Help: "Messages of failed batches past the reconsume bound, which the broker moves to the dead-letter queue, by consumer group kind.",
		}, []string{"group"}),
	}
	if err := registerAll(reg, c.lag, c.redelivered, c.deadLettered); err != nil {
		return nil, err
	}
	return c, nil
}

// ConsumerGroup records for one consumer group kind, its series resolved
// once, so that a consumed message costs one histogram observation.
type ConsumerGroup struct {
	lag          prometheus.Observer
	redelivered  prometheus.Counter
	deadLettered prometheus.Counter
}

// Group returns the recorder of the group kind, its series created at zero.
// A nil *Consumers returns a nil *ConsumerGroup, which records nothing.
func (c *Consumers) Group(kind string) *ConsumerGroup {
	if c == nil {
		return nil
	}
	return &ConsumerGroup{
		lag:          c.lag.WithLabelValues(kind),
		redelivered:  c.redelivered.WithLabelValues(kind),
		deadLettered: c.deadLettered.WithLabelValues(kind),
	}
}

// Consumed records a message taken lag after the broker stored it.
func (g *ConsumerGroup) Consumed(lag time.Duration) {
	if g != nil {
		g.lag.Observe(lag.Seconds())
	}
}

// Redelivered counts n messages handed back to be consumed again.
func (g *ConsumerGroup) Redelivered(n int) {
	if g != nil {
		g.redelivered.Add(float64(n))
	}
}

// DeadLettered counts n messages given up into the dead-letter queue.
func (g *ConsumerGroup) DeadLettered(n int) {
	if g != nil {
		g.deadLettered.Add(float64(n))
	}
}
