package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestResumePruned: a client resuming from events that retention deleted
// is told so, on the hub and on the websocket, instead of getting the
// oldest kept ones as if nothing were missing; from the ring or from the
// oldest kept event it resumes as always.
func TestResumePruned(t *testing.T) {
	table := &eventTable{}
	table.add(HubRing + 1000)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := NewHub(table, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	last := int64(HubRing + 1000)
	table.add(10)
	h.Notify(0)
	drain(t, h, last, last+10) // the hub has caught up
	table.prune(1000)

	for _, c := range []struct {
		cursor, want int64 // want 0: pruned
	}{{5, 0}, {999, 0}, {1000, 1001}, {0, 1001}, {last, last + 1}} {
		evs, _, _, err := h.next(ctx, c.cursor, hubPage)
		var pruned *errPruned
		switch {
		case c.want == 0 && (!errors.As(err, &pruned) || pruned.after != c.cursor || pruned.oldest != 1001):
			t.Errorf("next(%d) = %d events, %v; want events %d-1000 pruned", c.cursor, len(evs), err, c.cursor+1)
		case c.want != 0 && (err != nil || len(evs) == 0 || evs[0].Seq != c.want):
			t.Errorf("next(%d) = %d events, %v; want them from %d", c.cursor, len(evs), err, c.want)
		}
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &Server{Hub: h, Logger: logger}
		if err := s.events(w, r); err != nil {
			writeError(w, r, logger, err)
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?after=7"
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != wsClosePruned || !strings.Contains(ce.Text, "events 8-1000 were pruned") {
		t.Fatalf("resuming after a pruned event: %v; want close %d naming events 8-1000", err, wsClosePruned)
	}

	// The hub itself stalled past a prune: its ring starts again after the
	// gap and stays contiguous.
	table.add(5)
	table.prune(last + 12)
	h.Notify(0)
	drain(t, h, last+12, last+15)
	h.mu.Lock()
	first, n := h.ring[0].Seq, len(h.ring)
	h.mu.Unlock()
	if first != last+13 || n != 3 {
		t.Errorf("after a gap the ring holds %d events from %d; want 3 from %d", n, first, last+13)
	}
}
