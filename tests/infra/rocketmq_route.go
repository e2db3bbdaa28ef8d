package infra

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// TopicRoute is what one name server answers for a topic: which broker
// addresses serve each group (id 0 the master, others slaves) and how many
// queues each group has. The Go client keeps the addresses to itself, and
// the tests need them to tell that a slave, or a restarted master, is routed.
type TopicRoute struct {
	QueueDatas []struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int    `json:"readQueueNums"`
		WriteQueueNums int    `json:"writeQueueNums"`
	} `json:"queueDatas"`
	BrokerDatas []struct {
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	} `json:"brokerDatas"`
}

// BrokerAddrs maps broker group to broker id to address.
func (t *TopicRoute) BrokerAddrs() map[string]map[int64]string {
	m := map[string]map[int64]string{}
	for _, b := range t.BrokerDatas {
		ids := map[int64]string{}
		for id, addr := range b.BrokerAddrs {
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				ids[n] = addr
			}
		}
		m[b.BrokerName] = ids
	}
	return m
}

// WriteQueues is the number of write queues a group has for the topic.
func (t *TopicRoute) WriteQueues(brokerName string) int {
	for _, q := range t.QueueDatas {
		if q.BrokerName == brokerName {
			return q.WriteQueueNums
		}
	}
	return 0
}

// Remoting request and response codes of RocketMQ's protocol.
const (
	codeGetRouteInfoByTopic = 105
	codeSuccess             = 0
	codeTopicNotExist       = 17
)

var routeOpaque atomic.Int32

// errTopicNotExist is a name server's answer for a topic no broker has.
var errTopicNotExist = errors.New("topic not exist")

// QueryRoute asks one name server for a topic's route, speaking RocketMQ's
// remoting protocol directly: a frame is a 4-byte length, a 4-byte header
// length (its high byte the serialisation, 0 for JSON), the JSON header and
// the body.
func QueryRoute(namesrv, topic string) (*TopicRoute, error) {
	conn, err := net.DialTimeout("tcp", namesrv, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	opaque := routeOpaque.Add(1)
	header, _ := json.Marshal(map[string]any{
		"code": codeGetRouteInfoByTopic, "language": "GO", "version": 0, "opaque": opaque,
		"flag": 0, "extFields": map[string]string{"topic": topic},
	})
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(header)))
	if _, err := conn.Write(append(frame, header...)); err != nil {
		return nil, err
	}
	var lengths [8]byte
	if _, err := io.ReadFull(conn, lengths[:]); err != nil {
		return nil, err
	}
	total := binary.BigEndian.Uint32(lengths[:4])
	headerLen := binary.BigEndian.Uint32(lengths[4:]) & 0xFFFFFF
	if total < 4+headerLen || total > 16<<20 {
		return nil, fmt.Errorf("bad remoting frame lengths %d/%d", total, headerLen)
	}
	rest := make([]byte, total-4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return nil, err
	}
	var resp struct {
		Code   int    `json:"code"`
		Remark string `json:"remark"`
	}
	if err := json.Unmarshal(rest[:headerLen], &resp); err != nil {
		return nil, fmt.Errorf("remoting header: %w", err)
	}
	switch resp.Code {
	case codeSuccess:
	case codeTopicNotExist:
		return nil, errTopicNotExist
	default:
		return nil, fmt.Errorf("name server answered %d: %s", resp.Code, resp.Remark)
	}
	var route TopicRoute
	if err := json.Unmarshal(quoteIntegerKeys(rest[headerLen:]), &route); err != nil {
		return nil, fmt.Errorf("route body: %w", err)
	}
	return &route, nil
}

// integerKey matches an object key written as a bare integer, as the broker's
// fastjson writes brokerAddrs ({0:"host:port"}); addresses inside strings
// never follow { or , directly.
var integerKey = regexp.MustCompile(`([{,])\s*(-?\d+)\s*:`)

func quoteIntegerKeys(body []byte) []byte {
	return integerKey.ReplaceAll(body, []byte(`$1"$2":`))
}
