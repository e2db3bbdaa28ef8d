package infra

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/tests/eventually"
)

// RocketMQClusterName and RocketMQBrokerName name the single broker.
const (
	RocketMQClusterName = "chatd-test"
	RocketMQBrokerName  = "broker-a"
)

// RocketMQ is a name server and one master broker (RocketMQ 5.3.3 from the
// jars in tests/infra/rocketmq/lib) on loopback, with their store and logs in
// one temporary directory. The broker is tuned for tests: a 64 MiB commit
// log, a small index, and transaction checkback after 3 s instead of 6 s,
// scanned every 5 s instead of 60 s.
type RocketMQ struct {
	dir, lib, java string
	settings       []string
	nsPort         int
	brokerPort     int

	mu                       sync.Mutex
	ns, broker               *process
	nsStarts, brokerStarts   int
	nsStartup, brokerStartup time.Duration
}

// LaunchRocketMQ starts a name server and a broker and returns once the
// broker has registered with the name server. The caller must Close it.
// Each of brokerSettings ("key=value") overrides the test broker's own
// setting of that key, such as enablePropertyFilter=false for a broker
// that refuses routed consumers' selectors.
func LaunchRocketMQ(brokerSettings ...string) (*RocketMQ, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	lib, java, err := rocketMQInstall(root)
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("chatd-rocketmq-")
	if err != nil {
		return nil, err
	}
	// 5.3.3 opens listenPort-2 (fast remoting) and listenPort+1 (HA) besides
	// listenPort, so the broker takes a block of four.
	base, err := freePortRange(4)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &RocketMQ{dir: dir, lib: lib, java: java, nsPort: FreePort(), brokerPort: base + 2, settings: brokerSettings}
	if err := r.writeConfigs(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.Start(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// rocketMQInstall checks the jars and finds java.
func rocketMQInstall(root string) (lib, java string, err error) {
	lib = filepath.Join(root, "tests", "infra", "rocketmq", "lib")
	for _, f := range []string{".installed", "rocketmq-broker-5.3.3.jar", "chatd-loopback-ha.jar"} {
		if _, err := os.Stat(filepath.Join(lib, f)); err != nil {
			return "", "", fmt.Errorf("RocketMQ jars not installed in %s (%v): run `make infra-deps` (tests/infra/rocketmq/install.sh)", lib, err)
		}
	}
	java = "java"
	if h := os.Getenv("JAVA_HOME"); h != "" {
		java = filepath.Join(h, "bin", "java")
	}
	if java, err = exec.LookPath(java); err != nil {
		return "", "", fmt.Errorf("java not found (%v): RocketMQ needs JDK 17 (apt-get install openjdk-17-jdk-headless)", err)
	}
	return lib, java, nil
}

// transactionOpBatch is how long the test brokers let the records of
// ended transactions wait to be written together. The broker checks back a
// half message older than transactionTimeOut whose record is not written
// yet. The tests lower that timeout to 3 s, for checkback in seconds, which
// is also 5.x's default for this wait, so half messages committed seconds
// before were checked back: at 500 msg/s in make bench-load the checkbacks
// were 2-8% of the two nodes' CPU profiles and their store reads 15-20% of
// FerretDB's. The shipped brokers keep the 6 s default timeout.
const transactionOpBatch = time.Second

func (r *RocketMQ) writeConfigs() error {
	store := filepath.Join(r.dir, "store")
	namesrv := fmt.Sprintf("listenPort=%d\nbindAddress=127.0.0.1\n", r.nsPort)
	// Key names are 5.x's; the broker silently ignores unknown keys, so
	// `BrokerStartup -c broker.conf -p` is the way to check a new one took.
	broker := fmt.Sprintf(`brokerClusterName=%s
brokerName=%s
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=%s
bindAddress=127.0.0.1
brokerIP1=127.0.0.1
brokerIP2=127.0.0.1
listenPort=%d
haListenPort=%d
storePathRootDir=%s
storePathCommitLog=%s
mappedFileSizeCommitLog=67108864
maxIndexNum=100000
maxHashSlotNum=10000
autoCreateTopicEnable=true
transactionCheckInterval=5000
transactionTimeOut=3000
transactionOpBatchInterval=%d
fileReservedTime=1
registerNameServerPeriod=10000
enablePropertyFilter=true
`, RocketMQClusterName, RocketMQBrokerName, r.NamesrvAddr(), r.brokerPort, r.brokerPort+1,
		store, filepath.Join(store, "commitlog"), transactionOpBatch.Milliseconds())
	// The broker reads a java.util.Properties file: a later key wins.
	for _, s := range r.settings {
		broker += s + "\n"
	}
	if err := os.WriteFile(filepath.Join(r.dir, "namesrv.conf"), []byte(namesrv), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.dir, "broker.conf"), []byte(broker), 0o644)
}

// NamesrvAddr is the name server's host:port, for the client's
// primitive.NewPassthroughResolver.
func (r *RocketMQ) NamesrvAddr() string { return loopback(r.nsPort) }

// BrokerAddr is the broker's host:port, for admin calls.
func (r *RocketMQ) BrokerAddr() string { return loopback(r.brokerPort) }

// NamesrvPid and BrokerPid are the running servers' process ids (the
// JVMs), for the load benchmark's CPU accounting.
func (r *RocketMQ) NamesrvPid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ns.pid()
}

// BrokerPid is the broker JVM's pid; see NamesrvPid.
func (r *RocketMQ) BrokerPid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broker.pid()
}

