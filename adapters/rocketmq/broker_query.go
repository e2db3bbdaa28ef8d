package rocketmq

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// The broker requests that the client does not make, or makes in a way
// that does not serve: the Java client's start-up check of a subscription,
// a consumer offset query that tells a new group from one at offset 0, and
// an offset update that waits for its answer (consumedOffsets).
const (
	reqQueryConsumerOffset  = 14
	reqUpdateConsumerOffset = 15
	reqGetMaxOffset         = 30
	reqCheckClientConfig    = 46
	resSystemError          = 1
	resQueryNotFound        = 22
	brokerQueryTimeout      = 3 * time.Second
)

// askBroker sends one request on a connection of its own.
func askBroker(ctx context.Context, addr string, code int, ext map[string]string, body []byte) (remotingHeader, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, brokerQueryTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return remotingHeader{}, nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	req := remotingHeader{Code: code, Language: "GO", Version: 317, Opaque: 1, ExtFields: ext}
	if err := writeFrame(conn, req, body); err != nil {
		return remotingHeader{}, nil, err
	}
	return readFrame(bufio.NewReader(conn))
}

// brokerQueues is one broker group of a topic's route: the address to ask
// (its master, or while it has none any slave) and its read queues.
type brokerQueues struct {
	name, addr string
	queues     int
}

// routedBrokers asks the name servers, one after another until one knows
// the topic, which broker groups hold it.
func routedBrokers(ctx context.Context, nameServers []string, topic string) ([]brokerQueues, error) {
	var errs []error
	for _, ns := range nameServers {
		route, err := QueryRoute(ctx, ns, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addrs := route.BrokerAddrs()
		var out []brokerQueues
		for _, q := range route.QueueDatas {
			ids := addrs[q.BrokerName]
			addr, ok := ids[0]
			for id := int64(1); !ok && id < 16; id++ {
				addr, ok = ids[id]
			}
			if ok {
				out = append(out, brokerQueues{name: q.BrokerName, addr: addr, queues: q.ReadQueueNums})
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		errs = append(errs, fmt.Errorf("%s: no broker routes topic %s", ns, topic))
	}
	return nil, errors.Join(errs...)
}

// checkSQLFilter asks every broker of topic whether it takes expression as
// group's SQL92 selector; errFilterRefused when one refuses it. A broker
// that does not answer (a dead master the route still names) is passed
// over, so that a node can start while one is down; one must answer.
func checkSQLFilter(ctx context.Context, nameServers []string, topic, group, expression string) error {
	brokers, err := routedBrokers(ctx, nameServers, topic)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{
		"clientId": group + "@check",
		"group":    group,
		"subscriptionData": map[string]any{
			"topic": topic, "subString": expression, "expressionType": "SQL92",
			"tagsSet": []string{}, "codeSet": []int{}, "subVersion": time.Now().UnixMilli(),
		},
	})
	if err != nil {
		return err
	}
	var unanswered []error
	for _, b := range brokers {
		res, _, err := askBroker(ctx, b.addr, reqCheckClientConfig, map[string]string{}, body)
		switch {
		case err != nil:
			unanswered = append(unanswered, fmt.Errorf("broker %s: %w", b.name, err))
		case res.Code == resSystemError:
			return fmt.Errorf("%w: broker %s: %s", errFilterRefused, b.name, res.Remark)
		case res.Code != resSuccess:
			return fmt.Errorf("broker %s: selector %q: code %d: %s", b.name, expression, res.Code, res.Remark)
		}
	}
	if len(unanswered) == len(brokers) {
		return errors.Join(unanswered...)
	}
	return nil
}

// newGroupFloors returns, for each queue of topic on which group has no
// offset yet, the queue's end now (key: queueKey). A consumer of a new
// group skips what lies below: with ConsumeFromLastOffset it should start
// at the end, but the broker answers the client's offset query (which
// never sets setZeroIfNotFound=false) with 0 instead of "not found" while
// the queue's first message is still in memory, and the new group would
// read the queue's whole history. A queue the brokers do not answer for
// gets no floor.
func newGroupFloors(ctx context.Context, nameServers []string, topic, group string) map[string]int64 {
	floors := map[string]int64{}
	brokers, err := routedBrokers(ctx, nameServers, topic)
	if err != nil {
		return floors
	}
	for _, b := range brokers {
		for q := range b.queues {
			ext := map[string]string{"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q),
				"bname": b.name, "setZeroIfNotFound": "false"}
			res, _, err := askBroker(ctx, b.addr, reqQueryConsumerOffset, ext, nil)
			if err != nil || res.Code != resQueryNotFound {
				continue
			}
			res, _, err = askBroker(ctx, b.addr, reqGetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(q), "bname": b.name}, nil)
			if err != nil || res.Code != resSuccess {
				continue
			}
			if end, err := strconv.ParseInt(res.ExtFields["offset"], 10, 64); err == nil {
				floors[queueKey(b.name, topic, q)] = end
			}
		}
	}
	return floors
}

// takeFloorsOnce stores group's floors (newGroupFloors) unless floors holds
// some already. They are the group's as this node first started it: a
// rebuild after a broker's restart may find no offset where the broker
// lost the last ones committed, and floors taken then would skip what was
// stored since the broker came back (TestClusterBrokerDown lost a receipt
// so); the old floor at worst delivers a copy again, which delivery drops.
func takeFloorsOnce(floors *atomic.Pointer[map[string]int64], cfg Config, group string) {
	if floors.Load() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	taken := newGroupFloors(ctx, cfg.NameServers, cfg.Topic, group)
	floors.Store(&taken)
}

// queueKey names a queue of a topic on a broker group.
func queueKey(broker, topic string, queue int) string {
	return broker + "/" + topic + "/" + strconv.Itoa(queue)
}
