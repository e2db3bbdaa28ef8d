package infra

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// repoRoot finds the checkout the helpers belong to, so that bin/ferretdb and
// tests/infra/rocketmq/lib are found whatever directory a test or cmd/stack
// runs in. CHATD_REPO_ROOT overrides it, for binaries run away from the
// source tree they were built from.
func repoRoot() (string, error) {
	if r := os.Getenv("CHATD_REPO_ROOT"); r != "" {
		return r, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		r := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isRepoRoot(r) {
			return r, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isRepoRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the chatd checkout (a directory holding go.mod and tests/infra); set CHATD_REPO_ROOT")
		}
		dir = parent
	}
}

func isRepoRoot(dir string) bool {
	for _, p := range []string{"go.mod", filepath.Join("tests", "infra", "doc.go")} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}

// ownerFile names the process that made a temporary directory, so that a
// later run can tell the directory of a killed test binary (its servers died
// with it, through Pdeathsig, but its cleanups never ran) from one in use.
const ownerFile = "owner.pid"

// makeTempDir makes a fresh directory that other local users can traverse:
// os.MkdirTemp and t.TempDir create 0700 directories, which the postgres user
// that PostgreSQL runs as cannot enter. It first deletes the directories of
// earlier runs whose owner is gone; a RocketMQ store is 100 MB or more.
func makeTempDir(pattern string) (string, error) {
	sweepStale(pattern)
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func sweepStale(pattern string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if !alive(pid) {
			os.RemoveAll(dir)
		}
	}
}

// alive treats a zombie as dead: a killed test binary can stay one for a while
// when its parent is slow to reap it.
func alive(pid int) bool {
	// Signal 0 checks existence; EPERM means it exists under another user.
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may hold spaces.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}
