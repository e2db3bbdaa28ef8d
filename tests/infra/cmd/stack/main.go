// Command stack runs the test infrastructure outside `go test`, for `make
// run-cluster`, load benchmarks and poking at the servers by hand: PostgreSQL
// with FerretDB in front (a MongoDB-wire store) and a RocketMQ name server and
// broker, all on free 127.0.0.1 ports with their data in temporary
// directories. Once everything serves it prints one KEY=value line per
// address on stdout (shell- and env-file-friendly) and then READY=1; it
// stops every server and deletes the data on SIGINT or SIGTERM. If stack
// itself is killed, the kernel kills the servers (Pdeathsig).
//
// With -nodes it also starts bin/chatd once per listed address, as a cluster
// on that store and broker (`make run-cluster`), and stops them first.
//
// With -ha, RocketMQ is the deployed layout instead of one broker: two name
// servers and broker-a/broker-b, each a master and a slave, configured from
// bootstrap/deploy/rocketmq (`make run-cluster-ha`). -pids writes one
// "ROLE PID" line per process, so that an operator can kill -9 one and
// rehearse a failure; SIGHUP restarts the RocketMQ processes found dead, on
// their stores, and rewrites the file, which is removed on the way out.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/evchat/chatd/tests/infra"
)

func main() {
	withMongo := flag.Bool("mongo", true, "start PostgreSQL and FerretDB")
	withRocketMQ := flag.Bool("rocketmq", true, "start the RocketMQ name server and broker")
	topics := flag.String("topics", "", "comma-separated RocketMQ topics to create once the broker is up")
	nodeTopic := flag.String("node-topic", "chat_events", "the nodes' CHAT_ROCKETMQ_TOPIC, created with -ha -nodes")
	nodes := flag.String("nodes", "", "comma-separated host:port of chatd nodes to start on the stack (needs -mongo and -rocketmq)")
	ha := flag.Bool("ha", false, "RocketMQ as deployed: two name servers, two masters, two slaves")
	pidsPath := flag.String("pids", "", "write one ROLE PID line per process to this file")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("stack: ")
	// The admin client that creates topics logs every step at info.
	rlog.SetLogLevel("warn")

	// Servers start before the signal handler is checked, so a signal during
	// start-up must still reach the cleanup below rather than kill us with
	// the servers only Pdeathsig-protected.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if err := infra.StopWithParent(); err != nil {
		log.Fatal(err)
	}

	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) {
		closeAll()
		log.Fatal(err)
	}

	var (
		mongoURI, namesrv string
		fixedPids         []rolePid
		// pids lists every process now; with -ha, SIGHUP (restartDead)
		// restarts the RocketMQ processes an operator killed.
		pids        = func() []rolePid { return fixedPids }
		restartDead func() error
	)
	if *withMongo {
		start := time.Now()
		m, err := infra.LaunchMongo()
		if err != nil {
			fail(err)
		}
		closers = append(closers, m.Close)
		log.Printf("mongo (ferretdb+postgres) up in %v", time.Since(start).Round(time.Millisecond))
		mongoURI = m.URI()
		fmt.Printf("MONGO_URI=%s\nPOSTGRES_URL=%s\nFERRETDB_PPROF=%s\n", m.URI(), m.Postgres().URL(), m.PprofURL())
		fixedPids = append(fixedPids, rolePid{"store", m.Pid()}, rolePid{"postgres", m.Postgres().Pid()})
	}
	if *withRocketMQ && *ha {
		start := time.Now()
		r, err := infra.LaunchRocketMQHA()
		if err != nil {
			fail(err)
		}
		closers = append(closers, r.Close)
		r.Logf = log.Printf
		log.Printf("rocketmq layout (2 name servers, 2 masters, 2 slaves) up in %v, in %s", time.Since(start).Round(time.Millisecond), r.Dir())
		// The shipped brokers do not create topics on a client's whim, and
		// chatd's own topic must exist before its consumers start.
		for _, topic := range append(strings.Split(*topics, ","), *nodeTopic) {
			if topic = strings.TrimSpace(topic); topic == "" || (topic == *nodeTopic && *nodes == "") {
				continue
			}
			if err := r.CreateTopic(topic); err != nil {
				fail(err)
			}
		}
		namesrv = r.NamesrvAddr()
		fmt.Printf("ROCKETMQ_NAMESRV=%s\n", namesrv)
		for _, role := range infra.HARoles {
			fmt.Printf("ROCKETMQ_%s=%s\n", strings.ToUpper(strings.ReplaceAll(string(role), "-", "_")), r.Addr(role))
		}
		before := len(fixedPids)
		pids = func() []rolePid {
			out := append([]rolePid{}, fixedPids[:before]...)
			for _, role := range infra.HARoles {
				out = append(out, rolePid{string(role), r.Pid(role)})
			}
			return append(out, fixedPids[before:]...)
		}
		restartDead = func() error {
			for _, role := range infra.HARoles {
				if r.Pid(role) == 0 {
					log.Printf("restarting %s", role)
					if err := r.Start(role); err != nil {
						return err
					}
				}
			}
			return nil
		}
	} else if *withRocketMQ {
		r, err := infra.LaunchRocketMQ()
		if err != nil {
			fail(err)
		}
		closers = append(closers, r.Close)
		ns, br := r.StartupTimes()
		log.Printf("rocketmq name server up in %v, broker in %v", ns.Round(time.Millisecond), br.Round(time.Millisecond))
		for _, topic := range strings.Split(*topics, ",") {
			if topic = strings.TrimSpace(topic); topic == "" {
				continue
			}
			if err := r.CreateTopic(topic); err != nil {
				fail(err)
			}
		}
		namesrv = r.NamesrvAddr()
		fmt.Printf("ROCKETMQ_NAMESRV=%s\nROCKETMQ_BROKER=%s\n", r.NamesrvAddr(), r.BrokerAddr())
		fixedPids = append(fixedPids, rolePid{"namesrv", r.NamesrvPid()}, rolePid{"broker", r.BrokerPid()})
	}
	if *nodes != "" {
		if !*withMongo || !*withRocketMQ {
			fail(fmt.Errorf("-nodes needs -mongo and -rocketmq"))
		}
		stops, nodePids, err := startNodes(strings.Split(*nodes, ","), mongoURI, namesrv)
		closers = append(closers, stops...)
		if err != nil {
			fail(err)
		}
		fixedPids = append(fixedPids, nodePids...)
	}
	if *pidsPath != "" {
		if err := writePids(*pidsPath, pids()); err != nil {
			fail(err)
		}
		closers = append([]func(){func() { _ = os.Remove(*pidsPath) }}, closers...)
		log.Printf("pids in %s; kill -HUP %d restarts the RocketMQ processes found dead", *pidsPath, os.Getpid())
	}
	fmt.Println("READY=1")

	for s := range sig {
		if s != syscall.SIGHUP {
			log.Printf("%v: stopping", s)
			break
		}
		if restartDead == nil {
			continue
		}
		if err := restartDead(); err != nil {
			log.Printf("restart: %v", err)
		}
		if *pidsPath != "" {
			if err := writePids(*pidsPath, pids()); err != nil {
				log.Printf("pids: %v", err)
			}
		}
	}
	closeAll()
}

