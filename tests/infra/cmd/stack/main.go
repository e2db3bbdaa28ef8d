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
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/evchat/chatd/tests/infra"
)

func main() {
	withMongo := flag.Bool("mongo", true, "start PostgreSQL and FerretDB")
	withRocketMQ := flag.Bool("rocketmq", true, "start the RocketMQ name server and broker")
	topics := flag.String("topics", "", "comma-separated RocketMQ topics to create once the broker is up")
	nodes := flag.String("nodes", "", "comma-separated host:port of chatd nodes to start on the stack (needs -mongo and -rocketmq)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("stack: ")

	// Servers start before the signal handler is checked, so a signal during
	// start-up must still reach the cleanup below rather than kill us with
	// the servers only Pdeathsig-protected.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
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

	var mongoURI, namesrv string
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
	}
	if *withRocketMQ {
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
	}
	if *nodes != "" {
		if !*withMongo || !*withRocketMQ {
			fail(fmt.Errorf("-nodes needs -mongo and -rocketmq"))
		}
		stops, err := startNodes(strings.Split(*nodes, ","), mongoURI, namesrv)
		closers = append(closers, stops...)
		if err != nil {
			fail(err)
		}
	}
	fmt.Println("READY=1")

	s := <-sig
	log.Printf("%v: stopping", s)
	closeAll()
}

// startNodes starts one chatd per address, all sharing one secret so a token
// from either node works on both, and returns their stops (even on error).
func startNodes(addrs []string, mongoURI, namesrv string) ([]func(), error) {
	bin, err := infra.ChatdBinary()
	if err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", "chatd-cluster-logs-")
	if err != nil {
		return nil, err
	}
	stops := []func(){func() { _ = os.RemoveAll(logDir) }}
	env := []string{"CHAT_MONGO_URI=" + mongoURI, "CHAT_ROCKETMQ_NAMESRV=" + namesrv,
		"CHAT_AUTH_SECRET=" + strings.Repeat("run-cluster-dev-secret-", 2)}
	for i, addr := range addrs {
		name := fmt.Sprintf("node%d", i+1)
		// Broadcast offsets are files named after the node; this broker is
		// new, so the node's offsets must be too, or it starts from
		// positions the broker never had.
		nodeEnv := append(env, "rocketmq.client.localOffsetStoreDir="+filepath.Join(logDir, "offsets-"+name))
		n, err := infra.LaunchChatd(bin, name, strings.TrimSpace(addr), logDir, nodeEnv)
		if err != nil {
			return stops, err
		}
		stops = append(stops, n.Stop)
		log.Printf("chatd %s serving http://%s (log %s)", name, n.Addr(), n.LogPath())
		fmt.Printf("CHATD_%d=http://%s\n", i+1, n.Addr())
	}
	return stops, nil
}
