package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/evchat/chatd/tests/load"
)

// printTable writes the machine and the table of issue 16's targets.
func printTable(w io.Writer, o options, r *results) {
	fmt.Fprintf(w, "\nMachine: %s; load average %s before the run, %s after.\n\n", r.machine, r.loadBefore, r.loadAfter)
	fmt.Fprintln(w, "| target (issue 16) | goal | measured | met |")
	fmt.Fprintln(w, "|---|---|---|---|")
	row := func(target, goal, measured, met string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", target, goal, measured, met)
	}
	stackRows(row, o, r)
	embeddedRows(row, o, r)
	idleRows(row, o, r)

	g := guarantees(r.embTail, r.embFixed, r.embStep, r.stFixed, r.stStep)
	row("PROTOCOL.md guarantees under all the chatd load above: gapless seq, in order, once per session; an acked message is delivered",
		"0 violations", g.text(), yes(g.ok()))
	fmt.Fprintf(w, "\n\"Held\": every message delivered within the drain, none twice or out of order, no error frame, no dropped session, e2e p99 under the limit. "+
		"Latencies are from the scheduled send time (open loop) to the recipient's `message` frame. Fixed-rate runs follow unmeasured load at their rate: %v on the embedded node and the relay, %v for the floor and the real stack, whose broker's JVM compiles its hot paths under its first load. "+
		"Ack-after-durable and read-your-writes (issue 9) are checked by tests/e2e, not here.\n", embeddedPrelude, o.stackPrelude)
	printCPUPerMessage(w, r.cpuCaptures(o))
}

// stackRows are the real stack's targets, and its floor for reference.
func stackRows(row func(target, goal, measured, met string), o options, r *results) {
	stackFixed := fmt.Sprintf("Real stack at %s msg/s, senders on node 1 and recipients on node 2", commas(o.stackFixed))
	goal := "≤ 1.5 ms (issue 16's start: about 3.8)"
	if c, ok := r.stackCapture(o); !ok {
		row(stackFixed+": total CPU per message", goal, notMeasured(firstErr(r.stackErr, r.stFixedErr)), yes(false))
	} else if ms, ok := c.total(); !ok {
		row(stackFixed+": total CPU per message", goal, "not measured: a process's CPU could not be read, or nothing was delivered", yes(false))
	} else {
		row(stackFixed+": total CPU per message", goal, fmt.Sprintf("%.2f ms (%s delivered in %v)", ms, commas(float64(c.delivered)), c.over), yes(ms <= 1.5))
	}

	target := fmt.Sprintf("Real stack, two nodes, senders on node 1 and recipients on node 2: highest rate held (no loss, no duplicates, p99 < %s)", load.Ms(o.p99Limit))
	m, met := maxHeldCell(r.stStep, firstErr(r.stackErr, r.stStErr), 1000)
	row(target, "≥ 1,000 msg/s", m, met)

	floorOK := r.floorErr == nil && r.stackErr == nil && r.floor != nil && r.floor.E2E.N > 0
	goal = "p50 and p99 ≤ 3 × the raw floor (stretch: 1.5 ×)"
	if floorOK {
		goal = fmt.Sprintf("≤ 3 × the raw floor: p50 ≤ %s, p99 ≤ %s (stretch, 1.5 ×: %s, %s)", load.Ms(r.floor.E2E.P50*3), load.Ms(r.floor.E2E.P99*3),
			load.Ms(r.floor.E2E.P50*3/2), load.Ms(r.floor.E2E.P99*3/2))
	}
	if s, err := single(r.stFixed, firstErr(r.stackErr, r.stFixedErr)); err != nil {
		row(stackFixed+": latency", goal, notMeasured(err), yes(false))
	} else {
		cell, verdict := latencyCell(s), "no floor to compare with"
		if s.E2E.N == 0 {
			verdict = yes(false)
		} else if floorOK {
			p50, p99 := ratio(s.E2E.P50, r.floor.E2E.P50), ratio(s.E2E.P99, r.floor.E2E.P99)
			cell += fmt.Sprintf("; %.1f × and %.1f × the floor (stretch met: %s)", p50, p99, yes(s.Lost == 0 && p50 <= 1.5 && p99 <= 1.5))
			verdict = yes(s.Lost == 0 && p50 <= 3 && p99 <= 3)
		}
		row(stackFixed+": latency", goal, cell, verdict)
	}

	target = fmt.Sprintf("Raw floor on the same broker: RocketMQ transactional send (adapters/rocketmq.Publisher, local transaction commits at once) to a BROADCASTING Subscriber, %s msg/s", commas(o.floorRate))
	if err := firstErr(r.stackErr, r.floorErr); err != nil || r.floor == nil {
		row(target, "reference", notMeasured(err), "—")
	} else {
		f := r.floor
		row(target, "reference", fmt.Sprintf("p50 %s, p99 %s (p99.9 %s, max %s; %d sent, %d received, %d failed)",
			load.Ms(f.E2E.P50), load.Ms(f.E2E.P99), load.Ms(f.E2E.P999), load.Ms(f.E2E.Max), f.Sent, f.Received, f.Failed), "—")
	}
}

