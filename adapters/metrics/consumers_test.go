package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConsumerGroupsRecordLagRedeliveriesAndDeadLetters(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewConsumers(reg)
	if err != nil {
		t.Fatal(err)
	}
	projector, delivery := c.Group("projector"), c.Group("delivery")
	projector.Consumed(30 * time.Millisecond)
	projector.Consumed(3 * time.Second)
	projector.Redelivered(4)
	projector.DeadLettered(2)
	delivery.Consumed(time.Millisecond)
	want := `
# HELP chat_bus_dead_letters_total Messages of failed batches past the reconsume bound, which the broker moves to the dead-letter queue, by consumer group kind.
# TYPE chat_bus_dead_letters_total counter
chat_bus_dead_letters_total{group="delivery"} 0
chat_bus_dead_letters_total{group="projector"} 2
# HELP chat_bus_redeliveries_total Messages of failed batches handed back to the broker to be consumed again, by consumer group kind.
# TYPE chat_bus_redeliveries_total counter
chat_bus_redeliveries_total{group="delivery"} 0
chat_bus_redeliveries_total{group="projector"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "chat_bus_dead_letters_total", "chat_bus_redeliveries_total"); err != nil {
		t.Fatal(err)
	}
	lags := map[string]uint64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "chat_bus_consume_lag_seconds" {
			for _, m := range f.GetMetric() {
				lags[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if lags["projector"] != 2 || lags["delivery"] != 1 {
		t.Fatalf("lag observations by group = %v, want projector 2, delivery 1", lags)
	}
	if allocs := testing.AllocsPerRun(100, func() { delivery.Consumed(time.Millisecond) }); allocs != 0 {
		t.Fatalf("a lag observation allocates %v times, want 0", allocs)
	}
	var none *Consumers
	none.Group("delivery").Consumed(time.Second)
	none.Group("delivery").Redelivered(1)
	none.Group("delivery").DeadLettered(1)
}

func TestReadinessPingsEachDependencyAtTheScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	var storeDown bool
	err := RegisterReadiness(reg, time.Second,
		Dependency{Name: "store", Ping: func(context.Context) error {
			if storeDown {
				return errors.New("down")
			}
			return nil
		}},
		Dependency{Name: "broker", Ping: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("pinged without the readiness timeout")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	header := "# HELP chat_ready Whether the dependency answered a ping within the readiness timeout at this scrape (1) or not (0), by check.\n# TYPE chat_ready gauge\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(header+"chat_ready{check=\"broker\"} 1\nchat_ready{check=\"store\"} 1\n")); err != nil {
		t.Fatal(err)
	}
	storeDown = true
	if err := testutil.GatherAndCompare(reg, strings.NewReader(header+"chat_ready{check=\"broker\"} 1\nchat_ready{check=\"store\"} 0\n")); err != nil {
		t.Fatal(err)
	}
}
