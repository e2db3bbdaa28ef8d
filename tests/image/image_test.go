package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/eventually"
)

// testImage is a tag of its own, so that the test neither overwrites nor
// removes the image an operator built with `make image`.
const testImage = "localhost/chatd:image-test"

// startTimeout covers podman creating the container and chatd starting in
// it on a loaded two-core machine; chatd alone starts in milliseconds.
const startTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	os.Exit(buildThenRun(m))
}

// buildThenRun builds the image once for every test of the package and
// removes it afterwards, pass or fail.
func buildThenRun(m *testing.M) int {
	root, err := repoRoot()
	if err == nil {
		err = build(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/image:", err)
		return 1
	}
	defer func() { _, _ = podman("rmi", "--force", testImage) }()
	return m.Run()
}

// build runs the Makefile's own recipe, so that `make image` is what is
// tested; it installs podman when missing (image-deps) rather than skip.
func build(root string) error {
	cmd := exec.Command("make", "--no-print-directory", "image", "IMAGE="+testImage)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make image: %v\n%s", err, out)
	}
	return nil
}

func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the checkout from the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..")), nil
}

// podmanArgs runs every container under runc, and the test gives each
// explicit ulimits (ulimitFlags). On the machines the suite runs on, podman's
// defaults fail: crun 1.8 refuses a host whose cgroups are v1 and v2 at once
// ("cgroups in hybrid mode not supported, drop all controllers from
// cgroupv2"), and podman asks for RLIMIT_NOFILE and RLIMIT_NPROC beyond the
// hard limits, which a runtime without CAP_SYS_RESOURCE may not raise
// ("setrlimit `RLIMIT_NOFILE`: Operation not permitted"). Both are harmless
// where the defaults work.
func podmanArgs(args ...string) []string {
	return append([]string{"--runtime", "runc"}, args...)
}

func podman(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("podman", podmanArgs(args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// ulimitFlags keeps the open files at this process's own limits, which a
// runtime may always set, and the processes at a few thousand: a node runs a
// few dozen threads, and podman's default of 4194304 is above the 32768 that
// conmon, runc's parent, may grant here.
func ulimitFlags(t *testing.T) []string {
	t.Helper()
	var files syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &files); err != nil {
		t.Fatal(err)
	}
	return []string{
		"--ulimit", fmt.Sprintf("nofile=%d:%d", files.Cur, files.Max),
		"--ulimit", "nproc=4096:4096",
	}
}

func TestTheImageDeclaresANonRootUserAHealthcheckAndItsPort(t *testing.T) {
	out, err := podman("image", "inspect", testImage)
	if err != nil {
		t.Fatal(err)
	}
	var images []struct {
		Config struct {
			User         string
			Env          []string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]struct{}
		}
		// Podman reports the healthcheck beside Config, not in it.
		Healthcheck *struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(out), &images); err != nil || len(images) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	image := images[0]
	config := image.Config
	if config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", config.User)
	}
	if image.Healthcheck == nil || !slices.Equal(image.Healthcheck.Test, []string{"CMD", "/chatd", "healthcheck"}) {
		t.Errorf("healthcheck %+v, want CMD /chatd healthcheck (an OCI-format build drops it: build with --format docker)", image.Healthcheck)
	}
	if _, ok := config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 8080/tcp", config.ExposedPorts)
	}
	if !slices.Equal(config.Entrypoint, []string{"/chatd"}) || !slices.Equal(config.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %v cmd %v, want [/chatd] [serve]", config.Entrypoint, config.Cmd)
	}
	if !slices.Contains(config.Env, "CHAT_HTTP_ADDR=0.0.0.0:8080") {
		t.Errorf("env %v lacks CHAT_HTTP_ADDR=0.0.0.0:8080: the node would listen on the container's loopback, out of reach of a published port", config.Env)
	}
}

func TestTheEmbeddedDefaultRunsInTheImage(t *testing.T) {
	port := freeLoopbackPort(t)
	name := fmt.Sprintf("chatd-image-test-%d", os.Getpid())
	args := append([]string{"run", "--detach", "--name", name,
		// Embedded mode writes nothing to disk: prove it on a read-only root.
		"--read-only",
		"--publish", "127.0.0.1:" + port + ":8080"}, ulimitFlags(t)...)
	// Registered before the run: a run that fails may leave the container
	// created all the same.
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("podman", "logs", name).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		if _, err := podman("rm", "--force", "--ignore", "--time", "0", name); err != nil {
			t.Error(err)
		}
	})
	if _, err := podman(append(args, testImage)...); err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port

	eventually.Within(t, startTimeout, "GET /healthz through the published port answers 200", func() bool {
		status, _, err := request(http.MethodGet, base+"/healthz", nil)
		return err == nil && status == http.StatusOK
	})

	t.Run("its HEALTHCHECK passes", func(t *testing.T) {
		// Podman schedules periodic checks with systemd timers, which these
		// machines lack; `healthcheck run` runs the image's check once, now.
		if _, err := podman("healthcheck", "run", name); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("it runs as the non-root user", func(t *testing.T) {
		out, err := podman("top", name, "huser")
		if err != nil {
			t.Fatal(err)
		}
		if fields := strings.Fields(out); len(fields) != 2 || fields[1] != "65532" {
			t.Fatalf("podman top %s huser:\n%s\nwant chatd alone, as 65532", name, out)
		}
	})

	t.Run("a dev-token client's send is acked over the WebSocket", func(t *testing.T) {
		token := devToken(t, base, "1001")
		conn, resp, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+port+"/ws?token="+token, nil)
		if err != nil {
			t.Fatalf("dial: %v (response %v)", err, resp)
		}
		defer conn.Close()
		if err := conn.WriteJSON(map[string]string{"type": "send", "id": "image-1", "to": "1002", "body": "hello from the image"}); err != nil {
			t.Fatal(err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(startTimeout)); err != nil {
			t.Fatal(err)
		}
		for {
			var frame struct {
				Type, ID, Code, Message string
				Seq                     int64
			}
			if err := conn.ReadJSON(&frame); err != nil {
				t.Fatalf("no ack: %v", err)
			}
			if frame.Type == "error" {
				t.Fatalf("send answered with error %s: %s", frame.Code, frame.Message)
			}
			if frame.Type == "ack" {
				if frame.ID != "image-1" || frame.Seq != 1 {
					t.Fatalf("ack %+v, want id image-1 and seq 1", frame)
				}
				return
			}
		}
	})
}

func devToken(t *testing.T, base, user string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"userId": user})
	if err != nil {
		t.Fatal(err)
	}
	status, answer, err := request(http.MethodPost, base+"/api/dev/token", body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /api/dev/token: status %d, %v: %s", status, err, answer)
	}
	var issued struct{ Token string }
	if err := json.Unmarshal(answer, &issued); err != nil || issued.Token == "" {
		t.Fatalf("POST /api/dev/token answered %s (%v)", answer, err)
	}
	return issued.Token
}

func request(method, url string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// freeLoopbackPort picks a port for podman to publish on; another process
// may take it in between, which podman then reports as a failed run.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}
