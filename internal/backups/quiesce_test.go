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
