package backups

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// eventStore records the events appended; the rest of Store is not used.
type eventStore struct {
	Store
	mu     sync.Mutex
	events []map[string]any
}

func (e *eventStore) AppendEvent(ctx context.Context, kind, containerID, name string, data any) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if kind == "backup.progress" {
		e.events = append(e.events, data.(map[string]any))
	}
	return int64(len(e.events)), nil
}

// TestProgress: a running backup says how many bytes it has read, every
// progressEvery while the count moves, and nothing once stopped.
func TestProgress(t *testing.T) {
	st := &eventStore{}
	s := &Service{store: st, log: slog.Default()}
	var n atomic.Int64
	stop := s.progress(context.Background(), domain.Backup{ID: "b", Volume: "data"}, &n)
	for i := range 5 {
		n.Store(int64(i+1) * 1000)
		time.Sleep(progressEvery + 50*time.Millisecond)
	}
	time.Sleep(2 * progressEvery) // no move: no event
	stop()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.events) < 3 || len(st.events) > 6 {
		t.Fatalf("%d progress events: %v", len(st.events), st.events)
	}
	last := st.events[len(st.events)-1]
	if last["bytes"] != int64(5000) || last["volume"] != "data" || last["id"] != "b" {
		t.Fatalf("last progress event: %v", last)
	}
	for i := 1; i < len(st.events); i++ {
		if st.events[i]["bytes"].(int64) <= st.events[i-1]["bytes"].(int64) {
			t.Fatalf("progress not rising: %v", st.events)
		}
	}
}

// reentrantLocker grants every lock, as one database session's advisory
// locks do to that session.
type reentrantLocker struct{ n atomic.Int64 }

func (l *reentrantLocker) TryLock(ctx context.Context, id string) (context.Context, bool, error) {
	l.n.Add(1)
	return context.Background(), true, nil
}
func (l *reentrantLocker) Unlock(ctx context.Context, id string) { l.n.Add(-1) }

// TestLockExclusive: a restore and a paused backup of one container in this
// process do not both hold its lock, though the session would grant it.
func TestLockExclusive(t *testing.T) {
	l := &reentrantLocker{}
	s := &Service{cfg: Config{Locker: l}, log: slog.Default()}
	if _, ok, _ := s.tryLock(context.Background(), "c1"); !ok {
		t.Fatal("first lock refused")
	}
	if _, ok, _ := s.tryLock(context.Background(), "c1"); ok {
		t.Fatal("second holder in this process got the lock")
	}
	if _, ok, _ := s.tryLock(context.Background(), "c2"); !ok {
		t.Fatal("another container's lock refused")
	}
	s.unlock("c1")
	if _, ok, _ := s.tryLock(context.Background(), "c1"); !ok {
		t.Fatal("lock refused after unlock")
	}
	s.unlock("c1")
	s.unlock("c2")
	if n := l.n.Load(); n != 0 {
		t.Fatalf("%d locks left", n)
	}
}
