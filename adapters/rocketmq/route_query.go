package rocketmq

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// The name server's remoting protocol, as far as one route query needs it:
// a frame is a 4-byte length, a 4-byte word whose high byte is the header's
// serialization (0, JSON) and whose low three bytes are the header's length,
// the header, and the body.
const (
	reqGetRouteInfoByTopic = 105
	resSuccess             = 0
	resTopicNotExist       = 17
	permWrite              = 1 << 1
	// maxRouteFrame bounds what a name server may send back: a route of a
	// few brokers is a few kilobytes.
	maxRouteFrame = 1 << 20
	// routeQueryTimeout bounds one name server's answer when the caller's
	// context does not.
	routeQueryTimeout = 2 * time.Second
)

type remotingHeader struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int               `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields,omitempty"`
}

// routeQuerier asks the name servers which brokers route a topic with a
// master, on one connection to each that it keeps between questions. One
// goroutine uses it at a time (the master watch's).
//
// The client offers no way to ask this afresh: its admin keeps the first
// route it fetched for good, and a fresh admin per question leaves a name
// server connection open for two minutes (its namesrv client is never
// closed).
type routeQuerier struct {
	nameServers []string
	topic       string
	conns       map[string]*bufferedConn
	opaque      int32
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newRouteQuerier(nameServers []string, topic string) *routeQuerier {
	return &routeQuerier{nameServers: nameServers, topic: topic, conns: map[string]*bufferedConn{}}
}

// routedMasters asks every name server which brokers route the topic with
// a master and writable queues: the brokers the client's producers may send
// to once their route is refreshed. A broker counts if any name server that
// answers routes it so: a master's death reaches every name server at once,
// when its connections close, while a name server that has just restarted
// knows only the brokers that have registered with it since.
func (q *routeQuerier) routedMasters(ctx context.Context) ([]string, error) {
	var (
		errs     []error
		answered bool
		brokers  []string
	)
	for _, addr := range q.nameServers {
		body, err := q.route(ctx, addr)
		var routed []string
		if err == nil {
			routed, err = routedMasters(body)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		answered = true
		for _, b := range routed {
			if !slices.Contains(brokers, b) {
				brokers = append(brokers, b)
			}
		}
	}
	if !answered {
		return nil, errors.Join(errs...)
	}
	slices.Sort(brokers)
	return brokers, nil
}

// route returns the body of a name server's GET_ROUTEINFO_BY_TOPIC answer.
// A connection that failed is closed, and the next question dials again.
func (q *routeQuerier) route(ctx context.Context, addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, routeQueryTimeout)
	defer cancel()
	c, ok := q.conns[addr]
	if !ok {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		c = &bufferedConn{Conn: conn, r: bufio.NewReader(conn)}
		q.conns[addr] = c
	}
	res, body, err := q.ask(ctx, c)
	if err != nil {
		_ = c.Close()
		delete(q.conns, addr)
		return nil, err
	}
	switch res.Code {
	case resSuccess:
		return body, nil
	case resTopicNotExist:
		// No broker that has the topic is registered with this name server:
		// its only broker died, or the name server has just restarted.
		return []byte(`{}`), nil
	}
	return nil, fmt.Errorf("route of %s: code %d: %s", q.topic, res.Code, res.Remark)
}

func (q *routeQuerier) ask(ctx context.Context, c *bufferedConn) (remotingHeader, []byte, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
	}
	q.opaque++
	req := remotingHeader{Code: reqGetRouteInfoByTopic, Language: "GO", Version: 317, Opaque: q.opaque, ExtFields: map[string]string{"topic": q.topic}}
	if err := writeFrame(c, req, nil); err != nil {
		return remotingHeader{}, nil, err
	}
	res, body, err := readFrame(c.r)
	if err == nil && res.Opaque != req.Opaque {
		err = fmt.Errorf("answer %d to question %d", res.Opaque, req.Opaque)
	}
	return res, body, err
}

// close closes the kept connections.
func (q *routeQuerier) close() {
	for addr, c := range q.conns {
		_ = c.Close()
		delete(q.conns, addr)
	}
}

