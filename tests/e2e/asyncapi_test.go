package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/asyncapi"
)

// wireLog keeps every frame the suite's clients wrote and read, and every
// close code they were sent, so that TestMain can hold them all to
// adapters/websocket/asyncapi.yaml once the tests are done: what the suite
// saw of the server is what the document promises. A test that means to
// break the protocol writes with SendInvalid, which is left out.
var wireLog frameLog

type frameLog struct {
	mu     sync.Mutex
	frames []loggedFrame
	closes []loggedClose
}

type loggedFrame struct {
	dir     asyncapi.Direction
	session string
	text    bool
	data    []byte
}

type loggedClose struct {
	session string
	code    int
	reason  string
}

func (l *frameLog) add(dir asyncapi.Direction, session string, messageType int, data []byte) {
	f := loggedFrame{dir: dir, session: session, text: messageType == websocket.TextMessage, data: bytes.Clone(data)}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, f)
}

// addClose logs how a session's read ended, when the server closed it.
// 1006 is gorilla's word for a connection that ended without a close
// frame (a node killed, say), never a code on the wire, so it is not logged.
func (l *frameLog) addClose(session string, err error) {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code == websocket.CloseAbnormalClosure {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closes = append(l.closes, loggedClose{session: session, code: ce.Code, reason: ce.Text})
}

// maxShownFailures bounds the problems a failed check prints, each with
// its first frame.
const maxShownFailures = 20

// check holds every logged frame to the schema of its direction and type,
// and every close code to the document's list. It returns what failed, one
// example frame per distinct failure, and a summary of what it checked.
func (l *frameLog) check() (summary string, err error) {
	doc, err := asyncapi.Load()
	if err != nil {
		return "", err
	}
	start := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	verdicts := map[string]error{} // by direction and frame: many frames repeat (pings, pongs)
	failures := map[string]int{}   // by problem, which names no value of the frame
	examples := map[string]string{}
	fail := func(problem, example string) {
		if failures[problem]++; failures[problem] == 1 {
			examples[problem] = example
		}
	}
	seen := map[asyncapi.Direction]map[string]bool{asyncapi.FromClient: {}, asyncapi.FromServer: {}}
	for _, f := range l.frames {
		if !f.text {
			fail(fmt.Sprintf("a %s frame that is not a text frame", f.dir), fmt.Sprintf("%s, %s: %q", f.session, f.dir, shorten(f.data)))
			continue
		}
		key := string(f.dir) + "\x00" + string(f.data)
		verdict, done := verdicts[key]
		if !done {
			verdict = doc.Check(f.dir, f.data)
			verdicts[key] = verdict
		}
		if verdict != nil {
			fail(string(f.dir)+" frames break "+asyncapi.Rule(verdict),
				fmt.Sprintf("%s, %s frame: %s\n%s", f.session, f.dir, shorten(f.data), verdict))
			continue
		}
		seen[f.dir][frameType(f.data)] = true
	}
	for _, c := range l.closes {
		if !doc.DocumentsCloseCode(c.code) {
			fail(fmt.Sprintf("close code %d is not in the document's x-close-codes", c.code),
				fmt.Sprintf("%s: closed with %d %q", c.session, c.code, c.reason))
		}
	}
	var unseen []string
	for _, dir := range []asyncapi.Direction{asyncapi.FromClient, asyncapi.FromServer} {
		for _, typ := range doc.FrameTypes(dir) {
			if !seen[dir][typ] {
				unseen = append(unseen, fmt.Sprintf("%s %q", dir, typ))
			}
		}
	}
	never := "none"
	if len(unseen) > 0 {
		never = strings.Join(unseen, ", ")
	}
	summary = fmt.Sprintf("%d frames (%d distinct) and %d closes held to the AsyncAPI document in %v; its frames the suite never saw: %s",
		len(l.frames), len(verdicts), len(l.closes), time.Since(start).Round(time.Millisecond), never)
	if len(failures) == 0 {
		return summary, nil
	}
	problems := slices.Sorted(maps.Keys(failures))
	var report strings.Builder
	for i, problem := range problems {
		if i == maxShownFailures {
			fmt.Fprintf(&report, "\n(and %d more problems)", len(problems)-i)
			break
		}
		fmt.Fprintf(&report, "\n%s (%d times), first:\n    %s", problem, failures[problem],
			strings.ReplaceAll(examples[problem], "\n", "\n    "))
	}
	return summary, fmt.Errorf("the suite saw frames or closes that break the AsyncAPI document:%s", report.String())
}

// maxShownBytes bounds each frame a failed check prints; a sync page can
// be tens of kilobytes, and the error names the place that broke.
const maxShownBytes = 600

func shorten(data []byte) string {
	if len(data) <= maxShownBytes {
		return string(data)
	}
	return fmt.Sprintf("%s… (%d bytes)", data[:maxShownBytes], len(data))
}

// frameType is a frame's `type`, "" for the seed's untyped send; the frame
// has passed its schema, so it is a JSON object.
func frameType(data []byte) string {
	var f struct{ Type string }
	_ = json.Unmarshal(data, &f)
	return f.Type
}
