package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// promtool is where `make prometheus-deps` unpacks Debian's promtool.
var promtool = filepath.Join("..", "..", "..", "bin", "prometheus", "usr", "bin", "promtool")

func TestRulesPassPromtool(t *testing.T) {
	if _, err := os.Stat(promtool); err != nil {
		t.Fatalf("promtool is missing (%v): run `make prometheus-deps`", err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestEveryAlertIsTestedFiringAndNot reads rules_test.yml's two forms of an
// alert's test: `{..., alertname: X, exp_alerts: []}` where X must not fire,
// and `alertname: X` followed by a non-empty `exp_alerts:` list where it must.
func TestEveryAlertIsTestedFiringAndNot(t *testing.T) {
	rules, err := os.ReadFile("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\w+)$`).FindAllSubmatch(rules, -1)
	if len(alerts) == 0 {
		t.Fatal("rules.yml has no alert")
	}
	for _, a := range alerts {
		name := regexp.QuoteMeta(string(a[1]))
		if !regexp.MustCompile(`alertname: ` + name + `, exp_alerts: \[\]\}`).Match(tests) {
			t.Errorf("alert %s has no test where it must not fire", a[1])
		}
		if !regexp.MustCompile(`(?m)alertname: ` + name + `\n\s+exp_alerts:\n\s+- exp_labels:`).Match(tests) {
			t.Errorf("alert %s has no test where it must fire", a[1])
		}
	}
}
