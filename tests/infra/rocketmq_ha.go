package infra

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/tests/eventually"
)

// HARole names one process of the deployed layout, as bin/run-cluster-ha/pids
// and the failover tests name it.
type HARole string

// The roles, named as in bootstrap/deploy.
const (
	Namesrv1      HARole = "namesrv1"
	Namesrv2      HARole = "namesrv2"
	BrokerAMaster HARole = "broker-a-master"
	BrokerASlave  HARole = "broker-a-slave"
	BrokerBMaster HARole = "broker-b-master"
	BrokerBSlave  HARole = "broker-b-slave"
)

// HARoles lists every process of the layout, name servers first: the order
// they start in.
var HARoles = []HARole{Namesrv1, Namesrv2, BrokerAMaster, BrokerASlave, BrokerBMaster, BrokerBSlave}

// IsNamesrv tells a name server's role from a broker's.
func (r HARole) IsNamesrv() bool { return r == Namesrv1 || r == Namesrv2 }

// BrokerName is the broker group of a broker role ("broker-a").
func (r HARole) BrokerName() string {
	return strings.TrimSuffix(strings.TrimSuffix(string(r), "-master"), "-slave")
}

// brokerID is 0 for a master, 1 for a slave, as the shipped files say.
func (r HARole) brokerID() int64 {
	if strings.HasSuffix(string(r), "-slave") {
		return 1
	}
	return 0
}

// haRewrittenKeys are the only settings of bootstrap/deploy/rocketmq that the
// tested layout changes: where a server listens and stores, and the
// test-speed knobs the single-broker infra lowers too. Everything else, the
// durability choice above all, is the shipped configuration.
var haRewrittenKeys = []string{
	"listenPort", "haListenPort", "namesrvAddr", "bindAddress", "brokerIP1", "brokerIP2",
	"storePathRootDir", "storePathCommitLog",
	"transactionCheckInterval", "transactionTimeOut", "transactionOpBatchInterval",
	"mappedFileSizeCommitLog", "maxIndexNum", "maxHashSlotNum", "registerNameServerPeriod",
	"waitSecondsForService",
}

