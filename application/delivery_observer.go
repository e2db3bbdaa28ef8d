package application

// DeliveryObserver is told how many commits this node's delivery consumer
// receives, whatever the delivery mode: the figure that shows what a node
// pays for delivery, and what routing saves it.
type DeliveryObserver interface {
	CommitsReceived(n int)
}

func (noObserver) CommitsReceived(int) {}