// embeddedRows are the embedded node's targets: its tail against the bare
// relay at the same load, its highest rate held and its latency at 1,000.
func embeddedRows(row func(target, goal, measured, met string), o options, r *results) {
	t := o.tail
	tailLoad := fmt.Sprintf("%s msg/s over %d pairs, %d-byte messages, open loop", commas(t.rate), t.pairs, t.body)
	relay, relayErr := single(r.relayTail, r.relayTailErr)
	relayOK := relayErr == nil && relay.E2E.N > 0 && relay.Lost == 0
	goal := "p99 ≤ 1.5 × the bare relay's"
	if relayOK {
		goal = fmt.Sprintf("p99 ≤ 1.5 × the bare relay's: ≤ %s", load.Ms(relay.E2E.P99*3/2))
	}
	target := "Embedded node's tail at " + tailLoad
	if s, err := single(r.embTail, r.embTailErr); err != nil {
		row(target, goal, notMeasured(err), yes(false))
	} else {
		cell, verdict := latencyCell(s), "no relay to compare with"
		if s.E2E.N == 0 {
			verdict = yes(false)
		} else if relayOK {
			cell += fmt.Sprintf("; %.1f × and %.1f × the relay's p50 and p99", ratio(s.E2E.P50, relay.E2E.P50), ratio(s.E2E.P99, relay.E2E.P99))
			verdict = yes(s.Lost == 0 && s.E2E.P99*2 <= relay.E2E.P99*3)
		}
		row(target, goal, cell, verdict)
	}
	target = "Embedded node's floor: a bare gorilla/websocket relay (tests/load/relay: no store, no bus, no auth) at " + tailLoad
	if relayErr != nil {
		row(target, "reference", notMeasured(relayErr), "—")
	} else {
		row(target, "reference", latencyCell(relay), "—")
	}

	target = fmt.Sprintf("Embedded default, one node: highest rate held (no loss, p99 < %s)", load.Ms(o.p99Limit))
	m, met := maxHeldCell(r.embStep, r.embStErr, 5000)
	row(target, "≥ 5,000 msg/s", m, met)

	goal = "p50 < 1 ms, p99 < 5 ms"
	target = fmt.Sprintf("Embedded at %s msg/s", commas(o.embeddedFixed))
	if s, err := single(r.embFixed, r.embFixedErr); err != nil {
		row(target, goal, notMeasured(err), yes(false))
	} else {
		ok := s.E2E.P50 < time.Millisecond && s.E2E.P99 < 5*time.Millisecond && s.Lost == 0
		row(target, goal, latencyCell(s), yes(ok))
	}
}

// idleKiBGoal is issue 16's goal for an idle session's RSS.
const idleKiBGoal = 6

