package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// movingSource is a state that changes on every read: one running
// container whose address counts up.
type movingSource struct{ n atomic.Int64 }

func (m *movingSource) RoutingState(context.Context) ([]domain.Container, int64, error) {
	n := m.n.Add(1)
	ip := fmt.Sprintf("10.9.%d.%d", n/250%250, n%250+1)
	c := domain.Container{ID: "id-blog", Name: "blog", Status: domain.StatusRunning, Replicas: 1,
		Spec:      domain.Type{ID: "web", Ports: []domain.PortSpec{webPort}},
		Instances: []domain.Instance{{Index: 0, Status: domain.StatusRunning, InternalIP: ip}}}
	return []domain.Container{c}, n, nil
}

func (m *movingSource) RoutingStateOf(ctx context.Context, _ []string) ([]domain.Container, int64, error) {
	return m.RoutingState(ctx)
}

// TestBodyFileSwaps: while snapshots are replaced as fast as they can be,
// every response is whole and is the body its ETag names (a request that
// took an old snapshot never reads a newer or a closed file), and every
// replaced snapshot's file is closed once no request holds it.
func TestBodyFileSwaps(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, &movingSource{})
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && p.Current().file == nil {
		t.Fatal("no body file on Linux: the endpoint would copy every body from the heap")
	}
	url := serve(t, p) + "/api/v1/traefik/config"

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		served  atomic.Int64
		bodies  sync.Map // ETag -> seen
		failure atomic.Pointer[string]
	)
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		failure.CompareAndSwap(nil, &msg)
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					fail("GET: %v", err)
					return
				}
				r := response{resp.StatusCode, resp.Header, nil}
				r.body = make([]byte, 0, resp.ContentLength)
				buf := make([]byte, 32<<10)
				for {
					n, err := resp.Body.Read(buf)
					r.body = append(r.body, buf[:n]...)
					if err != nil {
						break
					}
				}
				resp.Body.Close()
				sum := sha256.Sum256(r.body)
				etag := `"` + hex.EncodeToString(sum[:16]) + `"`
				if r.status != 200 || r.header.Get("ETag") != etag || r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
					fail("status %d, ETag %s for a body whose hash is %s, Content-Length %s for %d bytes",
						r.status, r.header.Get("ETag"), etag, r.header.Get("Content-Length"), len(r.body))
					return
				}
				bodies.Store(etag, true)
				served.Add(1)
			}
		}()
	}
	var snaps []*Snapshot
	distinctSeen := func() int {
		n := 0
		bodies.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	// At least 300 swaps, and on until the readers have seen two snapshots
	// (a loaded machine may starve the readers for a while).
	start := time.Now()
	for i := 0; i < 300 || distinctSeen() < 2 && time.Since(start) < 20*time.Second; i++ {
		snaps = append(snaps, p.Current())
		if err := p.Rebuild(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if msg := failure.Load(); msg != nil {
		t.Fatal(*msg)
	}
	distinct := 0
	bodies.Range(func(_, _ any) bool { distinct++; return true })
	t.Logf("%d responses of %d distinct snapshots during %d swaps", served.Load(), distinct, len(snaps))
	if served.Load() == 0 || distinct < 2 {
		t.Fatalf("the readers saw %d responses of %d snapshots: the test did not race swaps", served.Load(), distinct)
	}
	for i, s := range snaps {
		if s.file == nil {
			continue
		}
		if refs := s.file.refs.Load(); refs != 0 {
			t.Errorf("replaced snapshot %d holds %d references", i, refs)
		}
		if s.file.f.Fd() != ^uintptr(0) {
			t.Errorf("replaced snapshot %d: its file is still open", i)
		}
	}
	if cur := p.Current(); cur.file != nil && cur.file.refs.Load() != 1 {
		t.Errorf("current snapshot holds %d references, want 1", cur.file.refs.Load())
	}
}
