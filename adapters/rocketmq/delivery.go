package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/evchat/chatd/ports"
)

// DeliveryMode is how a node's delivery consumer, and its signals
// consumer, read the topic.
type DeliveryMode string

const (
	// DeliveryRouted gives each node its own CLUSTERING group whose SQL92
	// selector takes only what is routed to it (propNodes), so that a
	// node's work follows the users it holds instead of the whole cluster's.
	DeliveryRouted DeliveryMode = "routed"
	// DeliveryBroadcast is the tutorial's design: every node's
	// BROADCASTING consumer reads everything and acts for its own users.
	DeliveryBroadcast DeliveryMode = "broadcast"
)

// ParseDeliveryMode reads CHAT_DELIVERY_MODE's value.
func ParseDeliveryMode(s string) (DeliveryMode, error) {
	switch m := DeliveryMode(s); m {
	case DeliveryRouted, DeliveryBroadcast:
		return m, nil
	}
	return "", fmt.Errorf("%q is neither %s nor %s", s, DeliveryRouted, DeliveryBroadcast)
}

// propNodes is the message property a routed consumer selects on: "all",
// or the routed node ids between commas (",n1,n2,"; ",," for none), so
// that CONTAINS ',n1,' cannot match a node whose id merely contains n1.
// A message without it (a warm-up, a producer of an older release) goes
// to every node.
const propNodes = "nodes"

const allNodes = "all"

// nodesProperty is propNodes's value for r. also, when not empty, is added
// to a limited route: the publishing node's republisher waits for each of
// its commits to come back on its own consumer, and would send again every
// commit routed only elsewhere.
func nodesProperty(r ports.Route, also string) string {
	if !r.Limited {
		return allNodes
	}
	nodes := r.Nodes
	if also != "" && !r.Reaches(also) {
		nodes = append(nodes[:len(nodes):len(nodes)], also)
	}
	if len(nodes) == 0 {
		return ",,"
	}
	return "," + strings.Join(nodes, ",") + ","
}

// routedExpression is the SQL92 selector of node's routed consumer for
// tags. LIKE would be the obvious operator, but on 5.3.3 it silently
// matches nothing; CONTAINS works.
func routedExpression(tags []string, node string) string {
	return fmt.Sprintf("TAGS IN ('%s') AND (%s IS NULL OR %s = '%s' OR %s CONTAINS ',%s,')",
		strings.Join(tags, "', '"), propNodes, propNodes, allNodes, propNodes, node)
}

// routedGroup is node's own consumer group: members of one group share one
// subscription, so each would overwrite the others' selector.
func routedGroup(group, node string) string { return group + "_" + node }

// errFilterRefused is a broker's refusal of SQL92 selectors.
var errFilterRefused = errors.New("the broker refuses SQL92 selectors")

// resolveDelivery is the mode a node configured with cfg delivers in: a
// routed node whose brokers refuse SQL92 selectors (enablePropertyFilter
// is off) falls back to broadcast with a warning, rather than start a
// consumer that would never receive a message. The client cannot tell: it
// skips the check the Java client makes at start (CheckClientInBroker is
// empty), and its pulls then fail one after another with "The broker does
// not support consumer to filter message by SQL92", which it only logs.
// So the adapter asks each broker itself, as the Java client does.
func resolveDelivery(ctx context.Context, cfg Config, log *slog.Logger, consumers, group, expression string) (DeliveryMode, error) {
	mode := cfg.Delivery
	if mode == DeliveryRouted {
		err := checkSQLFilter(ctx, cfg.NameServers, cfg.Topic, group, expression)
		switch {
		case errors.Is(err, errFilterRefused):
			log.Warn("routed delivery needs enablePropertyFilter=true on every broker; delivering in broadcast mode",
				"consumers", consumers, "broker_setting", "enablePropertyFilter=true", "err", err)
			mode = DeliveryBroadcast
		case err != nil:
			return "", fmt.Errorf("rocketmq %s: asking the brokers whether they filter: %w", consumers, err)
		}
	}
	log.Info("delivery mode", "consumers", consumers, "mode", mode)
	return mode, nil
}

// nodesReach tells whether a commit whose propNodes value is nodes goes to
// node; no value, as a release without batches wrote, reaches every node.
func nodesReach(nodes, node string) bool {
	return nodes == "" || nodes == allNodes || strings.Contains(nodes, ","+node+",")
}
