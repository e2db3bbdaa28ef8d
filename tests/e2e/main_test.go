package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chatdBinary is the path of the binary every Node runs, set by TestMain.
var chatdBinary string

// TestMain builds bin/chatd once for the whole test binary: every test then
// starts processes from the same build, and a build failure fails the suite
// instead of letting each test report it.
func TestMain(m *testing.M) {
	bin, err := buildChatd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building chatd:", err)
		os.Exit(1)
	}
	chatdBinary = bin
	code := m.Run()
	// The MongoDB-wire server shared by the mongo tests outlives each of
	// them, so it is closed here, after all.
	closeSharedMongo()
	os.Exit(code)
}

// buildChatd runs `go build -o <repo>/bin/chatd ./bootstrap/chatd` from the
// module root. It builds to a temporary name and renames it into place, so
// that a chatd already running from bin/chatd (another test binary, a
// developer's `make run`) neither breaks the build with "text file busy" nor
// sees its file change under it.
func buildChatd() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(binDir, ".chatd-e2e-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./bootstrap/chatd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bootstrap/chatd: %v\n%s", err, out)
	}
	bin := filepath.Join(binDir, "chatd")
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD = %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}