// haJVMFlags fit six JVMs on two cores and a few GB (DESIGN.md, measured).
// The layout runs only tests, whose restarts happen under steady traffic on
// a saturated machine: C1 alone (TieredStopAtLevel=1) boots a name server
// on 3.5-3.8 s of CPU instead of 5.5-6.4, a broker on 5-8 instead of
// 8.7-11, and the test traffic does not need C2's code.
var haJVMFlags = []string{"-Xms256m", "-Xmx256m", "-XX:MaxDirectMemorySize=128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}

// restartBootNice is the niceness a restarted process boots at, and leaves
// once booted. Deployed, each process has its own machine; here all six
// share two cores with the store, two nodes and the traffic of a failover
// run, and a restarted name server, at an even share, took 50 s to boot on
// 3.5 s of CPU. A failover test measures what the cluster does while a
// part is away, not how long a starved JVM takes to come back.
const restartBootNice = -10

// RocketMQHA is the deployed layout of bootstrap/deploy/rocketmq on loopback:
// two name servers and broker groups broker-a and broker-b, each a master and
// a slave, RocketMQ 5.3.3 from tests/infra/rocketmq/lib. Each process has its
// own directory (configuration, store, logs) under one temporary directory,
// and keeps its ports and store across Kill and Start.
type RocketMQHA struct {
	dir, lib, java string
	ports          map[HARole]int // listenPort of each process

	mu     sync.Mutex
	procs  map[HARole]*process
	starts map[HARole]int

	// Logf, when set, hears how long each phase of a Start took: the
	// restarts are what a failover run waits on.
	Logf func(format string, args ...any)
}

// LaunchRocketMQHA writes the layout's configuration, generated from
// bootstrap/deploy/rocketmq, starts all six processes and returns once both
// name servers route all four brokers. The caller must Close it.
func LaunchRocketMQHA() (*RocketMQHA, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	lib, java, err := rocketMQInstall(root)
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("chatd-rocketmq-ha-")
	if err != nil {
		return nil, err
	}
	r := &RocketMQHA{dir: dir, lib: lib, java: java, ports: map[HARole]int{},
		procs: map[HARole]*process{}, starts: map[HARole]int{}}
	for _, role := range HARoles {
		if role.IsNamesrv() {
			r.ports[role] = FreePort()
			continue
		}
		// listenPort-2 (fast remoting), listenPort, listenPort+1 (HA).
		base, err := freePortRange(4)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		r.ports[role] = base + 2
	}
	if err := r.writeConfigs(filepath.Join(root, "bootstrap", "deploy", "rocketmq")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Name servers first, then the four brokers at once: one after the
	// other, six JVMs took 95 s to boot on two cores.
	for _, roles := range [][]HARole{HARoles[:2], HARoles[2:]} {
		errs := make([]error, len(roles))
		var wg sync.WaitGroup
		for i, role := range roles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = r.Start(role)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			r.Close()
			return nil, err
		}
	}
	// Started together, neither broker of a group waited for the other.
	for _, group := range []string{"broker-a", "broker-b"} {
		r.mu.Lock()
		master := r.procs[HARole(group+"-master")]
		r.mu.Unlock()
		if err := waitFor(master, 60*time.Second, func() bool { return r.slaveLinks(group) > 0 }); err != nil {
			r.Close()
			return nil, fmt.Errorf("%s's slave never connected to its master: %w", group, err)
		}
	}
	return r, nil
}

func (r *RocketMQHA) roleDir(role HARole) string { return filepath.Join(r.dir, string(role)) }

// shippedConf is the file of bootstrap/deploy/rocketmq a role runs.
func shippedConf(role HARole) string {
	if role.IsNamesrv() {
		return "namesrv.conf"
	}
	return string(role) + ".conf"
}

func (r *RocketMQHA) writeConfigs(deployDir string) error {
	for _, role := range HARoles {
		shipped, err := os.ReadFile(filepath.Join(deployDir, shippedConf(role)))
		if err != nil {
			return err
		}
		conf, err := rewriteConf(shipped, r.overrides(role))
		if err != nil {
			return fmt.Errorf("%s: %w", shippedConf(role), err)
		}
		if err := os.MkdirAll(r.roleDir(role), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r.roleDir(role), "server.conf"), conf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (r *RocketMQHA) overrides(role HARole) map[string]string {
	o := map[string]string{"listenPort": fmt.Sprint(r.ports[role]), "bindAddress": "127.0.0.1"}
	if role.IsNamesrv() {
		// A restarted name server answers routes once every broker has
		// registered again: one registerNameServerPeriod below, and a margin.
		o["waitSecondsForService"] = "15"
		return o
	}
	store := filepath.Join(r.roleDir(role), "store")
	o["haListenPort"] = fmt.Sprint(r.ports[role] + 1)
	o["namesrvAddr"] = r.NamesrvAddr()
	o["brokerIP1"], o["brokerIP2"] = "127.0.0.1", "127.0.0.1"
	o["storePathRootDir"], o["storePathCommitLog"] = store, filepath.Join(store, "commitlog")
	// As the single-broker infra: checkback in seconds, a small store, and
	// a registration every 10 s so that a restarted broker is routed soon.
	o["transactionCheckInterval"], o["transactionTimeOut"] = "5000", "3000"
	o["transactionOpBatchInterval"] = fmt.Sprint(transactionOpBatch.Milliseconds())
	o["mappedFileSizeCommitLog"], o["maxIndexNum"], o["maxHashSlotNum"] = "67108864", "100000", "10000"
	o["registerNameServerPeriod"] = "10000"
	return o
}

// rewriteConf returns a shipped key=value file with the values of overrides
// put in place, and those it lacks appended. Comments and every other line
// stay as shipped. An override outside haRewrittenKeys is an error: the point
// is that the tested configuration is the shipped one.
func rewriteConf(shipped []byte, overrides map[string]string) ([]byte, error) {
	for k := range overrides {
		if !slices.Contains(haRewrittenKeys, k) {
			return nil, fmt.Errorf("%s is not a setting the tests may rewrite", k)
		}
	}
	var out bytes.Buffer
	done := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(shipped))
	for sc.Scan() {
		line := sc.Text()
		if k, _, ok := confLine(line); ok {
			if v, rewrite := overrides[k]; rewrite {
				line = k + "=" + v
				done[k] = true
			}
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out.WriteString("# Added for the test layout on loopback:\n")
	for _, k := range haRewrittenKeys {
		if v, ok := overrides[k]; ok && !done[k] {
			out.WriteString(k + "=" + v + "\n")
		}
	}
	return out.Bytes(), nil
}

// confLine splits a key=value line of a broker or name server file; comments
// and blank lines are not settings.
func confLine(line string) (key, value string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", "", false
	}
	k, v, ok := strings.Cut(line, "=")
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}

// ParseConf reads the settings of a key=value file into a map.
func ParseConf(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := confLine(line); ok {
			m[k] = v
		}
	}
	return m
}

// ConfPath is the generated configuration a role runs with.
func (r *RocketMQHA) ConfPath(role HARole) string {
	return filepath.Join(r.roleDir(role), "server.conf")
}

// NamesrvAddrs are both name servers' host:port.
func (r *RocketMQHA) NamesrvAddrs() []string {
	return []string{loopback(r.ports[Namesrv1]), loopback(r.ports[Namesrv2])}
}

// NamesrvAddr lists both name servers as CHAT_ROCKETMQ_NAMESRV and the
// brokers' namesrvAddr take them: "a;b".
func (r *RocketMQHA) NamesrvAddr() string { return strings.Join(r.NamesrvAddrs(), ";") }

// Addr is the host:port a role listens on.
func (r *RocketMQHA) Addr(role HARole) string { return loopback(r.ports[role]) }

// Pid is the running process of a role, or 0 if it is down.
func (r *RocketMQHA) Pid(role HARole) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.procs[role]; p != nil && !p.exited() {
		return p.pid()
	}
	return 0
}

// Pids maps each running role to its process id.
func (r *RocketMQHA) Pids() map[HARole]int {
	m := map[HARole]int{}
	for _, role := range HARoles {
		if pid := r.Pid(role); pid != 0 {
			m[role] = pid
		}
	}
	return m
}

// LogPath is the console output of a role's latest start; the servers' own
// logs are under its directory's logs/rocketmqlogs.
func (r *RocketMQHA) LogPath(role HARole) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.procs[role]; p != nil {
		return p.logPath
	}
	return ""
}

