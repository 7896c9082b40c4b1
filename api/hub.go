package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// EventLog is the events table as the hub follows it.
type EventLog interface {
	EventsSince(ctx context.Context, after int64, limit int) ([]domain.Event, error)
	LastEventSeq(ctx context.Context) (int64, error)
}

// HubRing is how many recent events the hub keeps in memory. Event
// retention keeps at least as many, whatever their age, so a client can
// resume from anywhere in the ring.
const HubRing = 4096

const (
	hubPage     = 500 // events read per query
	hubInterval = 5 * time.Second
)

// errPruned says the events a client asked to resume from were pruned
// (seq has no gaps otherwise, so a gap after the cursor means exactly that).
type errPruned struct {
	after  int64 // the client's cursor
	oldest int64 // the oldest event kept
}

func (e *errPruned) Error() string {
	return fmt.Sprintf("events %d-%d were pruned; reload the state and reconnect without ?after", e.after+1, e.oldest-1)
}

// Hub fans committed events out to websocket clients. One reader follows
// the events table into a ring of recent events, so any number of
// dashboards cost the database one query per change; a client resuming from
// further back pages through the table at its own pace until it reaches the
// ring. Nothing is queued per client, so a slow client slows only itself.
//
// Seq order is commit order (migration 0001), so reading "seq > cursor"
// never skips an event.
type Hub struct {
	log     EventLog
	logger  *slog.Logger
	wake    chan struct{}
	stopped chan struct{}
	clients atomic.Int64

	mu      sync.Mutex
	ready   bool           // last is known
	last    int64          // newest seq read
	ring    []domain.Event // ascending, contiguous, ends at last
	changed chan struct{}  // closed and replaced when last rises
	// wire holds the ring's events (by index) encoded and framed once for
	// every client, back to back in arenas: a change costs one encoding,
	// not one per client, and a client behind by several events sends
	// them with one write, without copying them.
	wire   []wireRef
	framer framer // catchUp's alone

	writeBufs sync.Pool // gorilla's write buffers, for all websockets
}

// wireArena is the size of the arenas the hub frames events in: a few
// hundred events each, so a client's batch seldom spans two (two writes
// then).
const wireArena = 256 << 10

// wireRef is an event's websocket frame: arena[off:end]. An event that
// could not be encoded has none (arena nil).
type wireRef struct {
	arena    []byte
	off, end int
}

// follows reports whether w's frame comes right after r's in memory.
func (r wireRef) follows(w wireRef) bool {
	return r.arena != nil && w.arena != nil && &r.arena[0] == &w.arena[0] && w.off == r.end
}

// framer encodes events and frames them back to back in arenas of size
// bytes (or one event's, when larger). A frame, once written, never
// changes: clients read it without a lock.
type framer struct {
	size  int
	arena []byte
	used  int
}

func (f *framer) frame(ev domain.Event) (wireRef, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return wireRef{}, err
	}
	n := frameLen(len(b))
	if f.used+n > len(f.arena) {
		f.arena, f.used = make([]byte, max(f.size, n)), 0
	}
	off := f.used
	f.used += len(appendFrame(f.arena[off:off], b))
	return wireRef{arena: f.arena, off: off, end: f.used}, nil
}

// NewHub returns a hub over log; start it with Run.
func NewHub(log EventLog, logger *slog.Logger) *Hub {
	return &Hub{log: log, logger: logger, wake: make(chan struct{}, 1),
		stopped: make(chan struct{}), changed: make(chan struct{}), framer: framer{size: wireArena}}
}

