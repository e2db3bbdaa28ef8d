package load

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Percentiles summarises a latency sample.
type Percentiles struct {
	N                        int
	P50, P90, P99, P999, Max time.Duration
}

// Summarize returns a sample's percentiles by the nearest-rank method over
// the whole sample: a step has at most its rate times its duration of
// values, few enough to keep and sort, and exact figures spare arguing about
// a histogram's resolution at 0.1 ms.
func Summarize(sample []time.Duration) Percentiles {
	if len(sample) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{N: len(s), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), P999: rank(0.999), Max: s[len(s)-1]}
}

func (p Percentiles) String() string {
	if p.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
		Ms(p.P50), Ms(p.P90), Ms(p.P99), Ms(p.P999), Ms(p.Max), p.N)
}

// Ms formats a duration in milliseconds with a precision that suits its size.
func Ms(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

// tally counts events by name, safely from every read loop at once.
type tally struct {
	mu sync.Mutex
	n  map[string]int
	// first keeps the first detail seen for each name, to quote in a report.
	first map[string]string
}

func newTally() *tally { return &tally{n: map[string]int{}, first: map[string]string{}} }

func (t *tally) add(name, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[name]++
	if _, ok := t.first[name]; !ok && detail != "" {
		t.first[name] = detail
	}
}

func (t *tally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.n))
	for k, v := range t.n {
		out[k] = v
	}
	return out
}

func (t *tally) details() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.first))
	for k, v := range t.first {
		out[k] = v
	}
	return out
}

// FormatCounts renders counts as "a=1 b=2" in name order, "none" when empty.
func FormatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