// startNodes starts one chatd per address, all sharing one secret so a token
// from either node works on both, and returns their stops (even on error)
// and pids.
func startNodes(addrs []string, mongoURI, namesrv string) ([]func(), []rolePid, error) {
	bin, err := infra.ChatdBinary()
	if err != nil {
		return nil, nil, err
	}
	logDir, err := os.MkdirTemp("", "chatd-cluster-logs-")
	if err != nil {
		return nil, nil, err
	}
	var pids []rolePid
	stops := []func(){func() { _ = os.RemoveAll(logDir) }}
	env := []string{"CHAT_MONGO_URI=" + mongoURI, "CHAT_ROCKETMQ_NAMESRV=" + namesrv,
		"CHAT_AUTH_SECRET=" + strings.Repeat("run-cluster-dev-secret-", 2)}
	for i, addr := range addrs {
		name := fmt.Sprintf("node%d", i+1)
		// Broadcast offsets are files named after the node; this broker is
		// new, so the node's offsets must be too, or it starts from
		// positions the broker never had.
		nodeEnv := append(slices.Clip(env), "rocketmq.client.localOffsetStoreDir="+filepath.Join(logDir, "offsets-"+name))
		n, err := infra.LaunchChatd(bin, name, strings.TrimSpace(addr), logDir, nodeEnv)
		if err != nil {
			return stops, pids, err
		}
		stops = append(stops, n.Stop)
		pids = append(pids, rolePid{name, n.Pid()})
		log.Printf("chatd %s serving http://%s (log %s)", name, n.Addr(), n.LogPath())
		fmt.Printf("CHATD_%d=http://%s\n", i+1, n.Addr())
	}
	return stops, pids, nil
}

type rolePid struct {
	role string
	pid  int
}

// writePids writes the file whole under a temporary name first, so that a
// reader never sees half of it.
func writePids(path string, pids []rolePid) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for _, p := range pids {
		fmt.Fprintf(&b, "%s %d\n", p.role, p.pid)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
