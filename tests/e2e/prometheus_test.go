package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/eventually"
	"github.com/evchat/chatd/tests/infra"
)

var (
	dashboardPath = filepath.Join("..", "..", "bootstrap", "deploy", "grafana", "chatd.json")
	rulesPath     = filepath.Join("..", "..", "bootstrap", "deploy", "prometheus", "rules.yml")
)

// dashboardVariables are what the dashboard's template variables stand for
// here: the suite's job, every node, and a rate window that a few scrapes
// a second apart fill.
var dashboardVariables = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$job", infra.PrometheusJob,
	"$instance", ".*",
)

// panelQuery is one query of a dashboard panel.
type panelQuery struct{ panel, expr string }

// dashboardQueries reads every panel's queries from the dashboard, its
// template variables substituted; a panel without one fails the test, and
// so does a panel or query that does not ask the dashboard's datasource.
func dashboardQueries(t *testing.T) []panelQuery {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	type datasource struct {
		UID string `json:"uid"`
	}
	var dashboard struct {
		Panels []struct {
			Title      string     `json:"title"`
			Type       string     `json:"type"`
			Datasource datasource `json:"datasource"`
			Targets    []struct {
				Expr       string     `json:"expr"`
				Datasource datasource `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if !slices.ContainsFunc(dashboard.Templating.List, func(v struct{ Name, Type string }) bool {
		return v.Name == "DS_PROMETHEUS" && v.Type == "datasource"
	}) {
		t.Fatal("the dashboard has no DS_PROMETHEUS datasource variable")
	}
	const ds = "${DS_PROMETHEUS}"
	var queries []panelQuery
	for _, p := range dashboard.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != ds || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %q and %d queries; want %s and at least one", p.Title, p.Datasource.UID, len(p.Targets), ds)
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != ds {
				t.Errorf("panel %q: a query asks datasource %q, want %s", p.Title, q.Datasource.UID, ds)
			}
			queries = append(queries, panelQuery{p.Title, dashboardVariables.Replace(q.Expr)})
		}
	}
	return queries
}

// testClusterPrometheus scrapes a live two-node cluster under a little load
// with Debian's prometheus and the shipped rules, then asks for every
// dashboard query and every recording rule: each must answer with data, so
// that a metric renamed in the code breaks this test, not the dashboard.
func testClusterPrometheus(t *testing.T, rmq *infra.RocketMQ) {
	queries := dashboardQueries(t)
	n1, n2 := startCluster(t, rmq)
	prom := infra.StartPrometheus(t, []string{n1.addr, n2.addr}, rulesPath)
	start := time.Now()

	// Sends both ways between the nodes, a typing frame and a send the use
	// case refuses (to oneself), so that every outcome panel has a series
	// to show.
	a, b := n1.Dial(t, "prom-a"), n2.Dial(t, "prom-b")
	var conv string
	for i := range 10 {
		conv = a.SendMessage(fmt.Sprintf("prom-a-%d", i), b.User, fmt.Sprintf("to b %d", i)).Conversation
		b.SendMessage(fmt.Sprintf("prom-b-%d", i), a.User, fmt.Sprintf("to a %d", i))
	}
	a.Send(map[string]string{"type": "typing", "conversation": conv})
	a.Send(map[string]string{"type": "send", "id": "prom-self", "to": a.User, "body": "to myself"})
	if _, err := a.Await(frameTimeout, "error", byID("prom-self")); err != nil {
		t.Fatalf("a send to oneself was not refused: %v", err)
	}

	rules, err := prom.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Health == "err" {
			t.Errorf("rule %s does not evaluate: %s", r.Name, r.LastError)
		}
		if r.Type == "recording" {
			queries = append(queries, panelQuery{"recording rule", r.Name})
		}
	}
	if len(rules) == 0 {
		t.Fatal("prometheus loaded no rule from " + rulesPath)
	}

	// Rates need two scrapes after the load, recording rules an evaluation
	// after those; each query is asked again until it answers.
	empty := map[panelQuery]error{}
	for _, q := range queries {
		empty[q] = nil
	}
	_ = eventually.Poll(30*time.Second, func() (bool, error) {
		for q := range empty {
			n, err := prom.Query(q.expr)
			if err == nil && n > 0 {
				delete(empty, q)
				continue
			}
			empty[q] = err
		}
		return len(empty) == 0, nil
	})
	for q, qerr := range empty {
		t.Errorf("%s: %s answered no data (%v)", q.panel, q.expr, qerr)
	}
	t.Logf("prometheus: %d dashboard queries and recording rules answered, %v after the load began", len(queries), time.Since(start).Round(time.Millisecond))
}
