package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Counter reads one unlabelled counter from a node's /metrics (the
// Prometheus text format). found is false when the node does not expose
// it: a benchmark built before a metric exists reports "n/a" rather than
// failing.
func Counter(ctx context.Context, baseURL, name string) (value float64, found bool, err error) {
	n, err := newNode(baseURL, 1)
	if err != nil {
		return 0, false, err
	}
	defer n.close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.base.String()+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return counterValue(resp.Body, name)
}

// counterValue finds name's sample in an exposition: the line that is the
// name, a space and the value. A longer name that starts with the same
// characters is another metric.
func counterValue(r io.Reader, name string) (float64, bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		// A sample may carry a timestamp after its value.
		field, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric %s: value %q: %w", name, field, err)
		}
		return v, true, nil
	}
	return 0, false, sc.Err()
}
