// Command ws measures the websocket fan-out dashboards rely on: N clients
// connected to one `moor serve` (GET /api/v1/ws), then a burst of events
// committed in PostgreSQL; for each event and client, the time from just
// before its commit to its arrival, and whether any event was missed. Also
// moor's memory per idle client. Run it through bench/ws.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moorhq/moor/internal/store"
)

func main() {
	url := flag.String("url", "", "moor's base URL")
	key := flag.String("key", "", "API key")
	db := flag.String("db", os.Getenv("MOOR_DATABASE_URL"), "moor's database")
	pid := flag.Int("pid", 0, "moor's process id (for its memory)")
	clients := flag.String("clients", "1000,5000,10000", "client counts, one run each")
	events := flag.Int("events", 200, "events per burst")
	gap := flag.Duration("gap", 5*time.Millisecond, "pause between the events of a burst")
	flag.Parse()
	ctx := context.Background()
	st, err := store.Open(ctx, *db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fail(err)
	}
	defer st.Close()
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fail(err)
		}
		if err := run(ctx, st, *url, *key, *pid, n, *events, *gap); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/ws:", err)
	os.Exit(1)
}

// rssKiB is the resident memory of process pid.
func rssKiB(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

type event struct {
	Seq  int64           `json:"seq"`
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

func run(ctx context.Context, st *store.Store, base, key string, pid, n, events int, gap time.Duration) error {
	rss0 := rssKiB(pid)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/ws"
	hdr := http.Header{"Authorization": {"Bearer " + key}}
	type client struct {
		conn *websocket.Conn
		got  []int64 // delivery latency in µs per burst event, by index
		seen int
		miss atomic.Int64
	}
	cs := make([]*client, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var dialErr atomic.Value
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256}
			c, _, err := d.Dial(wsURL, hdr)
			if err != nil {
				dialErr.Store(err)
				return
			}
			cs[i] = &client{conn: c, got: make([]int64, events)}
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return fmt.Errorf("%d clients: dial: %w", n, err)
	}
	time.Sleep(2 * time.Second)
	rss1 := rssKiB(pid)

	// Readers: each event carries the wall time just before its commit.
	var done sync.WaitGroup
	for _, c := range cs {
		done.Add(1)
		go func() {
			defer done.Done()
			next := int64(-1)
			for c.seen < events {
				c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
				var ev event
				if err := c.conn.ReadJSON(&ev); err != nil {
					c.miss.Add(int64(events - c.seen))
					return
				}
				if ev.Kind != "bench.tick" {
					continue
				}
				var d struct{ I, T int64 }
				json.Unmarshal(ev.Data, &d)
				if next >= 0 && ev.Seq != next {
					c.miss.Add(ev.Seq - next)
				}
				next = ev.Seq + 1
				c.got[d.I] = (time.Now().UnixNano() - d.T) / 1000
				c.seen++
			}
		}()
	}
	for i := range events {
		if _, err := st.AppendEvent(ctx, "bench.tick", "", "", map[string]int64{"i": int64(i), "t": time.Now().UnixNano()}); err != nil {
			return err
		}
		time.Sleep(gap)
	}
	done.Wait()
	var all []int64
	var missed int64
	for _, c := range cs {
		missed += c.miss.Load()
		for _, v := range c.got[:c.seen] {
			all = append(all, v)
		}
		c.conn.Close()
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / 1000
	}
	fmt.Printf("| %d | %d | %.1f ms | %.1f ms | %.1f ms | %d | %.1f MiB | %.1f KiB |\n",
		n, events, q(0.5), q(0.99), q(1.0), missed, float64(rss1)/1024, float64(rss1-rss0)/float64(n))
	time.Sleep(2 * time.Second) // the server lets the closed clients go
	return nil
}
