package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evchat/chatd/ports"
)

// Outcomes of a port call, as the op/outcome histograms label them: ok, or
// the first port sentinel the error is, or error.
const (
	outcomeConflict    = "conflict"
	outcomeDuplicate   = "duplicate"
	outcomeNotFound    = "not_found"
	outcomeUnavailable = "unavailable"
	outcomeError       = "error"
)

// portBuckets span a port call from an in-memory append (tens of
// microseconds) to a send timeout of a few seconds.
var portBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// registerAll registers each collector on reg, stopping at the first error.
func registerAll(reg prometheus.Registerer, collectors ...prometheus.Collector) error {
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// newPortHistogram registers a port's latency histogram, by op and outcome.
func newPortHistogram(reg prometheus.Registerer, name, help string) (*prometheus.HistogramVec, error) {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: portBuckets}, []string{"op", "outcome"})
	return vec, reg.Register(vec)
}

// outcomeOf names how a port call that returned err ended.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ports.ErrVersionConflict):
		return outcomeConflict
	case errors.Is(err, ports.ErrDuplicateCommit):
		return outcomeDuplicate
	case errors.Is(err, ports.ErrCommitNotFound):
		return outcomeNotFound
	case errors.Is(err, ports.ErrUnavailable):
		return outcomeUnavailable
	}
	return outcomeError
}

// timedOp is one operation's latency series, one per outcome it can have,
// created up front: an observation is then a map lookup and the
// histogram's own atomic adds, with no label hashing or allocation on the
// hot path, and every series exists (at zero) before its first call.
type timedOp map[string]prometheus.Observer

// newTimedOp creates op's series for outcomes and for outcomeError, which
// takes any outcome not listed.
func newTimedOp(vec *prometheus.HistogramVec, op string, outcomes ...string) timedOp {
	t := timedOp{outcomeError: vec.WithLabelValues(op, outcomeError)}
	for _, o := range outcomes {
		t[o] = vec.WithLabelValues(op, o)
	}
	return t
}

// since observes the time since start under outcome.
func (t timedOp) since(outcome string, start time.Time) {
	o, ok := t[outcome]
	if !ok {
		o = t[outcomeError]
	}
	o.Observe(time.Since(start).Seconds())
}
