package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/evchat/chatd/tests/infra"
)

// chatdBinary is the path of the binary every Node runs, set by TestMain.
var chatdBinary string

// TestMain builds bin/chatd once for the whole test binary: every test then
// starts processes from the same build, and a build failure fails the suite
// instead of letting each test report it. Once the tests are done, it holds
// every WebSocket frame they saw to the AsyncAPI document (asyncapi_test.go).
func TestMain(m *testing.M) {
	bin, err := infra.BuildChatd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building chatd:", err)
		os.Exit(1)
	}
	chatdBinary = bin
	code := m.Run()
	// The MongoDB-wire server shared by the mongo tests outlives each of
	// them, so it is closed here, after all.
	closeSharedMongo()
	summary, err := wireLog.check()
	fmt.Println("e2e:", summary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}
