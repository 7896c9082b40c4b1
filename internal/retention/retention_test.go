package retention

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type call struct {
	before time.Time
	keep   int64
	batch  int
}

type fakeStore struct {
	mu    sync.Mutex
	calls []call
	err   error
	done  chan struct{} // gets a value per call
}

func (f *fakeStore) PruneEvents(_ context.Context, before time.Time, keep int64, batch int) (int64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{before, keep, batch})
	err := f.err
	f.mu.Unlock()
	f.done <- struct{}{}
	return 3, err
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestRun: a pass at start, one per period, failures retried; the cutoff is
// MaxAge ago and keep and batch are passed through.
func TestRun(t *testing.T) {
	f := &fakeStore{err: errors.New("database down"), done: make(chan struct{})}
	p := New(f, Config{MaxAge: time.Hour, Keep: 4096, Every: 10 * time.Millisecond}, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error)
	start := time.Now()
	go func() { ended <- p.Run(ctx) }()
	for range 3 {
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("no pruning pass")
		}
	}
	cancel()
	go func() {
		for range f.done { // a pass may be under way
		}
	}()
	if err := <-ended; err != nil {
		t.Fatalf("Run = %v", err)
	}
	close(f.done)
	c := f.calls[0]
	if d := start.Add(-time.Hour).Sub(c.before); d < -time.Second || d > time.Second {
		t.Errorf("cutoff %v; want an hour before the start %v", c.before, start)
	}
	if c.keep != 4096 || c.batch != 5000 {
		t.Errorf("keep %d batch %d; want 4096 and the default 5000", c.keep, c.batch)
	}
}

// TestOff: retention 0 prunes nothing and returns at once.
func TestOff(t *testing.T) {
	f := &fakeStore{done: make(chan struct{}, 1)}
	if err := New(f, Config{}, quiet).Run(context.Background()); err != nil || len(f.calls) != 0 {
		t.Fatalf("Run = %v after %d passes; want nil after none", err, len(f.calls))
	}
}
