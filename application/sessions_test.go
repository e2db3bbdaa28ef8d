package application_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
)

func TestRegisterAtMostLetsOneRacerTakeTheLastPlace(t *testing.T) {
	const limit = 20
	sessions := application.NewSessions(memory.Clock{})
	for i := range limit - 1 {
		unregister, err := sessions.RegisterAtMost(&fakeSession{id: fmt.Sprint(i), user: "alice"}, limit)
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		t.Cleanup(unregister)
	}
	t.Cleanup(sessions.Register(&fakeSession{id: "bob", user: "bob"}))

	const racers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     int
		refused int
	)
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			unregister, err := sessions.RegisterAtMost(&fakeSession{id: fmt.Sprint("racer-", i), user: "alice"}, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
				t.Cleanup(unregister)
			case errors.Is(err, application.ErrTooManySessions):
				refused++
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if won != 1 || refused != racers-1 {
		t.Fatalf("%d racers registered and %d were refused; want 1 and %d", won, refused, racers-1)
	}
	if n := sessions.Count(); n != limit+1 {
		t.Fatalf("%d sessions registered, want %d (alice's %d and bob's)", n, limit+1, limit)
	}
}
