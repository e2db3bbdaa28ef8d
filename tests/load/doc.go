// Package load drives chatd nodes as many clients would, over the WebSocket
// protocol of PROTOCOL.md, and measures what they get back: the load client
// behind cmd/chatload (one run against nodes already up) and cmd/benchload
// (`make bench-load`: starts the embedded node, then the real stack, and
// prints the performance table of issue 16; `make bench-scale`: N nodes on
// one broker and store, and what delivery costs each, issue 15).
//
// Three measurements:
//
//   - RunRate: N sender/recipient pairs, each sender and recipient a session
//     of its own user, possibly on different nodes. Sends are open-loop: every
//     pair's sends are scheduled by the clock at a share of the total rate and
//     never wait for acks, and the body of each carries its scheduled send time
//     and a per-pair sequence number. Latencies are measured from that
//     scheduled time, so a client or server that falls behind shows up in the
//     figures instead of silently slowing the offered rate (coordinated
//     omission). A run is a list of steps; a stepped search stops at the first
//     step that does not hold (loss, duplicates, disorder, errors, a dropped
//     session or p99 over the limit).
//   - RunIdle: N sessions of distinct users that only stay open; the server's
//     VmRSS before and after gives the memory per idle session, and a ping on
//     every session afterwards checks they all still answer.
//   - RSSKiB and RaiseFileLimit: the /proc and rlimit helpers both need.
//
// Only loopback addresses are accepted, and every loop is bounded in count
// and time: a run stops by itself whatever the server does.
package load
