package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// schemathesisExamples bounds the cases generated per operation, so that
// the run costs well under a minute on two shared cores.
const schemathesisExamples = "30"

// TestSchemathesis runs schemathesis's stateless phases (the document's
// examples, the coverage of each schema's edges, and fuzzing) against a
// live node, with a dev token as its bearer: no 5xx, no answer that breaks
// openapi.yaml, no undocumented status or header, invalid input refused,
// other methods answered 405 with Allow. Two choices keep it to what a
// schema can say: positive_data_acceptance is off, since a schema-valid
// send may still break a rule JSON Schema cannot state (sending to
// oneself is 400); and /ws is left out, since a generated upgrade that
// succeeds opens a WebSocket session, which an HTTP fuzzer cannot drive.
func TestSchemathesis(t *testing.T) {
	t.Parallel()
	st := filepath.Join(filepath.Dir(chatdBinary), "schemathesis", "bin", "st")
	if _, err := os.Stat(st); err != nil {
		t.Fatalf("%s is missing (%v): run `make schemathesis-deps`", st, err)
	}
	n := StartNode(t, nil)
	token := n.Token(t, "schemathesis")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, st, "run", n.URL()+"/api/openapi.yaml",
		"--checks", "all", "--exclude-checks", "positive_data_acceptance",
		"--exclude-path", "/ws",
		"--phases", "examples,coverage,fuzzing",
		"--max-examples", schemathesisExamples,
		"--request-timeout", "5",
		"--generation-database", "none",
		"--no-color",
		"--header", "Authorization: Bearer "+token)
	cmd.Dir = t.TempDir()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("schemathesis failed after %v: %v\n%s", time.Since(start).Round(time.Second), err, out)
	}
	t.Logf("schemathesis passed in %v", time.Since(start).Round(time.Second))
}
