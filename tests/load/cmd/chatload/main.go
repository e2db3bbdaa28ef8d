// Command chatload is the load client of tests/load, run against chatd
// nodes that are already up (`make run`, `make run-cluster`, or any on
// loopback):
//
//	chatload -mode rate -send-url http://127.0.0.1:8081 -recv-url http://127.0.0.1:8082 -rate 500 -duration 10s
//	chatload -mode step -send-url http://127.0.0.1:8080 -steps 1000,2000,5000,10000,16000
//	chatload -mode idle -send-url http://127.0.0.1:8080 -sessions 15000 -pid $(pgrep -n chatd)
//
// rate offers one open-loop rate; step offers rising rates and stops at the
// first that does not hold; idle opens sessions that stay silent, reports the
// server's VmRSS per session (with -pid) and pings them all. The nodes need
// CHAT_SEND_RATE and CHAT_SEND_BURST above a sender's share of the rate, or
// sends are answered with rate_limited. The whole run is bounded by -timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evchat/chatd/tests/load"
)

func main() {
	os.Exit(run())
}

// run returns the exit status, so that its deferred cancels run before main exits.
func run() int {
	mode := flag.String("mode", "rate", "rate, step or idle")
	sendURL := flag.String("send-url", "http://127.0.0.1:8080", "node of the senders (and of the idle sessions)")
	recvURL := flag.String("recv-url", "", "node of the recipients (default: -send-url)")
	pairs := flag.Int("pairs", 200, "sender/recipient pairs")
	rate := flag.Float64("rate", 1000, "messages per second across all pairs (mode rate)")
	duration := flag.Duration("duration", 10*time.Second, "how long the rate is offered (mode rate)")
	steps := flag.String("steps", "1000,2000,5000,10000,16000", "comma-separated rates (mode step)")
	stepDuration := flag.Duration("step-duration", 5*time.Second, "how long each step lasts (mode step)")
	drain := flag.Duration("drain", 5*time.Second, "how long after a step's last send its messages may arrive")
	p99 := flag.Duration("p99", 100*time.Millisecond, "end-to-end p99 a step must stay under")
	body := flag.Int("body", 64, "message body size in characters")
	sessions := flag.Int("sessions", 15000, "idle sessions (mode idle)")
	workers := flag.Int("workers", 64, "concurrent dials (mode idle)")
	hold := flag.Duration("hold", 10*time.Second, "how long idle sessions stay open before the RSS reading")
	pid := flag.Int("pid", 0, "the node's pid, to read its VmRSS (mode idle)")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound of the whole run")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, *timeout)
	defer cancelTimeout()
	if *recvURL == "" {
		*recvURL = *sendURL
	}
	if limit, err := load.RaiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "chatload: raising the file limit:", err)
	} else if *mode == "idle" && uint64(*sessions)+100 > limit {
		fmt.Fprintf(os.Stderr, "chatload: %d sessions need more files than the limit of %d\n", *sessions, limit)
		return 2
	}

	var err error
	switch *mode {
	case "rate":
		err = runRate(ctx, load.RateConfig{SendURL: *sendURL, RecvURL: *recvURL, Pairs: *pairs,
			Steps: []load.Step{{Rate: *rate, Duration: *duration}}, Drain: *drain, P99Limit: *p99, BodySize: *body, Log: os.Stdout})
	case "step":
		var list []load.Step
		list, err = parseSteps(*steps, *stepDuration)
		if err == nil {
			err = runRate(ctx, load.RateConfig{SendURL: *sendURL, RecvURL: *recvURL, Pairs: *pairs, Steps: list,
				Drain: *drain, P99Limit: *p99, StopAtFailure: true, BodySize: *body, Log: os.Stdout})
		}
	case "idle":
		err = runIdle(ctx, load.IdleConfig{URL: *sendURL, Sessions: *sessions, Workers: *workers, Hold: *hold,
			ServerPID: *pid, PingTimeout: 15 * time.Second, Log: os.Stdout})
	default:
		err = fmt.Errorf("unknown mode %q (rate, step or idle)", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		return 1
	}
	return 0
}

func parseSteps(s string, d time.Duration) ([]load.Step, error) {
	var out []load.Step
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("step %q is not a positive rate", f)
		}
		out = append(out, load.Step{Rate: r, Duration: d})
	}
	if len(out) == 0 {
		return nil, errors.New("no steps")
	}
	return out, nil
}

func runRate(ctx context.Context, cfg load.RateConfig) error {
	fmt.Printf("%d pairs, senders on %s, recipients on %s\n", cfg.Pairs, cfg.SendURL, cfg.RecvURL)
	rep, err := load.RunRate(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("late arrivals %d; acked but never delivered live %d, of them missing from sync %d, unverified %d\n",
		rep.Late, rep.AckedUndelivered, rep.AckedMissing, rep.AckedUnverified)
	if len(cfg.Steps) > 1 {
		if best, ok := rep.MaxHeld(); ok {
			fmt.Printf("highest rate held: %.0f msg/s (e2e p99 %s)\n", best.Rate, load.Ms(best.E2E.P99))
		} else {
			fmt.Println("no step held")
		}
	}
	if fail, ok := rep.FirstFailure(); ok {
		for code, detail := range fail.ErrorDetails {
			fmt.Printf("  first %s: %s\n", code, detail)
		}
	}
	return nil
}

func runIdle(ctx context.Context, cfg load.IdleConfig) error {
	res, err := load.RunIdle(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("sessions open %d of %d, dropped during the hold: %s, answered ping %d\n",
		res.Opened, res.Sessions, load.FormatCounts(res.Dropped), res.Pongs)
	if cfg.ServerPID > 0 {
		fmt.Printf("server VmRSS %d KiB -> %d KiB: %.1f KiB per idle session\n", res.RSSBefore, res.RSSAfter, res.KiBPerSession)
	}
	return nil
}