func writeFrame(w io.Writer, h remotingHeader, body []byte) error {
	header, err := json.Marshal(h)
	if err != nil {
		return err
	}
	frame := make([]byte, 8, 8+len(header)+len(body))
	binary.BigEndian.PutUint32(frame[0:4], uint32(4+len(header)+len(body)))
	binary.BigEndian.PutUint32(frame[4:8], uint32(len(header))&0xFFFFFF)
	frame = append(append(frame, header...), body...)
	_, err = w.Write(frame)
	return err
}

func readFrame(r io.Reader) (remotingHeader, []byte, error) {
	var h remotingHeader
	var prefix [8]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return h, nil, err
	}
	length := binary.BigEndian.Uint32(prefix[0:4])
	word := binary.BigEndian.Uint32(prefix[4:8])
	headerLen := word & 0xFFFFFF
	if length > maxRouteFrame || headerLen+4 > length {
		return h, nil, fmt.Errorf("remoting frame of %d bytes with a %d-byte header", length, headerLen)
	}
	if word>>24 != 0 {
		return h, nil, fmt.Errorf("remoting header in serialization %d, not JSON", word>>24)
	}
	rest := make([]byte, length-4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, nil, err
	}
	if err := json.Unmarshal(rest[:headerLen], &h); err != nil {
		return h, nil, fmt.Errorf("remoting header: %w", err)
	}
	return h, rest[headerLen:], nil
}

// brokerAddrs finds the broker id -> address maps of a route, which the name
// server writes with bare numbers as keys (fastjson), not JSON strings.
var (
	brokerAddrs = regexp.MustCompile(`"brokerAddrs"\s*:\s*\{[^}]*\}`)
	bareKey     = regexp.MustCompile(`([{,]\s*)(-?\d+)(\s*:)`)
)

// TopicRoute is a name server's route of a topic: the addresses of each
// broker group by broker id (0 the master, others slaves) and the group's
// queues. The client keeps these to itself.
type TopicRoute struct {
	BrokerDatas []struct {
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	} `json:"brokerDatas"`
	QueueDatas []struct {
		BrokerName     string `json:"brokerName"`
		ReadQueueNums  int    `json:"readQueueNums"`
		WriteQueueNums int    `json:"writeQueueNums"`
		Perm           int    `json:"perm"`
	} `json:"queueDatas"`
}

// BrokerAddrs maps broker group to broker id to address.
func (t TopicRoute) BrokerAddrs() map[string]map[int64]string {
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
func (t TopicRoute) WriteQueues(brokerName string) int {
	for _, q := range t.QueueDatas {
		if q.BrokerName == brokerName {
			return q.WriteQueueNums
		}
	}
	return 0
}

// QueryRoute asks one name server for topic's route, on a connection of its
// own. A topic no broker registered with it has the empty route. The test
// infrastructure uses it to tell that a slave, or a restarted master, is
// routed.
func QueryRoute(ctx context.Context, nameServer, topic string) (TopicRoute, error) {
	q := newRouteQuerier([]string{nameServer}, topic)
	defer q.close()
	body, err := q.route(ctx, nameServer)
	if err != nil {
		return TopicRoute{}, err
	}
	return parseRoute(body)
}

// parseRoute reads a route body, whose brokerAddrs keys are bare numbers.
func parseRoute(body []byte) (TopicRoute, error) {
	fixed := brokerAddrs.ReplaceAllFunc(body, func(m []byte) []byte {
		return bareKey.ReplaceAll(m, []byte(`$1"$2"$3`))
	})
	var route TopicRoute
	if err := json.Unmarshal(fixed, &route); err != nil {
		return TopicRoute{}, fmt.Errorf("route body: %w", err)
	}
	return route, nil
}

// routedMasters reads a route body: the brokers with a master (broker id 0)
// and writable queues, sorted.
func routedMasters(body []byte) ([]string, error) {
	route, err := parseRoute(body)
	if err != nil {
		return nil, err
	}
	withMaster := map[string]bool{}
	for _, b := range route.BrokerDatas {
		if b.BrokerAddrs["0"] != "" {
			withMaster[b.BrokerName] = true
		}
	}
	var out []string
	for _, q := range route.QueueDatas {
		if q.Perm&permWrite != 0 && q.WriteQueueNums > 0 && withMaster[q.BrokerName] && !slices.Contains(out, q.BrokerName) {
			out = append(out, q.BrokerName)
		}
	}
	slices.Sort(out)
	return out, nil
}
