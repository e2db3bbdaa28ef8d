package rocketmq

import (
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/ports"
)

func TestNodesProperty(t *testing.T) {
	tests := []struct {
		name  string
		route ports.Route
		also  string
		want  string
	}{
		{"every node", ports.RouteToAll(), "pub", "all"},
		{"listed nodes between commas", ports.RouteTo("n1", "n3"), "", ",n1,n3,"},
		{"no node", ports.RouteTo(), "", ",,"},
		{"the publishing node added", ports.RouteTo("n1"), "pub", ",n1,pub,"},
		{"the publishing node not twice", ports.RouteTo("pub", "n1"), "pub", ",pub,n1,"},
		{"no node but the publishing one", ports.RouteTo(), "pub", ",pub,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodesProperty(tt.route, tt.also); got != tt.want {
				t.Errorf("nodesProperty = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoutedExpression(t *testing.T) {
	got := routedExpression([]string{"message", "warmup"}, "node-1")
	want := "TAGS IN ('message', 'warmup') AND (nodes IS NULL OR nodes = 'all' OR nodes CONTAINS ',node-1,')"
	if got != want {
		t.Errorf("routedExpression =\n %s\nwant\n %s", got, want)
	}
}

func TestParseDeliveryMode(t *testing.T) {
	tests := []struct {
		in      string
		want    DeliveryMode
		wantErr bool
	}{
		{"routed", DeliveryRouted, false},
		{"broadcast", DeliveryBroadcast, false},
		{"", "", true},
		{"Routed", "", true},
	}
	for _, tt := range tests {
		got, err := ParseDeliveryMode(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseDeliveryMode(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestBelowFloor(t *testing.T) {
	floors := map[string]int64{queueKey("broker-a", "chat", 1): 10}
	at := func(queue int, offset int64) *primitive.MessageExt {
		m := &primitive.MessageExt{QueueOffset: offset}
		m.Queue = &primitive.MessageQueue{BrokerName: "broker-a", Topic: "chat", QueueId: queue}
		return m
	}
	tests := []struct {
		name   string
		floors *map[string]int64
		msg    *primitive.MessageExt
		want   bool
	}{
		{"history below the floor", &floors, at(1, 9), true},
		{"the floor itself", &floors, at(1, 10), false},
		{"a queue without a floor", &floors, at(2, 0), false},
		{"no floors (an old group)", nil, at(1, 0), false},
		{"no queue", &floors, &primitive.MessageExt{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := belowFloor(tt.floors, tt.msg); got != tt.want {
				t.Errorf("belowFloor = %v, want %v", got, tt.want)
			}
		})
	}
}