// Kill ends a role's process at once (kill -9) and returns once it is
// reaped and, for a broker, once no live name server routes it any more (a
// name server drops a broker when its connection closes, a moment later):
// a client that asks for routes after Kill learns that the broker is gone.
// The store stays for Start. Killing a role that is down is a no-op.
func (r *RocketMQHA) Kill(role HARole) error {
	r.mu.Lock()
	p := r.procs[role]
	r.mu.Unlock()
	p.kill()
	if role.IsNamesrv() {
		return nil
	}
	return r.waitRoutes(15*time.Second, func(routes map[string]map[int64]string) bool {
		return routes[role.BrokerName()][role.brokerID()] == ""
	})
}

// Start starts a role that is down, on its ports and store, and returns once
// it serves: a name server once it routes every live broker; a broker once
// every live name server routes it and, if the other of its group is alive,
// the slave has connected to the master for replication (until then a
// master with inSyncReplicas=2 fails sends). Starting a running role is a
// no-op; different roles may start concurrently.
func (r *RocketMQHA) Start(role HARole) error {
	if r.alive(role) {
		return nil
	}
	began := time.Now()
	phase := func(name string) {
		if r.Logf != nil {
			r.Logf("%s %s %v after its start began", role, name, time.Since(began).Round(time.Millisecond))
		}
	}
	if !role.IsNamesrv() {
		// A name server drops a killed broker when its connection closes,
		// asynchronously; a drop processed after the restarted broker
		// (same address) registered would unroute it until its next
		// registration.
		if err := r.waitRoutes(60*time.Second, func(routes map[string]map[int64]string) bool {
			return routes[role.BrokerName()][role.brokerID()] == ""
		}); err != nil {
			return fmt.Errorf("%s: still routed after its death: %w", role, err)
		}
	}
	waitForLink := !role.IsNamesrv() && r.alive(role.peer())
	slaveLinks := 0
	if waitForLink {
		slaveLinks = r.slaveLinks(role.BrokerName())
	}
	r.mu.Lock()
	r.starts[role]++
	restart := r.starts[role] > 1
	logPath := filepath.Join(r.roleDir(role), fmt.Sprintf("console.%d.out", r.starts[role]))
	r.mu.Unlock()
	mainClass := "org.apache.rocketmq.broker.BrokerStartup"
	if role.IsNamesrv() {
		mainClass = "org.apache.rocketmq.namesrv.NamesrvStartup"
	}
	argv := javaCommand(r.java, r.lib, r.roleDir(role), haJVMFlags, mainClass, r.ConfPath(role))
	if restart {
		argv = append([]string{"nice", "-n", strconv.Itoa(restartBootNice)}, argv...)
	}
	p, err := startProcess(procSpec{
		name:    "rocketmq " + string(role),
		argv:    argv,
		dir:     r.roleDir(role),
		logPath: logPath,
	})
	if err != nil {
		return err
	}
	err = waitFor(p, 120*time.Second, func() bool {
		return logContains(p.logPath, "boot success") && portOpen(r.Addr(role))
	})
	if err != nil {
		p.kill()
		return err
	}
	if restart {
		if err := p.renice(0); err != nil {
			p.kill()
			return fmt.Errorf("%s: back to nice 0 after its boot: %w", role, err)
		}
	}
	phase("booted")
	r.mu.Lock()
	r.procs[role] = p
	r.mu.Unlock()
	// A broker registers at start and every registerNameServerPeriod (10 s):
	// a restarted name server knows the brokers only from their next one.
	err = r.waitRoutes(60*time.Second, func(routes map[string]map[int64]string) bool {
		for _, b := range HARoles {
			if !b.IsNamesrv() && r.alive(b) && routes[b.BrokerName()][b.brokerID()] != r.Addr(b) {
				return false
			}
		}
		return true
	})
	if err == nil {
		phase("routed")
	}
	if err == nil && waitForLink {
		// The slave learns where its master replicates from a
		// registration and then retries every 5 s: 15 s after a start
		// was seen here.
		err = waitFor(p, 60*time.Second, func() bool { return r.slaveLinks(role.BrokerName()) > slaveLinks })
		if err == nil {
			phase("replicating")
		}
	}
	if err != nil {
		p.kill()
		return fmt.Errorf("%s booted but %w; last output:\n%s", role, err, p.logTail(20))
	}
	return nil
}

