package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDeliveryCountsTheCommitsReceived(t *testing.T) {
	reg := prometheus.NewRegistry()
	d, err := NewDelivery(reg)
	if err != nil {
		t.Fatal(err)
	}
	d.CommitsReceived(3)
	d.CommitsReceived(0)
	d.CommitsReceived(2)
	want := `
# HELP chat_delivery_commits_received_total Commits this node's delivery consumer received, whatever the delivery mode.
# TYPE chat_delivery_commits_received_total counter
chat_delivery_commits_received_total 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	var none *Delivery
	none.CommitsReceived(1)
}