func idleRows(row func(target, goal, measured, met string), o options, r *results) {
	target := fmt.Sprintf("Idle sessions: server RSS per session at %s sessions", commas(float64(o.idleSessions)))
	goal := fmt.Sprintf("≤ %d KiB (issue 16's start: 9.4-10.5)", idleKiBGoal)
	if r.idleErr != nil || r.idle == nil {
		row(target, goal, notMeasured(r.idleErr), yes(false))
	} else {
		i := r.idle
		row(target, goal, fmt.Sprintf("%.1f KiB (VmRSS %.1f → %.1f MiB with %s sessions open)",
			i.KiBPerSession, float64(i.RSSBefore)/1024, float64(i.RSSAfter)/1024, commas(float64(i.Opened))),
			yes(i.Opened == o.idleSessions && i.KiBPerSession <= idleKiBGoal))
	}
	target = "Idle sessions: every one still answers ping"
	goal = fmt.Sprintf("%s of %s", commas(float64(o.idleSessions)), commas(float64(o.idleSessions)))
	if r.idleErr != nil || r.idle == nil {
		row(target, goal, notMeasured(r.idleErr), yes(false))
	} else {
		i := r.idle
		row(target, goal, fmt.Sprintf("%s of %s opened, %s answered; dropped during the hold: %s; open errors: %s",
			commas(float64(i.Opened)), commas(float64(i.Sessions)), commas(float64(i.Pongs)), load.FormatCounts(i.Dropped), load.FormatCounts(i.OpenErrors)),
			yes(i.Opened == o.idleSessions && i.Pongs == i.Opened))
	}
}

// maxHeldCell describes a stepped run: the highest rate held, and why the
// next step did not hold.
func maxHeldCell(rep *load.RateReport, err error, goal float64) (cell, met string) {
	if rep == nil || len(rep.Steps) == 0 {
		return notMeasured(err), yes(false)
	}
	var parts []string
	best, held := rep.MaxHeld()
	if held {
		parts = append(parts, fmt.Sprintf("%s msg/s (p50 %s, p99 %s)", commas(best.Rate), load.Ms(best.E2E.P50), load.Ms(best.E2E.P99)))
	} else {
		parts = append(parts, "no step held")
	}
	if fail, failed := rep.FirstFailure(); failed {
		parts = append(parts, fmt.Sprintf("%s msg/s did not hold: %s", commas(fail.Rate), whyNot(fail)))
	} else {
		parts = append(parts, "the highest step offered")
	}
	if err != nil {
		parts = append(parts, notMeasured(err))
	}
	return strings.Join(parts, "; "), yes(held && best.Rate >= goal)
}

