package infra_test

import (
	"testing"

	"github.com/evchat/chatd/tests/infra"
)

// TestRocketMQHAConfigIsTheShippedOne checks, for every process of the
// layout, that the generated configuration differs from
// bootstrap/deploy/rocketmq only in where it listens and stores and in the
// test-speed knobs, without starting anything.
func TestRocketMQHAConfigIsTheShippedOne(t *testing.T) {
	rewritable := map[string]bool{}
	for _, k := range infra.HARewrittenKeys() {
		rewritable[k] = true
	}
	for _, role := range infra.HARoles {
		shipped, generated, err := infra.HAConfigs(role)
		if err != nil {
			t.Fatal(err)
		}
		want, got := infra.ParseConf(shipped), infra.ParseConf(generated)
		for k, v := range want {
			if got[k] != v && !rewritable[k] {
				t.Errorf("%s: %s=%q is shipped as %q", role, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok && !rewritable[k] {
				t.Errorf("%s: %s is not in the shipped file", role, k)
			}
		}
		if !role.IsNamesrv() && got["bindAddress"] != "127.0.0.1" {
			t.Errorf("%s binds %q", role, got["bindAddress"])
		}
	}
}
