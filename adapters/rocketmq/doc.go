// Package rocketmq carries commits between chatd nodes on Apache RocketMQ
// with github.com/apache/rocketmq-client-go/v2, as the seed tutorial does.
//
// Outbound, Publisher is RocketMQ's transactional producer: the half message
// carries the commit, ExecuteLocalTransaction runs the application's local
// transaction (the append to the event store) and CheckLocalTransaction its
// checkback. Commits that wait for the same queue share one half message
// (adapters/txbatch): a lane per queue sends a lone commit at once and, while
// that batch is in flight, gathers what comes for the next one, so a busy
// queue pays one prepare, one end and one store write for many commits.
// A batch's body is a JSON array of its commits, each with its own route,
// and its "nodes" property the union of their routes. Inbound, Subscriber runs a push consumer per delivery handler
// (each node delivers to its own sessions): in routed mode a CLUSTERING
// group of the node's own whose SQL92 selector takes the messages whose
// "nodes" property names the node (or "all"), in broadcast mode, the
// tutorial's design, a BROADCASTING consumer that takes everything; and a
// CLUSTERING consumer per group (once-per-cluster work, redelivered with
// ConsumeRetryLater up to a bounded reconsume count, then the dead-letter
// queue). Every client is given an explicit name-server resolver, because the
// client's default one calls an outside HTTP address first, and its own
// instance name derived from the node id, because clients that share one
// share a connection and shutting one down breaks the others.
//
// Commits of one conversation carry the conversation as their sharding key
// and go to one queue: a clustering group then sees a conversation on one
// consumer, mostly in order, which keeps projectors of different nodes from
// racing for one view. A broker that fails a send, or that the name servers
// route without a master, is left out for a while (brokerFailover): its
// conversations hash over the other brokers' queues meanwhile, and the
// retry of the failed send goes to one of them. A MasterWatch asks the name
// servers every second which brokers have a master: when one dies or comes
// back, sends and the broadcast consumers follow within about a second,
// where the client alone would take its 30 s route refresh and a 30 s pull
// timeout.
package rocketmq

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is what the adapter needs of the node's configuration.
type Config struct {
	// NameServers lists the name servers, as "host:port".
	NameServers []string
	// Topic carries every commit; tags tell messages from receipts.
	Topic string
	// NodeID makes this node's instance names, so they are stable across
	// restarts (a broadcast consumer's offsets are kept under its name).
	NodeID string
	// ProducerGroup is the one, stable group of every node's transactional
	// producer: the broker asks any live member of the group for checkback.
	// It is named after the topic, so clusters sharing brokers on topics of
	// their own never answer each other's checkbacks.
	ProducerGroup string
	// Retries is how often a failed send is tried again (1 + Retries tries).
	Retries int
	// SendTimeout bounds each try; the caller's context bounds them all.
	SendTimeout time.Duration
	// MaxReconsume bounds the redeliveries of a failed clustering batch
	// before the message goes to the dead-letter queue.
	MaxReconsume int
	// BatchSize is the most messages one pull brings a broadcast handler
	// (eight times as many for a clustering group); batches of a queue
	// that wait for its handler are merged into one call.
	BatchSize int
	// ClusterLinger is how long a clustering group's call waits for more of
	// its queue's batches. The projector writes each conversation once per
	// call, and a conversation's next commit is often a fraction of a
	// second away (its delivered mark), so waiting saves store writes at
	// the price of a list that is that much later. Zero calls at once.
	ClusterLinger time.Duration
	// BrokerQuarantine is how long sends leave out a broker after a send
	// to it failed; the first send after that probes it again.
	BrokerQuarantine time.Duration
	// MasterWatchInterval is how often the name servers are asked which
	// brokers have a master (MasterWatch); zero turns the watch off.
	MasterWatchInterval time.Duration
	// Delivery is how delivery and signals consume: routed (the default)
	// or broadcast. A routed node whose brokers cannot filter falls back
	// to broadcast at Start.
	Delivery DeliveryMode
	// Observe gives the recorder of a kind of consumer group (delivery,
	// projector, signals), asked once per consumer; nil records nothing.
	Observe func(kind string) ConsumeObserver
}

// ConsumeObserver hears how a consumer group fares: how long after its
// storing each message is taken, and how many messages of failed batches
// go back to the broker, to be consumed again or, past the reconsume
// bound, into the dead-letter queue.
type ConsumeObserver interface {
	Consumed(lag time.Duration)
	Redelivered(messages int)
	DeadLettered(messages int)
}

// observer is the recorder of the group kind, or one that records nothing.
func (c Config) observer(kind string) ConsumeObserver {
	if c.Observe == nil {
		return unobserved{}
	}
	return c.Observe(kind)
}

type unobserved struct{}

func (unobserved) Consumed(time.Duration) {}
func (unobserved) Redelivered(int)        {}
func (unobserved) DeadLettered(int)       {}

// DefaultConfig holds the seed's defaults: 3 retries, 3 reconsumes.
func DefaultConfig() Config {
	return Config{
		Topic: "chat_events", ProducerGroup: "chat_events_tx",
		Retries: 3, SendTimeout: 3 * time.Second, MaxReconsume: 3, BatchSize: 32,
		ClusterLinger:    200 * time.Millisecond,
		BrokerQuarantine: 5 * time.Second, MasterWatchInterval: time.Second,
		Delivery: DeliveryRouted,
	}
}

// ParseNameServers splits the `;`-separated list RocketMQ clients take.
func ParseNameServers(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ";") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no name server given")
	}
	return out, nil
}

func (c Config) validate() error {
	switch {
	case len(c.NameServers) == 0:
		return errors.New("rocketmq: at least one name server is required")
	case c.Topic == "" || c.NodeID == "" || c.ProducerGroup == "":
		return errors.New("rocketmq: topic, node id and producer group are required")
	case strings.ContainsAny(c.NodeID, ",'"):
		// Routes list node ids between commas, and selectors quote them.
		return errors.New("rocketmq: a node id must not contain a comma or a quote")
	case c.SendTimeout <= 0 || c.BatchSize <= 0 || c.Retries < 0 || c.MaxReconsume < 0 || c.ClusterLinger < 0 ||
		c.BrokerQuarantine < 0 || c.MasterWatchInterval < 0:
		return errors.New("rocketmq: send timeout and batch size must be positive; retries, reconsumes, cluster linger, broker quarantine and master watch interval not negative")
	}
	if _, err := ParseDeliveryMode(string(c.Delivery)); err != nil {
		return fmt.Errorf("rocketmq: delivery mode: %w", err)
	}
	return nil
}