// whyNot lists what made a step fail.
func whyNot(s load.StepResult) string {
	var why []string
	if s.Lost > 0 {
		why = append(why, fmt.Sprintf("%d of %d lost (%d of them acked)", s.Lost, s.Sent, s.LostAcked))
	}
	for _, c := range []struct {
		n    int
		what string
	}{{s.Duplicates, "duplicates"}, {s.Reordered, "reordered"}, {s.SeqViolations, "seq violations"}} {
		if c.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(s.Errors) > 0 {
		why = append(why, "errors "+load.FormatCounts(s.Errors))
	}
	why = append(why, fmt.Sprintf("p99 %s", load.Ms(s.E2E.P99)))
	if s.Achieved > 0 && s.Achieved < 0.95*s.Rate {
		why = append(why, fmt.Sprintf("only %.0f msg/s offered", s.Achieved))
	}
	return strings.Join(why, ", ")
}

func single(rep *load.RateReport, err error) (load.StepResult, error) {
	if rep == nil || len(rep.Steps) == 0 {
		if err == nil {
			err = fmt.Errorf("no result")
		}
		return load.StepResult{}, err
	}
	return rep.Steps[0], nil
}

func latencyCell(s load.StepResult) string {
	if s.E2E.N == 0 {
		c := fmt.Sprintf("no message delivered: %d sent, %d acked, %d lost", s.Sent, s.Acked, s.Lost)
		if len(s.Errors) > 0 {
			c += ", errors " + load.FormatCounts(s.Errors)
		}
		return c
	}
	c := fmt.Sprintf("p50 %s, p99 %s (p90 %s, p99.9 %s, max %s); ack p50 %s, p99 %s; %d sent, %d lost",
		load.Ms(s.E2E.P50), load.Ms(s.E2E.P99), load.Ms(s.E2E.P90), load.Ms(s.E2E.P999), load.Ms(s.E2E.Max),
		load.Ms(s.Ack.P50), load.Ms(s.Ack.P99), s.Sent, s.Lost)
	if len(s.Errors) > 0 {
		c += ", errors " + load.FormatCounts(s.Errors)
	}
	return c
}

type guaranteeTally struct {
	messages, seq, reordered, dups, undelivered, missing, unverified int
}

func guarantees(reps ...*load.RateReport) guaranteeTally {
	var g guaranteeTally
	for _, rep := range reps {
		if rep == nil {
			continue
		}
		for _, s := range rep.Steps {
			g.messages += s.Sent
			g.seq += s.SeqViolations
			g.reordered += s.Reordered
			g.dups += s.Duplicates
		}
		g.undelivered += rep.AckedUndelivered
		g.missing += rep.AckedMissing
		g.unverified += rep.AckedUnverified
	}
	return g
}

func (g guaranteeTally) text() string {
	return fmt.Sprintf("over %s messages: %d seq gaps or repeats, %d out of order, %d duplicates; %d acked messages never delivered live, of them %d missing from sync, %d unverified (sync unanswered)",
		commas(float64(g.messages)), g.seq, g.reordered, g.dups, g.undelivered, g.missing, g.unverified)
}

// ok: an acked message that missed its live delivery but is in the store
// is a delivery failure, already in its step's row, not a broken
// guarantee; a seq, order, duplicate or durability fault is one anywhere.
func (g guaranteeTally) ok() bool {
	return g.messages > 0 && g.seq == 0 && g.reordered == 0 && g.dups == 0 && g.missing == 0 && g.unverified == 0
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func notMeasured(err error) string {
	if err == nil {
		return "not measured"
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	msg = strings.ReplaceAll(msg, "|", "/")
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return "not measured: " + msg
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// commas formats a whole number with thousands separators.
func commas(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// reportLog prints how many warnings and errors a node logged, by message,
// with the first line of each: what the server said while it was loaded.
func reportLog(path, name string) {
	f, err := os.Open(path)
	if err != nil {
		logf("%s log: %v", name, err)
		return
	}
	defer f.Close()
	counts := map[string]int{}
	first := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		key := logMessage(line)
		if counts[key] == 0 {
			first[key] = line
		}
		counts[key]++
	}
	if len(counts) == 0 {
		logf("%s log (%s): no warnings or errors", name, path)
		return
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	logf("%s log (%s): warnings and errors by message:", name, path)
	for _, k := range keys {
		line := first[k]
		if len(line) > 400 {
			line = line[:400] + "…"
		}
		fmt.Fprintf(os.Stderr, "  %6d × %s\n         first: %s\n", counts[k], k, line)
	}
}

// logMessage is a slog text line's level and msg, the key warnings are
// counted by.
func logMessage(line string) string {
	level := "WARN"
	if strings.Contains(line, "level=ERROR") {
		level = "ERROR"
	}
	i := strings.Index(line, "msg=")
	if i < 0 {
		return level
	}
	rest := line[i+4:]
	if strings.HasPrefix(rest, `"`) {
		if j := strings.Index(rest[1:], `"`); j >= 0 {
			return level + " " + rest[1:j+1]
		}
	}
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		rest = rest[:j]
	}
	return level + " " + rest
}
