package rocketmq

import (
	"bufio"
	"context"
	"net"
	"slices"
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
// with code and body, and records the topics asked for.
func fakeNameServer(t *testing.T, code int, body string) (addr string, topics <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	asked := make(chan string, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				req, _, err := readFrame(bufio.NewReader(conn))
				if err != nil || req.Code != reqGetRouteInfoByTopic {
					return
				}
				asked <- req.ExtFields["topic"]
				_ = writeFrame(conn, remotingHeader{Code: code, Language: "JAVA", Opaque: req.Opaque, Flag: 1}, []byte(body))
			}()
		}
	}()
	return ln.Addr().String(), asked
}

// TestQueryRoutedMastersAsksEveryNameServer: a name server that is down,
// or that knows the topic on fewer brokers (it has just restarted), does
// not hide a broker another one routes with a master.
func TestQueryRoutedMastersAsksEveryNameServer(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	const topicNotExist = 17
	restarted, _ := fakeNameServer(t, topicNotExist, "")
	partial, topics := fakeNameServer(t, resSuccess,
		`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"}],`+
			`"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"writeQueueNums":8}]}`)
	full, _ := fakeNameServer(t, resSuccess,
		`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911"},"brokerName":"broker-a","cluster":"c"},`+
			`{"brokerAddrs":{0:"127.0.0.1:10931"},"brokerName":"broker-b","cluster":"c"}],`+
			`"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":8,"writeQueueNums":8},`+
			`{"brokerName":"broker-b","perm":6,"readQueueNums":8,"writeQueueNums":8}]}`)

	got, err := queryRoutedMasters(context.Background(), []string{deadAddr, restarted, partial, full}, "chat_events")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"broker-a", "broker-b"}) {
		t.Fatalf("got %v", got)
	}
	if topic := <-topics; topic != "chat_events" {
		t.Fatalf("asked for %q", topic)
	}
}

func TestQueryRoutedMastersReportsAnErrorWhenNoneAnswers(t *testing.T) {
	const topicNotExist = 17
	a, _ := fakeNameServer(t, topicNotExist, "")
	b, _ := fakeNameServer(t, topicNotExist, "")
	if _, err := queryRoutedMasters(context.Background(), []string{a, b}, "nope"); err == nil {
		t.Fatal("no error for a topic without a route")
	}
}
