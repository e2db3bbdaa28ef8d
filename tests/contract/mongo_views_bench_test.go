package contract_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// BenchmarkViewSaves measures the read model's writes for one message's
// life as the projector makes them under chat load: the message commit and
// the recipient's delivered marker on it, folded into the conversation's
// view and saved in batches of distinct conversations; either one save per
// commit, or one for both, as when the projector's gathering brings them
// into one batch. Besides time, it reports the CPU the server spent per
// message (FerretDB and PostgreSQL, from /proc), the figure that is steady
// on a shared machine.
func BenchmarkViewSaves(b *testing.B) {
	b.Run("save per commit", func(b *testing.B) { benchViewSaves(b, 1) })
	b.Run("save per message", func(b *testing.B) { benchViewSaves(b, 2) })
}

func benchViewSaves(b *testing.B, commitsPerSave int) {
	const conversations, batch = 64, 16
	rm, ctx := mongo.NewReadModel(freshDatabase(b)), context.Background()
	views := make([]ports.ConversationView, conversations)
	initial := make([]ports.ViewSave, conversations)
	for k := range views {
		from, to := user.ID(fmt.Sprintf("u%da", k)), user.ID(fmt.Sprintf("u%db", k))
		id := conversation.IDFor(from, to)
		views[k] = ports.ConversationView{Conversation: string(id)}
		application.Apply(&views[k], ports.Commit{Stream: conversation.MessagesStream(id), Version: 1,
			Events: []conversation.Event{conversation.ConversationStarted{Conversation: id, Participants: [2]user.ID{from, to}}}})
		initial[k] = ports.ViewSave{View: views[k].Clone()}
	}
	save := func(saves []ports.ViewSave) {
		errs, err := rm.SaveMany(ctx, saves)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
	}
	save(initial)
	saved := make([]uint64, conversations)
	for k, v := range views {
		saved[k] = v.Revision()
	}
	cpu := newServerCPU(b)
	b.ResetTimer()
	var saves []ports.ViewSave
	for i := range 2 * b.N {
		k := (i / 2) % conversations
		application.Apply(&views[k], nextCommit(views[k], i%2 == 1))
		if (i+1)%commitsPerSave != 0 {
			continue
		}
		saves = append(saves, ports.ViewSave{View: views[k].Clone(), Expected: saved[k]})
		saved[k] = views[k].Revision()
		if len(saves) == batch || i == 2*b.N-1 {
			save(saves)
			saves = saves[:0]
		}
	}
	b.StopTimer()
	cpu.report(b)
}

// nextCommit is the commit that follows on v: a message to the second
// member, or that member's delivered marker on the last one.
func nextCommit(v ports.ConversationView, marker bool) ports.Commit {
	id := conversation.ID(v.Conversation)
	from, to := v.Participants[0], v.Participants[1]
	if marker {
		return ports.Commit{Stream: conversation.ReceiptsStream(id), Version: v.ReceiptsVersion + 1,
			Events: []conversation.Event{conversation.DeliveredUpTo{Conversation: id, User: to, Seq: v.LastSeq}}}
	}
	seq := v.LastSeq + 1
	return ports.Commit{Stream: conversation.MessagesStream(id), Version: v.MessagesVersion + 1,
		Events: []conversation.Event{conversation.MessagePosted{Conversation: id, Seq: seq,
			MessageID: message.ID(fmt.Sprintf("m_%s_%d", id, seq)), From: from, To: to,
			Body: "a message of a typical length, some forty characters", SentAt: time.Now()}}}
}

// serverCPU reads the CPU time of FerretDB and of PostgreSQL with its
// backends, which serve FerretDB's pooled connections for the whole run.
type serverCPU struct {
	ferretdb, postgres int
	startF, startP     int64
}

func newServerCPU(b *testing.B) *serverCPU {
	s := &serverCPU{ferretdb: mongoServer.server.Pid(), postgres: mongoServer.server.Postgres().Pid()}
	s.startF, s.startP = s.ticks(b)
	return s
}

// report adds the servers' milliseconds of CPU per op to b's results.
func (s *serverCPU) report(b *testing.B) {
	f, p := s.ticks(b)
	const msPerTick = 10 // USER_HZ is 100 on Linux
	b.ReportMetric(float64((f-s.startF)*msPerTick)/float64(b.N), "ferretdb-ms/op")
	b.ReportMetric(float64((p-s.startP)*msPerTick)/float64(b.N), "postgres-ms/op")
}

func (s *serverCPU) ticks(b *testing.B) (ferretdb, postgres int64) {
	_, ferretdb = statTicks(b, s.ferretdb)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if ppid, t := statTicks(b, pid); pid == s.postgres || ppid == s.postgres {
				postgres += t
			}
		}
	}
	return ferretdb, postgres
}

// statTicks returns a process's parent and its user and system time with
// that of its reaped children; a process gone meanwhile counts nothing.
func statTicks(b *testing.B, pid int) (ppid int, ticks int64) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// Fields after the command name, which may hold spaces: state, ppid,
	// ..., utime, stime, cutime, cstime are the 1st, 2nd and 12th-15th.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 15 {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	ppid, _ = strconv.Atoi(f[1])
	for _, v := range f[11:15] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return ppid, ticks
}
