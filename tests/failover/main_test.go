package failover

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/evchat/chatd/tests/infra"
)

// What TestMain starts once for every test of the package: the six JVMs
// take the longest of anything here to boot, so the build and the store
// come up meanwhile.
var (
	layout      *infra.RocketMQHA
	store       *infra.Mongo
	chatdBinary string
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	start := time.Now()
	var (
		buildErr, storeErr error
		others             sync.WaitGroup
	)
	others.Go(func() { chatdBinary, buildErr = infra.BuildChatd() })
	others.Go(func() { store, storeErr = infra.LaunchMongo() })
	r, layoutErr := infra.LaunchRocketMQHA()
	others.Wait()
	if err := errors.Join(layoutErr, buildErr, storeErr); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		if r != nil {
			r.Close()
		}
		if store != nil {
			store.Close()
		}
		os.Exit(1)
	}
	layout = r
	r.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "failover: "+format+"\n", args...) }
	fmt.Fprintf(os.Stderr, "failover: rocketmq layout (name servers %s), store and build up in %v\n",
		r.NamesrvAddr(), time.Since(start).Round(time.Millisecond))
	code := m.Run()
	store.Close()
	if code != 0 {
		r.Stop()
		fmt.Fprintf(os.Stderr, "failover: rocketmq layout log tails:\n%s(kept %s)\n", r.LogTails(), r.Dir())
	} else {
		r.Close()
	}
	os.Exit(code)
}

// wholeLayout restarts whatever part of the layout an earlier test left
// dead, so that each test starts from the whole deployed cluster.
func wholeLayout(t *testing.T) *infra.RocketMQHA {
	t.Helper()
	for _, role := range infra.HARoles {
		if err := layout.Start(role); err != nil {
			t.Fatalf("restarting %s left dead by an earlier test: %v", role, err)
		}
	}
	return layout
}
