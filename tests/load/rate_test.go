package load

import "testing"

func TestPlacement(t *testing.T) {
	tests := []struct {
		name          string
		cfg           RateConfig
		pairs         int
		wantSenders   []int // senders per node
		wantReceivers []int // recipients per node
	}{
		{name: "send and receive URLs: senders on the first, recipients on the second",
			cfg: RateConfig{SendURL: "a", RecvURL: "b"}, pairs: 10, wantSenders: []int{10, 0}, wantReceivers: []int{0, 10}},
		{name: "two nodes: half of each on each",
			cfg: RateConfig{NodeURLs: []string{"a", "b"}}, pairs: 200, wantSenders: []int{100, 100}, wantReceivers: []int{100, 100}},
		{name: "eight nodes: an eighth of each on each",
			cfg: RateConfig{NodeURLs: make([]string, 8)}, pairs: 200,
			wantSenders: []int{25, 25, 25, 25, 25, 25, 25, 25}, wantReceivers: []int{25, 25, 25, 25, 25, 25, 25, 25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			senders := make([]int, len(tt.wantSenders))
			receivers := make([]int, len(tt.wantReceivers))
			for i := range tt.pairs {
				snd, rcv := tt.cfg.placement(i)
				if snd == rcv {
					t.Fatalf("pair %d: sender and recipient both on node %d", i, snd)
				}
				senders[snd]++
				receivers[rcv]++
			}
			for n := range senders {
				if senders[n] != tt.wantSenders[n] || receivers[n] != tt.wantReceivers[n] {
					t.Errorf("per node: senders %v, recipients %v; want %v, %v", senders, receivers, tt.wantSenders, tt.wantReceivers)
					break
				}
			}
		})
	}
}
