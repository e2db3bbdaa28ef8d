package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evchat/chatd/ports"
)

// Delivery counts the commits this node's delivery consumer receives and
// times their age; it is the application's DeliveryObserver. In broadcast
// mode every node receives every commit; routed, a node receives those of
// the users it holds, and the count is the figure that shows the
// difference. A commit's age runs from its building by the send (on
// whichever node) to its receipt here, so it spans the store, the bus and
// the consumer: the end-to-end latency short of the socket write, on the
// nodes' wall clocks. A nil *Delivery records nothing.
type Delivery struct {
	received prometheus.Counter
	age      prometheus.Histogram
}

// NewDelivery creates the instruments and registers them on reg.
func NewDelivery(reg prometheus.Registerer) (*Delivery, error) {
	d := &Delivery{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_delivery_commits_received_total",
			Help: "Commits this node's delivery consumer received, whatever the delivery mode.",
		}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chat_delivery_commit_age_seconds",
			Help:    "Time from a commit's building by its command to this node's delivery consumer receiving it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	if err := registerAll(reg, d.received, d.age); err != nil {
		return nil, err
	}
	return d, nil
}

// CommitsReceived counts a batch of commits received and observes each
// one's age.
func (d *Delivery) CommitsReceived(commits []ports.Commit) {
	if d == nil {
		return
	}
	d.received.Add(float64(len(commits)))
	now := time.Now()
	for _, c := range commits {
		d.age.Observe(now.Sub(c.CommittedAt).Seconds())
	}
}
