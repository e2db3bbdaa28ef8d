// Package prometheus holds chatd's Prometheus recording rules and alerts
// (rules.yml) and their promtool unit tests (rules_test.yml); its Go test
// runs promtool on them, so `make test` checks the rules as it checks code.
// It has no code: operators load rules.yml into their Prometheus.
package prometheus
