package rocketmq

import (
	"context"
	"fmt"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/evchat/chatd/ports"
)

// republishGroup is the plain producer's group. No broker calls a plain
// producer back; the group carries the topic's name, as every group of the
// adapter does, so clusters on one broker stay apart.
func republishGroup(topic string) string { return topic + "_republish" }

// newRepublisher builds the plain producer that sends committed commits
// again. It keeps the client's round-robin selection instead of the
// conversation's queue: a commit is republished because its broker may be
// gone, and that selector sends each retry to another broker than the try
// that failed. Order does not suffer from it: a republished commit is one
// the conversation may have passed already, and delivery and the projector
// put commits in order.
func newRepublisher(cfg Config) (rocketmq.Producer, error) {
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(cfg.NameServers)),
		producer.WithRetry(cfg.Retries),
		producer.WithSendMsgTimeout(cfg.SendTimeout),
		producer.WithGroupName(republishGroup(cfg.Topic)),
		producer.WithInstanceName(cfg.NodeID+"_republish"))
	if err != nil {
		return nil, fmt.Errorf("rocketmq republish producer: %w", err)
	}
	return p, nil
}

// Republish implements ports.TransactionalPublisher with an ordinary
// message that carries the commit as its half message did, tag, key and
// route included, so that every consumer takes it as the committed message.
func (p *Publisher) Republish(ctx context.Context, c ports.Commit) error {
	nodes := nodesProperty(c.Route, p.cfg.NodeID)
	body, err := encodeCommit(c, nodes)
	if err != nil {
		return err
	}
	msg := primitive.NewMessage(p.cfg.Topic, body)
	msg.WithKeys([]string{c.ID})
	msg.WithTag(tagOf(c))
	msg.WithProperty(propNodes, nodes)
	if _, err := p.plain.SendSync(ctx, msg); err != nil {
		return fmt.Errorf("%w: rocketmq republish: %v", ports.ErrUnavailable, err)
	}
	return nil
}
