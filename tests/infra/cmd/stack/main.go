// Command stack runs the test infrastructure outside `go test`, for `make
// run-cluster`, load benchmarks and poking at the servers by hand: PostgreSQL
// with FerretDB in front (a MongoDB-wire store) and a RocketMQ name server and
// broker, all on free 127.0.0.1 ports with their data in temporary
// directories. Once everything serves it prints one KEY=value line per
// address on stdout (shell- and env-file-friendly) and then READY=1; it
// stops every server and deletes the data on SIGINT or SIGTERM. If stack
// itself is killed, the kernel kills the servers (Pdeathsig).
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/evchat/chatd/tests/infra"
)

func main() {
	withMongo := flag.Bool("mongo", true, "start PostgreSQL and FerretDB")
	withRocketMQ := flag.Bool("rocketmq", true, "start the RocketMQ name server and broker")
	topics := flag.String("topics", "", "comma-separated RocketMQ topics to create once the broker is up")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("stack: ")

	// Servers start before the signal handler is checked, so a signal during
	// start-up must still reach the cleanup below rather than kill us with
	// the servers only Pdeathsig-protected.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

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

	if *withMongo {
		start := time.Now()
		m, err := infra.LaunchMongo()
		if err != nil {
			fail(err)
		}
		closers = append(closers, m.Close)
		log.Printf("mongo (ferretdb+postgres) up in %v", time.Since(start).Round(time.Millisecond))
		fmt.Printf("MONGO_URI=%s\nPOSTGRES_URL=%s\n", m.URI(), m.Postgres().URL())
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
		fmt.Printf("ROCKETMQ_NAMESRV=%s\nROCKETMQ_BROKER=%s\n", r.NamesrvAddr(), r.BrokerAddr())
	}
	fmt.Println("READY=1")

	s := <-sig
	log.Printf("%v: stopping", s)
	closeAll()
}