// StartupTimes reports how long the last name server and broker starts took.
func (r *RocketMQ) StartupTimes() (namesrv, broker time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nsStartup, r.brokerStartup
}

func (r *RocketMQ) javaArgs(mainClass, conf string) []string {
	// The release scripts default to 8 GB heaps; two servers and the tests
	// share two cores and a few GB here.
	heap := []string{"-Xms256m", "-Xmx512m", "-XX:MaxDirectMemorySize=512m"}
	return javaCommand(r.java, r.lib, r.dir, heap, mainClass, filepath.Join(r.dir, conf))
}

// javaCommand is the command line of one RocketMQ server whose logs (and any
// default store path) go under home.
func javaCommand(java, lib, home string, heap []string, mainClass, conf string) []string {
	argv := append([]string{java}, heap...)
	return append(argv,
		"-XX:-UsePerfData",
		"--add-opens", "java.base/java.nio=ALL-UNNAMED",
		"--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
		"--add-opens", "java.base/java.lang=ALL-UNNAMED",
		// Both servers exit without a home; user.home decides where logs
		// go, which must not be /root.
		"-Drocketmq.home.dir="+home, "-Duser.home="+home,
		"-cp", filepath.Join(lib, "*"),
		mainClass, "-c", conf,
	)
}

// Start starts whichever of the name server and broker is not running, on the
// same ports and store as before, and returns once both serve.
func (r *RocketMQ) Start() error {
	if err := r.StartNamesrv(); err != nil {
		return err
	}
	return r.StartBroker()
}

// StartNamesrv starts the name server if it is not running.
func (r *RocketMQ) StartNamesrv() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ns != nil && !r.ns.exited() {
		return nil
	}
	r.nsStarts++
	start := time.Now()
	p, err := r.startJava("namesrv", r.nsStarts, "org.apache.rocketmq.namesrv.NamesrvStartup", "namesrv.conf", r.NamesrvAddr())
	if err != nil {
		return err
	}
	r.ns, r.nsStartup = p, time.Since(start)
	return nil
}

// StartBroker starts the broker if it is not running; the name server must be
// up for it to register.
func (r *RocketMQ) StartBroker() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broker != nil && !r.broker.exited() {
		return nil
	}
	r.brokerStarts++
	start := time.Now()
	p, err := r.startJava("broker", r.brokerStarts, "org.apache.rocketmq.broker.BrokerStartup", "broker.conf", r.BrokerAddr())
	if err != nil {
		return err
	}
	// "boot success" does not mean routable: after a restart the name server
	// answered "topic not exist" for up to 10 s, until the broker's first
	// periodic registration (10 s after start, then every
	// registerNameServerPeriod, lowered to 10 s from 30 s for that reason),
	// and a client asking then got "route info not found".
	if err := r.waitRouted(true, 30*time.Second); err != nil {
		p.kill()
		return fmt.Errorf("broker booted but %w; last output:\n%s", err, p.logTail(20))
	}
	r.broker, r.brokerStartup = p, time.Since(start)
	return nil
}

// probeTopic is a topic every 5.x broker creates for itself, so its route
// tells whether the name server knows the broker.
const probeTopic = "SELF_TEST_TOPIC"

