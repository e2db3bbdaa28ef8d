package infra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Prometheus is Debian's prometheus server (unpacked into bin/prometheus by
// `make prometheus-deps`) scraping a test's chatd nodes on loopback every
// second, with rule files loaded and evaluated every second.
type Prometheus struct {
	proc *process
	addr string
}

// PrometheusJob is the job name the scraped nodes get, as the rules expect.
const PrometheusJob = "chatd"

func prometheusBinary() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "prometheus", "usr", "bin", "prometheus")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("prometheus missing (%v): install it with `make prometheus-deps`", err)
	}
	return bin, nil
}

// StartPrometheus starts prometheus on a free loopback port, scraping
// targets ("host:port" of chatd nodes) as job PrometheusJob and loading
// ruleFiles, and waits until it is ready. It is stopped by its pid when the
// test ends, pass or fail; its log goes to the test log when the test failed.
func StartPrometheus(t testing.TB, targets []string, ruleFiles ...string) *Prometheus {
	t.Helper()
	bin, err := prometheusBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules := make([]string, len(ruleFiles))
	for i, f := range ruleFiles {
		if rules[i], err = filepath.Abs(f); err != nil {
			t.Fatal(err)
		}
	}
	// JSON is YAML, and quotes every path and address safely.
	cfg, err := json.Marshal(map[string]any{
		"global":     map[string]string{"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
		"rule_files": rules,
		"scrape_configs": []any{map[string]any{
			"job_name": PrometheusJob, "static_configs": []any{map[string]any{"targets": targets}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{addr: loopback(FreePort())}
	p.proc, err = startProcess(procSpec{
		name: "prometheus",
		argv: []string{bin, "--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + p.addr, "--log.level=warn"},
		dir:     dir,
		logPath: filepath.Join(dir, "prometheus.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.proc.stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.proc.logTail(40))
		}
	})
	ready := func() bool {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if err := waitFor(p.proc, 20*time.Second, ready); err != nil {
		t.Fatal(err)
	}
	return p
}

// Query evaluates an instant PromQL query and returns how many series it
// answered with.
func (p *Prometheus) Query(expr string) (int, error) {
	var answer struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(expr), &answer); err != nil {
		return 0, err
	}
	if answer.ResultType != "vector" && answer.ResultType != "matrix" {
		return 0, fmt.Errorf("%s answered a %s, not series", expr, answer.ResultType)
	}
	return len(answer.Result), nil
}

// Rule is one loaded rule as the rules API reports it.
type Rule struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

// Rules lists the rules prometheus loaded, recording and alerting.
func (p *Prometheus) Rules() ([]Rule, error) {
	var answer struct {
		Groups []struct {
			Rules []Rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", &answer); err != nil {
		return nil, err
	}
	var rules []Rule
	for _, g := range answer.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules, nil
}

// get asks the HTTP API and decodes the data of a successful answer.
func (p *Prometheus) get(path string, data any) error {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var envelope struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&envelope); err != nil {
		return fmt.Errorf("prometheus %s: %s: %w", strings.SplitN(path, "?", 2)[0], resp.Status, err)
	}
	if envelope.Status != "success" {
		return fmt.Errorf("prometheus %s: %s: %s", strings.SplitN(path, "?", 2)[0], resp.Status, envelope.Error)
	}
	return json.Unmarshal(envelope.Data, data)
}
