package metrics

import "github.com/prometheus/client_golang/prometheus"

// Delivery counts the commits this node's delivery consumer receives; it
// is the application's DeliveryObserver. In broadcast mode every node
// receives every commit; routed, a node receives those of the users it
// holds, and this is the figure that shows the difference. A nil
// *Delivery records nothing.
type Delivery struct {
	received prometheus.Counter
}

// NewDelivery creates the instrument and registers it on reg.
func NewDelivery(reg prometheus.Registerer) (*Delivery, error) {
	d := &Delivery{received: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chat_delivery_commits_received_total",
		Help: "Commits this node's delivery consumer received, whatever the delivery mode.",
	})}
	if err := reg.Register(d.received); err != nil {
		return nil, err
	}
	return d, nil
}

// CommitsReceived counts a batch of n commits received.
func (d *Delivery) CommitsReceived(n int) {
	if d != nil {
		d.received.Add(float64(n))
	}
}