// waitRouted polls the name server until it does (want) or does not route to
// the broker.
func (r *RocketMQ) waitRouted(want bool, timeout time.Duration) error {
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{r.NamesrvAddr()})))
	if err != nil {
		return err
	}
	defer adm.Close()
	var last error
	err = eventually.Poll(timeout, func() (bool, error) {
		// FetchClusterList asks the name server every time; the publish
		// queue lookup would answer from the client's route cache.
		clusters, err := adm.FetchClusterList(probeTopic)
		last = err
		return (err == nil && len(clusters) > 0) == want, nil
	})
	if err != nil {
		return fmt.Errorf("name server routing to the broker is not %v after %v (%v)", want, timeout, last)
	}
	return nil
}

// startJava runs one server with a fresh log per start, so that the "boot
// success" line it waits for cannot be the previous run's.
func (r *RocketMQ) startJava(name string, n int, mainClass, conf, addr string) (*process, error) {
	p, err := startProcess(procSpec{
		name:    "rocketmq " + name,
		argv:    r.javaArgs(mainClass, conf),
		dir:     r.dir,
		logPath: filepath.Join(r.dir, fmt.Sprintf("%s.%d.out", name, n)),
	})
	if err != nil {
		return nil, err
	}
	// Both print "boot success" once serving; the broker only after it has
	// registered with the name server.
	err = waitFor(p, 60*time.Second, func() bool {
		return logContains(p.logPath, "boot success") && portOpen(addr)
	})
	if err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// Stop takes the broker and the name server down at once (SIGKILL). Clients
// see the same thing as after a graceful shutdown, connections refused and the
// broker gone from the name server as soon as its connection drops, without
// the ~17 s a graceful broker shutdown takes while its service threads sleep
// out their intervals. Start recovers the store.
func (r *RocketMQ) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broker.kill()
	r.ns.kill()
}

// forgetBroker waits for the name server to drop a broker that was just
// killed: it does so when the broker's connection closes, asynchronously, and
// a drop processed after the restarted broker (same address) registered
// would unroute it for up to 30 s, until its next heartbeat registration.
func (r *RocketMQ) forgetBroker() error {
	if r.ns == nil || r.ns.exited() {
		return nil
	}
	return r.waitRouted(false, 15*time.Second)
}

// StopBroker takes the broker down at once (SIGKILL), leaving the name server
// up: the "broker down, then back" case.
func (r *RocketMQ) StopBroker() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broker.kill()
	return r.forgetBroker()
}

// StopBrokerGracefully shuts the broker down as the release scripts do
// (SIGTERM: unregister, flush, checkpoint), for tests of a planned restart.
// It takes about 17 s.
func (r *RocketMQ) StopBrokerGracefully() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broker.stop(syscall.SIGTERM, 60*time.Second)
	return r.forgetBroker()
}

// StopNamesrv takes the name server down at once (SIGKILL).
func (r *RocketMQ) StopNamesrv() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns.kill()
}

// Close kills both servers and deletes the store and logs.
func (r *RocketMQ) Close() {
	r.Stop()
	os.RemoveAll(r.dir)
}

// CreateTopic creates topic on the broker (8 read and write queues) and waits
// until the name server routes it: a push consumer's Start fails with "route
// info not found" on a topic that does not exist yet, autoCreateTopicEnable or
// not. Creating an existing topic is harmless.
func (r *RocketMQ) CreateTopic(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The passthrough resolver: the client's default one first calls an
	// external HTTP address for the name server list.
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{r.NamesrvAddr()})))
	if err != nil {
		return fmt.Errorf("rocketmq admin: %w", err)
	}
	defer adm.Close()
	// The admin client ignores the broker's response code, so success is
	// judged by the route appearing, not by this error.
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(r.BrokerAddr())); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	for {
		mqs, err := adm.FetchPublishMessageQueues(ctx, topic)
		if err == nil && len(mqs) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s has no route after creation: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *RocketMQ) logTail() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "namesrv:\n" + r.ns.logTail(10) + "\nbroker:\n" + r.broker.logTail(20)
}

// StartRocketMQ starts a name server and broker for the test; they are killed
// and their store deleted when the test ends.
func StartRocketMQ(t testing.TB) *RocketMQ {
	t.Helper()
	r, err := LaunchRocketMQ()
	if err != nil {
		t.Fatalf("infra: %v", err)
	}
	ns, br := r.StartupTimes()
	t.Logf("infra: rocketmq name server %s up in %v, broker %s in %v",
		r.NamesrvAddr(), ns.Round(time.Millisecond), r.BrokerAddr(), br.Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			// Keep the store and full logs of a failed run for a post-mortem.
			r.Stop()
			t.Logf("infra: rocketmq log tail:\n%s\n(kept %s)", r.logTail(), r.dir)
			return
		}
		r.Close()
	})
	return r
}
