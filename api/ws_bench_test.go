package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkFanout: clients on the websocket handler (loopback TCP, the hub
// over an in-memory table), each iteration a burst of events committed 1 ms
// apart until every client has read them all: wall time and CPU time per
// delivery. In one process, so the clients' reading is counted too; for a
// quick profile of the fan-out (-cpuprofile), bench/ws.sh measures moor
// alone.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanout(b, n, 20) })
	}
}

func benchFanout(b *testing.B, clients, burst int) {
	table := &eventTable{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := NewHub(table, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	s := &Server{Hub: h, Logger: logger, Limits: Limits{Websockets: clients}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.events(w, r); err != nil {
			writeError(w, r, logger, err)
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?after=0"
	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	cpu0 := processCPU()
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range burst {
					if _, _, err := c.ReadMessage(); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		for range burst {
			table.add(1)
			h.Notify(0)
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*clients*burst), "ns/delivery")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*clients*burst), "cpu-ns/delivery")
}

// processCPU is the CPU time this process has used (user and system), in
// nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
