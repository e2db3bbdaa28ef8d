package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evchat/chatd/ports"
)

func TestDeliveryCountsTheCommitsReceivedAndTimesTheirAge(t *testing.T) {
	reg := prometheus.NewRegistry()
	d, err := NewDelivery(reg)
	if err != nil {
		t.Fatal(err)
	}
	built := func(ago time.Duration) ports.Commit { return ports.Commit{CommittedAt: time.Now().Add(-ago)} }
	d.CommitsReceived([]ports.Commit{built(time.Millisecond), built(time.Millisecond), built(3 * time.Second)})
	d.CommitsReceived(nil)
	d.CommitsReceived([]ports.Commit{built(time.Minute), built(time.Millisecond)})
	want := `
# HELP chat_delivery_commits_received_total Commits this node's delivery consumer received, whatever the delivery mode.
# TYPE chat_delivery_commits_received_total counter
chat_delivery_commits_received_total 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "chat_delivery_commits_received_total"); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := 0
	for _, f := range families {
		if f.GetName() != "chat_delivery_commit_age_seconds" {
			continue
		}
		ages++
		h := f.GetMetric()[0].GetHistogram()
		var underASecond uint64
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 1 {
				underASecond = b.GetCumulativeCount()
			}
		}
		if h.GetSampleCount() != 5 || underASecond != 3 || h.GetSampleSum() < 63 {
			t.Fatalf("ages: %d observed, %d under 1 s, sum %v; want 5, 3, over 63 s", h.GetSampleCount(), underASecond, h.GetSampleSum())
		}
	}
	if ages != 1 {
		t.Fatalf("chat_delivery_commit_age_seconds gathered %d times, want once", ages)
	}
	var none *Delivery
	none.CommitsReceived([]ports.Commit{built(0)})
}
