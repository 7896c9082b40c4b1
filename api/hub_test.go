package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// eventTable is the events table in memory, with a switch to make it fail
// and a count of reads: the faults and the query count the real table
// cannot show on demand (TestEventStream runs the hub on the real one).
type eventTable struct {
	mu     sync.Mutex
	evs    []domain.Event
	pruned int64 // events 1 to pruned are gone
	down   bool
	reads  int
}

// prune deletes events 1 to through, as retention does.
func (t *eventTable) prune(through int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruned = through
}

func (t *eventTable) add(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < n; i++ {
		t.evs = append(t.evs, domain.Event{Seq: int64(len(t.evs) + 1), Kind: "container.running"})
	}
}

func (t *eventTable) EventsSince(_ context.Context, after int64, limit int) ([]domain.Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reads++
	if t.down {
		return nil, errors.New("database down")
	}
	after = max(after, t.pruned)
	if after >= int64(len(t.evs)) {
		return nil, nil
	}
	return append([]domain.Event(nil), t.evs[after:min(int64(len(t.evs)), after+int64(limit))]...), nil
}

// QueryEvents serves the unfiltered listing only.
func (t *eventTable) QueryEvents(ctx context.Context, q domain.EventQuery) ([]domain.Event, error) {
	return t.EventsSince(ctx, q.After, q.Limit)
}

func (t *eventTable) LastEventSeq(context.Context) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.down {
		return 0, errors.New("database down")
	}
	return int64(len(t.evs)), nil
}

func (t *eventTable) set(down bool) (reads int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.down = down
	return t.reads
}

// follow reads from the hub as a client does, until it has seq to.
func follow(h *Hub, cursor, to int64) error {
	deadline := time.After(2 * hubInterval)
	for cursor < to {
		evs, wire, changed, err := h.next(context.Background(), cursor, hubPage)
		if err != nil {
			return fmt.Errorf("after %d: %w", cursor, err)
		}
		if wire != nil && len(wire) != len(evs) {
			return fmt.Errorf("after %d: %d events, %d frames", cursor, len(evs), len(wire))
		}
		for i, ev := range evs {
			if ev.Seq != cursor+1 {
				return fmt.Errorf("after %d came %d", cursor, ev.Seq)
			}
			if wire != nil {
				// The frame is the event's, whole.
				want, _ := json.Marshal(ev)
				if got := wire[i].arena[wire[i].off:wire[i].end]; !bytes.Equal(got, appendFrame(nil, want)) {
					return fmt.Errorf("event %d framed as %q", ev.Seq, got)
				}
			}
			cursor = ev.Seq
		}
		if changed != nil {
			select {
			case <-changed:
			case <-deadline:
				return fmt.Errorf("stuck after %d, want %d", cursor, to)
			}
		}
	}
	return nil
}

func drain(t *testing.T, h *Hub, cursor, to int64) {
	t.Helper()
	if err := follow(h, cursor, to); err != nil {
		t.Fatal(err)
	}
}

func TestHub(t *testing.T) {
	table := &eventTable{}
	table.add(10) // history from before the start
	h := NewHub(table, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Many waiting clients cost one read per change, not one each.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := follow(h, 10, 13); err != nil {
				t.Error(err)
			}
		}()
	}
	if start, _ := h.latest(ctx); start != 10 {
		t.Fatalf("a client without ?after starts after %d, want 10", start)
	}
	time.Sleep(50 * time.Millisecond) // the clients wait
	before := table.set(false)
	table.add(3)
	h.Notify(13)
	wg.Wait()
	if reads := table.set(false) - before; reads > 3 {
		t.Errorf("50 clients cost %d reads of the table for one change", reads)
	}

	// History older than the ring is paged from the table.
	drain(t, h, 0, 13)
	table.add(HubRing + 700)
	h.Notify(0)
	last := int64(13 + HubRing + 700)
	drain(t, h, 13, last)
	h.mu.Lock()
	ringLen, first := len(h.ring), h.ring[0].Seq
	h.mu.Unlock()
	if ringLen != HubRing || first != last-HubRing+1 {
		t.Fatalf("ring holds %d events from %d, want %d from %d", ringLen, first, HubRing, last-HubRing+1)
	}

	// The database goes down: clients inside the ring go on, one from
	// further back gets an error to resume with later, and new events
	// flow once it is back; a missed notification heals on the timer.
	table.set(true)
	drain(t, h, last-100, last)
	if _, _, _, err := h.next(ctx, 5, hubPage); err == nil {
		t.Error("a client from before the ring got no error with the database down")
	}
	table.set(false)
	table.add(2)
	h.Notify(last + 2)
	drain(t, h, last, last+2)
	table.add(1) // no Notify
	drain(t, h, last+2, last+3)
}
