package application

import "github.com/evchat/chatd/ports"

// DeliveryObserver is told of the commits this node's delivery consumer
// receives, whatever the delivery mode: their number is what a node pays
// for delivery, and what routing saves it; their age since their building
// is the end-to-end latency of the cluster, short of the socket write.
type DeliveryObserver interface {
	CommitsReceived(commits []ports.Commit)
}

func (noObserver) CommitsReceived([]ports.Commit) {}
