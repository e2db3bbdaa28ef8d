package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPresenceMetricsRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := NewPresence(reg)
	if err != nil {
		t.Fatal(err)
	}
	p.PresenceChanged(true)
	p.PresenceChanged(true)
	p.PresenceChanged(false)
	p.TypingRelayed()
	p.TypingDropped()
	p.TypingDropped()
	want := `
# HELP chat_presence_changes_total Presence changes this node announced to its sessions, by state (online or offline).
# TYPE chat_presence_changes_total counter
chat_presence_changes_total{state="offline"} 1
chat_presence_changes_total{state="online"} 2
# HELP chat_typing_signals_total Typing frames received on this node, by outcome: relayed to the cluster, or dropped by the 2 s throttle.
# TYPE chat_typing_signals_total counter
chat_typing_signals_total{outcome="dropped"} 2
chat_typing_signals_total{outcome="relayed"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	var none *Presence
	none.PresenceChanged(true)
	none.TypingRelayed()
	none.TypingDropped()
}
