package infra

import (
	"context"
	"time"

	"github.com/evchat/chatd/adapters/rocketmq"
)

// QueryRoute asks one name server for a topic's route, which tells the
// broker addresses the Go client keeps to itself: whether a slave, or a
// restarted master, is routed.
func QueryRoute(namesrv, topic string) (rocketmq.TopicRoute, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return rocketmq.QueryRoute(ctx, namesrv, topic)
}