// Notify tells the hub an event was committed (seq 0: maybe several were
// missed). It never blocks.
func (h *Hub) Notify(seq int64) {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run follows the events table until ctx ends, on Notify and on a timer, so
// a missed notification only delays an event. When it returns, every
// websocket client is told the server is going away.
func (h *Hub) Run(ctx context.Context) error {
	defer close(h.stopped)
	tick := time.NewTicker(hubInterval)
	defer tick.Stop()
	for {
		if err := h.catchUp(ctx); err != nil && ctx.Err() == nil {
			h.logger.Warn("events hub: cannot read events, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		case <-tick.C:
		}
	}
}

func (h *Hub) catchUp(ctx context.Context) error {
	h.mu.Lock()
	ready, last := h.ready, h.last
	h.mu.Unlock()
	if !ready {
		// Start at the newest event: clients resuming from older ones read
		// the table themselves.
		seq, err := h.log.LastEventSeq(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		h.ready, h.last = true, seq
		h.broadcastLocked()
		h.mu.Unlock()
		last = seq
	}
	for {
		evs, err := h.log.EventsSince(ctx, last, hubPage)
		if err != nil || len(evs) == 0 {
			return err
		}
		wire := h.frame(evs)
		h.mu.Lock()
		if evs[0].Seq != last+1 {
			// Pruned while the hub lagged behind (only a long stall can do
			// that): the ring must stay contiguous, so it starts again here,
			// in a new array (clients may hold slices of the old one).
			h.ring, h.wire = nil, nil
		}
		if len(h.ring)+len(evs) > HubRing {
			drop := max(0, len(h.ring)+len(evs)-HubRing)
			h.ring = append(h.ring[:0:0], h.ring[drop:]...)
			h.wire = append(h.wire[:0:0], h.wire[drop:]...)
		}
		h.ring = append(h.ring, evs...)
		h.wire = append(h.wire, wire...)
		h.last = evs[len(evs)-1].Seq
		last = h.last
		h.broadcastLocked()
		h.mu.Unlock()
		if len(evs) < hubPage {
			return nil
		}
	}
}

func (h *Hub) broadcastLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// Clients is the number of websocket clients connected.
func (h *Hub) Clients() int64 { return h.clients.Load() }

// latest is the seq a client that asks for no history starts after.
func (h *Hub) latest(ctx context.Context) (int64, error) {
	h.mu.Lock()
	ready, last := h.ready, h.last
	h.mu.Unlock()
	if ready {
		return last, nil
	}
	return h.log.LastEventSeq(ctx)
}

// frame encodes and frames evs for every client.
func (h *Hub) frame(evs []domain.Event) []wireRef {
	wire := make([]wireRef, len(evs))
	for i, ev := range evs {
		var err error
		if wire[i], err = h.framer.frame(ev); err != nil {
			h.logger.Warn("events hub: cannot encode event", "seq", ev.Seq, "err", err)
		}
	}
	return wire
}

// next returns up to limit events after cursor, from the ring when it
// reaches back that far and from the table otherwise; from the ring, with
// their frames (wire, nil from the table). With none to give, it returns a
// channel that is closed when there may be more. When events after cursor
// were pruned it returns an *errPruned, unless cursor is 0 (a client
// asking from the first event gets the oldest kept on).
func (h *Hub) next(ctx context.Context, cursor int64, limit int) (evs []domain.Event, wire []wireRef, changed <-chan struct{}, err error) {
	h.mu.Lock()
	if !h.ready || cursor >= h.last {
		ch := h.changed
		h.mu.Unlock()
		return nil, nil, ch, nil
	}
	if len(h.ring) > 0 && cursor+1 >= h.ring[0].Seq {
		i := sort.Search(len(h.ring), func(i int) bool { return h.ring[i].Seq > cursor })
		j := min(len(h.ring), i+limit)
		evs, wire = h.ring[i:j], h.wire[i:j]
		h.mu.Unlock()
		return evs, wire, nil, nil
	}
	ch := h.changed
	h.mu.Unlock()
	evs, err = h.log.EventsSince(ctx, cursor, limit)
	switch {
	case err != nil:
		return nil, nil, nil, err
	case len(evs) == 0:
		// Only a table emptied behind the hub's back gets here: wait for a
		// change rather than asking again at once.
		return nil, nil, ch, nil
	case cursor > 0 && evs[0].Seq > cursor+1:
		return nil, nil, nil, &errPruned{after: cursor, oldest: evs[0].Seq}
	}
	return evs, nil, nil, nil
}
