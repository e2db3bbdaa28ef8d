package infra

import (
	"os"
	"path/filepath"
)

// HARewrittenKeys exposes the settings the layout may rewrite to the tests.
func HARewrittenKeys() []string { return haRewrittenKeys }

// HAConfigs returns a role's shipped file and the configuration the layout
// generates from it, on made-up ports and paths, without starting anything.
func HAConfigs(role HARole) (shipped, generated []byte, err error) {
	root, err := repoRoot()
	if err != nil {
		return nil, nil, err
	}
	r := &RocketMQHA{dir: os.TempDir(), ports: map[HARole]int{}}
	for i, ro := range HARoles {
		r.ports[ro] = 20000 + 10*i
	}
	shipped, err = os.ReadFile(filepath.Join(root, "bootstrap", "deploy", "rocketmq", shippedConf(role)))
	if err != nil {
		return nil, nil, err
	}
	generated, err = rewriteConf(shipped, r.overrides(role))
	return shipped, generated, err
}
