package rocketmq

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// EnsureTopic sends a probe until one goes through and the name servers
// route the topic. The probe makes a broker with autoCreateTopicEnable
// create the topic, and makes this producer known to the broker, which can
// ask it for checkback only from then on. A push consumer cannot start on a
// topic without a route, so this runs between the producer's start and the
// consumers'. Where brokers do not create topics, the operator creates it
// once with mqadmin updateTopic.
func (p *Publisher) EnsureTopic(ctx context.Context) error {
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver(p.cfg.NameServers)))
	if err != nil {
		return fmt.Errorf("rocketmq admin: %w", err)
	}
	defer func() { _ = adm.Close() }()
	var lastErr error
	for {
		lastErr = p.Ping(ctx)
		if lastErr == nil {
			queues, err := adm.FetchPublishMessageQueues(ctx, p.cfg.Topic)
			if err == nil && len(queues) > 0 {
				p.queues.Store(int32(len(queues)))
				return nil
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rocketmq topic %s has no route (create it with mqadmin updateTopic, or let brokers autoCreateTopicEnable): %v", p.cfg.Topic, lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