func (r *RocketMQHA) alive(role HARole) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[role]
	return p != nil && !p.exited()
}

// peer is the other broker of a role's group.
func (r HARole) peer() HARole {
	if r.brokerID() == 0 {
		return HARole(r.BrokerName() + "-slave")
	}
	return HARole(r.BrokerName() + "-master")
}

// slaveLink is the slave's log line of a replication connection made; the
// failed attempts print the same words followed by "failed".
var slaveLink = regexp.MustCompile(`HAClient connect to master [0-9.]+:[0-9]+\n`)

// slaveLinks counts the replication connections a group's slave has made
// to its master, from the slave's store log (kept across its restarts).
func (r *RocketMQHA) slaveLinks(brokerName string) int {
	b, _ := os.ReadFile(filepath.Join(r.roleDir(HARole(brokerName+"-slave")), "logs", "rocketmqlogs", "store.log"))
	return len(slaveLink.FindAll(b, -1))
}

// waitRoutes polls every live name server for the brokers it routes until
// ok holds for each.
func (r *RocketMQHA) waitRoutes(timeout time.Duration, ok func(routes map[string]map[int64]string) bool) error {
	var failed error
	err := eventually.Poll(timeout, func() (bool, error) {
		failed = nil
		for _, ns := range []HARole{Namesrv1, Namesrv2} {
			if !r.alive(ns) {
				continue
			}
			// Before any broker has registered with it, the route is empty.
			route, err := QueryRoute(r.Addr(ns), probeTopic)
			if err != nil {
				failed = fmt.Errorf("%s: %w", ns, err)
				break
			}
			if !ok(route.BrokerAddrs()) {
				failed = fmt.Errorf("%s routes %v", ns, route.BrokerAddrs())
				break
			}
		}
		return failed == nil, nil
	})
	if err != nil {
		return fmt.Errorf("routes not as expected after %v: %v", timeout, failed)
	}
	return nil
}

// CreateTopic creates topic (8 read and write queues) on every live broker,
// slaves included: a fresh slave copies its master's topics only about 60 s
// after it starts, and until then a consumer reading from it finds no topic.
// It returns once every live name server routes the topic's queues on both
// groups. Creating an existing topic is harmless.
func (r *RocketMQHA) CreateTopic(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver(r.NamesrvAddrs())))
	if err != nil {
		return fmt.Errorf("rocketmq admin: %w", err)
	}
	defer adm.Close()
	for _, role := range HARoles {
		if role.IsNamesrv() || !r.alive(role) {
			continue
		}
		// The admin client ignores the broker's response code; the route
		// below is the proof for the masters.
		if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(r.Addr(role))); err != nil {
			return fmt.Errorf("create topic %s on %s: %w", topic, role, err)
		}
	}
	for _, ns := range []HARole{Namesrv1, Namesrv2} {
		if !r.alive(ns) {
			continue
		}
		for {
			route, err := QueryRoute(r.Addr(ns), topic)
			if err == nil && route.WriteQueues("broker-a") > 0 && route.WriteQueues("broker-b") > 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("topic %s not routed on both groups by %s: %v %v", topic, ns, route, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// Dir is the temporary directory holding every role's configuration, store
// and logs.
func (r *RocketMQHA) Dir() string { return r.dir }

// Stop kills every process (kill -9), brokers first; Start brings each back.
func (r *RocketMQHA) Stop() {
	for i := len(HARoles) - 1; i >= 0; i-- {
		r.mu.Lock()
		p := r.procs[HARoles[i]]
		r.mu.Unlock()
		p.kill()
	}
}

// Close kills every process and deletes the stores and logs.
func (r *RocketMQHA) Close() {
	r.Stop()
	os.RemoveAll(r.dir)
}

// LogTails is the last lines of every process's console, for a failed
// test's log.
func (r *RocketMQHA) LogTails() string {
	var b strings.Builder
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, role := range HARoles {
		fmt.Fprintf(&b, "%s:\n%s\n", role, r.procs[role].logTail(10))
	}
	return b.String()
}
