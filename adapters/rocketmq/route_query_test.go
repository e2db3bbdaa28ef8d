package rocketmq

import (
	"bufio"
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
)

func TestRoutedMasters(t *testing.T) {
	const queuesAB = `"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8},` +
		`{"brokerName":"broker-b","perm":6,"readQueueNums":8,"topicSysFlag":0,"writeQueueNums":8}]`
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"two masters with slaves, as the name server writes it",
			`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"c"},` +
				`{"brokerAddrs":{0:"127.0.0.1:10931",1:"127.0.0.1:10941"},"brokerName":"broker-b","cluster":"c"}],"filterServerTable":{},` + queuesAB + `}`,
			[]string{"broker-a", "broker-b"}},
		{"a master gone, its slave left",
			`{"brokerDatas":[{"brokerAddrs":{1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"c"},` +
				`{"brokerAddrs":{0:"127.0.0.1:10931",1:"127.0.0.1:10941"},"brokerName":"broker-b","cluster":"c"}],` + queuesAB + `}`,
			[]string{"broker-b"}},
		{"standard JSON keys",
			`{"brokerDatas":[{"brokerAddrs":{"0":"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"},` +
				`{"brokerAddrs":{"1":"127.0.0.1:10941"},"brokerName":"broker-b","cluster":"c"}],` + queuesAB + `}`,
			[]string{"broker-a"}},
		{"read-only queues are not sent to",
			`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"},` +
				`{"brokerAddrs":{0:"127.0.0.1:10931"},"brokerName":"broker-b","cluster":"c"}],` +
				`"queueDatas":[{"brokerName":"broker-a","perm":4,"readQueueNums":8,"writeQueueNums":8},{"brokerName":"broker-b","perm":6,"readQueueNums":8,"writeQueueNums":8}]}`,
			[]string{"broker-b"}},
		{"a master without the topic's queues",
			`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"},` +
				`{"brokerAddrs":{0:"127.0.0.1:10931"},"brokerName":"broker-b","cluster":"c"}],` +
				`"queueDatas":[{"brokerName":"broker-b","perm":6,"readQueueNums":8,"writeQueueNums":8}]}`,
			[]string{"broker-b"}},
		{"no route (what a name server without the topic is taken to say)", `{}`, nil},
		{"no master at all",
			`{"brokerDatas":[{"brokerAddrs":{1:"127.0.0.1:10921"},"brokerName":"broker-a","cluster":"c"}],` + queuesAB + `}`,
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := routedMasters([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := routedMasters([]byte(`{"brokerDatas":[`)); err == nil {
		t.Fatal("a cut body read as a route")
	}
}

// fakeNameServer answers every GET_ROUTEINFO_BY_TOPIC on a loopback port
// with code and body, on as many questions per connection as it is asked,
// and counts the connections it accepted.
func fakeNameServer(t *testing.T, code int, body string) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer func() { _ = conn.Close() }()
				r := bufio.NewReader(conn)
				for {
					req, _, err := readFrame(r)
					if err != nil || req.Code != reqGetRouteInfoByTopic || req.ExtFields["topic"] == "" {
						return
					}
					if writeFrame(conn, remotingHeader{Code: code, Language: "JAVA", Opaque: req.Opaque, Flag: 1}, []byte(body)) != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

const (
	routeOfA = `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"}],` +
		`"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"writeQueueNums":8}]}`
	routeOfAB = `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"},` +
		`{"brokerAddrs":{0:"127.0.0.1:10931"},"brokerName":"broker-b","cluster":"c"}],` +
		`"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"writeQueueNums":8},` +
		`{"brokerName":"broker-b","perm":6,"readQueueNums":8,"writeQueueNums":8}]}`
	topicNotExist = 17
)

// TestRouteQuerierAsksEveryNameServer: a name server that is down, or that
// knows the topic on fewer brokers (it has just restarted), does not hide a
// broker another one routes with a master.
func TestRouteQuerierAsksEveryNameServer(t *testing.T) {
	restarted, _ := fakeNameServer(t, topicNotExist, "")
	partial, _ := fakeNameServer(t, resSuccess, routeOfA)
	full, _ := fakeNameServer(t, resSuccess, routeOfAB)

	q := newRouteQuerier([]string{deadAddr(t), restarted, partial, full}, "chat_events")
	defer q.close()
	got, err := q.routedMasters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"broker-a", "broker-b"}) {
		t.Fatalf("got %v", got)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestRouteQuerierReportsAnErrorWhenNoneAnswers(t *testing.T) {
	q := newRouteQuerier([]string{deadAddr(t), deadAddr(t)}, "chat_events")
	defer q.close()
	if _, err := q.routedMasters(context.Background()); err == nil {
		t.Fatal("no error with every name server down")
	}
}

// TestRouteQuerierTopicWithoutRoute: name servers that know no broker of
// the topic (its only broker died) answer, with no broker.
func TestRouteQuerierTopicWithoutRoute(t *testing.T) {
	a, _ := fakeNameServer(t, topicNotExist, "")
	b, _ := fakeNameServer(t, topicNotExist, "")
	q := newRouteQuerier([]string{a, b}, "chat_events")
	defer q.close()
	got, err := q.routedMasters(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no broker and no error", got, err)
	}
}

// TestRouteQuerierKeepsItsConnection: asked every second, the querier must
// not open a connection to each name server every second.
func TestRouteQuerierKeepsItsConnection(t *testing.T) {
	addr, accepted := fakeNameServer(t, resSuccess, routeOfAB)
	q := newRouteQuerier([]string{addr}, "chat_events")
	defer q.close()
	for range 3 {
		got, err := q.routedMasters(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{"broker-a", "broker-b"}) {
			t.Fatalf("got %v", got)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for 3 questions", n)
	}
}
