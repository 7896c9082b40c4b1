// Command traefik measures moor's Traefik provider on a database already
// holding many routed containers (bench/traefik.sh seeds it):
//
//   - rebuild: time to read the state (one repeatable-read snapshot) and to
//     build and render the configuration; bytes allocated per rebuild; live
//     heap of a held snapshot;
//   - latency: time from a state change (the reconciler's write of a new
//     replica address, committed) to (a) a long-polling client of the
//     endpoint getting the new bytes, (b) the provider plugin, loaded under
//     Yaegi as Traefik loads it, sending them on its channel;
//   - then it serves the endpoint until stdin closes, for wrk, and writes the
//     served bytes to -body so nginx can serve the very same file.
//
// It wires the provider as cmd/moor does (NOTIFY listeners -> Notify), with
// no reconciler: the seeded containers do not exist in Docker.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/provider"
	"github.com/moorhq/moor/traefik/yaegiload"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/traefik:", err)
		os.Exit(1)
	}
}

type result struct {
	Containers   int     `json:"containers"`
	BodyBytes    int     `json:"body_bytes"`
	ReadMS       stats   `json:"read_ms"`
	BuildMS      stats   `json:"render_ms"`
	RebuildMS    stats   `json:"rebuild_ms"`
	AllocMB      float64 `json:"alloc_mb_per_rebuild"`
	LiveHeapMB   float64 `json:"live_heap_mb_snapshot"`
	ServedMS     stats   `json:"change_to_served_ms"`
	PluginMS     stats   `json:"change_to_plugin_ms"`
	Changes      int     `json:"changes"`
	Addr         string  `json:"addr"`
	Token        string  `json:"token"`
	GoMaxProcs   int     `json:"gomaxprocs"`
	MaxRSSMBytes float64 `json:"max_rss_mb"`
}

type stats struct {
	P50, P99, Max, Mean float64
}

func summarize(ms []float64) stats {
	if len(ms) == 0 {
		return stats{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	pct := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return stats{P50: round(pct(0.50)), P99: round(pct(0.99)), Max: round(s[len(s)-1]), Mean: round(sum / float64(len(s)))}
}

func round(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func run() error {
	dbURL := flag.String("db", os.Getenv("MOOR_DATABASE_URL"), "PostgreSQL URL of the seeded database")
	rebuilds := flag.Int("rebuilds", 15, "rebuilds to time")
	changes := flag.Int("changes", 200, "state changes to time")
	addr := flag.String("addr", "127.0.0.1:0", "where to serve the endpoint")
	bodyFile := flag.String("body", "", "write the served bytes here")
	pluginSrc := flag.String("plugin-src", "traefik/moorprovider", "the provider plugin's source")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, *dbURL, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := provider.Options{HostZone: "moor.localhost", EntryPoints: []string{"web"}, FallbackURL: "http://moor:8080"}
	res := result{GoMaxProcs: runtime.GOMAXPROCS(0), Token: "bench-provider-token-0123456789abcdef"}

	// Full rebuild (start, reconnect, timer): read everything, render every
	// fragment, assemble. The read is also timed alone.
	prov, err := provider.New(st, opts, res.Token, 30*time.Second, logger)
	if err != nil {
		return err
	}
	var reads, totals []float64
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < *rebuilds; i++ {
		t0 := time.Now()
		cs, _, err := st.RoutingState(ctx)
		if err != nil {
			return err
		}
		res.Containers = len(cs)
		t1 := time.Now()
		if err := prov.Rebuild(ctx); err != nil {
			return err
		}
		t2 := time.Now()
		reads, totals = append(reads, ms(t1.Sub(t0))), append(totals, ms(t2.Sub(t1)))
	}
	runtime.ReadMemStats(&after)
	builds := make([]float64, len(totals))
	for i := range totals {
		builds[i] = totals[i] - reads[i]
	}
	res.ReadMS, res.BuildMS, res.RebuildMS = summarize(reads), summarize(builds), summarize(totals)
	// Each iteration read twice (alone, then inside Rebuild).
	res.AllocMB = round(float64(after.TotalAlloc-before.TotalAlloc) / float64(*rebuilds) / (1 << 20))
	res.BodyBytes = len(prov.Current().Body)

	// Live heap of the served state: a fresh provider after its first
	// (full) rebuild, which Run does at once.
	prov = nil
	runtime.GC()
	runtime.ReadMemStats(&before)
	prov, err = provider.New(st, opts, res.Token, 30*time.Second, logger)
	if err != nil {
		return err
	}
	// Wired as cmd/moor does: the listener asks for a full rebuild when it
	// connects, folded into Run's first one when it is early.
	go st.ListenRoutes(ctx, prov.Changed)
	go prov.Run(ctx)
	for prov.Current() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	res.LiveHeapMB = round(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20))

	// Serve and wire as cmd/moor does.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	res.Addr = ln.Addr().String()
	mux := http.NewServeMux()
	prov.Handler(mux)
	go (&http.Server{Handler: mux, ConnContext: provider.ConnContext}).Serve(ln)
	endpoint := "http://" + res.Addr + "/api/v1/traefik/config"

	// The long-polling client and the plugin report every new body.
	type seen struct {
		at   time.Time
		body string
	}
	served := make(chan seen, 16)
	go func() {
		etag := ""
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, "GET", endpoint+"?wait=30s", nil)
			req.Header.Set("Authorization", "Bearer "+res.Token)
			if etag != "" {
				req.Header.Set("If-None-Match", etag)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				etag = resp.Header.Get("ETag")
				served <- seen{time.Now(), string(b)}
			}
		}
	}()
	goPath, err := os.MkdirTemp("", "moor-bench-plugin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(goPath)
	pp, err := yaegiload.Load(*pluginSrc, goPath, map[string]string{"endpoint": endpoint, "token": res.Token, "wait": "30s"})
	if err != nil {
		return fmt.Errorf("load plugin: %w", err)
	}
	// Yaegi has read the source: the copy can go now (bench/traefik.sh ends
	// this process with a signal, which skips deferred calls).
	os.RemoveAll(goPath)
	cfgChan := make(chan json.Marshaler)
	if err := pp.Init(); err != nil {
		return err
	}
	if err := pp.Provide(cfgChan); err != nil {
		return err
	}
	defer pp.Stop()
	pushed := make(chan seen, 16)
	go func() {
		for m := range cfgChan {
			b, _ := m.MarshalJSON()
			pushed <- seen{time.Now(), string(b)}
		}
	}()
	// Both have the current configuration before the first change.
	<-served
	<-pushed

	cs, _, err := st.RoutingState(ctx)
	if err != nil {
		return err
	}
	var toServed, toPlugin []float64
	const warmup = 10 // untimed: let start-up rebuilds and caches settle
	for k := 0; k < *changes+warmup; k++ {
		c := cs[(k*7919)%len(cs)]
		ip := fmt.Sprintf("10.250.%d.%d", k/250, 1+k%250)
		marker := "http://" + ip + ":8080"
		in := domain.Instance{Index: 0, RuntimeID: "bench", InternalIP: ip, Status: domain.StatusRunning}
		t0 := time.Now()
		// What the reconciler writes when a replica comes back with a new
		// address: no status change, so no event; the routes trigger fires.
		if err := st.RecordObservation(ctx, domain.Observation{ID: c.ID, Name: c.Name, Status: domain.StatusRunning,
			Instances: []domain.Instance{in}, ObservedGeneration: 1}); err != nil {
			return err
		}
		var gotServed, gotPlugin bool
		timeout := time.After(30 * time.Second)
		for !gotServed || !gotPlugin {
			select {
			case s := <-served:
				if !gotServed && strings.Contains(s.body, marker) {
					gotServed = true
					if k >= warmup {
						toServed = append(toServed, ms(s.at.Sub(t0)))
					}
				}
			case s := <-pushed:
				if !gotPlugin && strings.Contains(s.body, marker) {
					gotPlugin = true
					if k >= warmup {
						toPlugin = append(toPlugin, ms(s.at.Sub(t0)))
					}
				}
			case <-timeout:
				return fmt.Errorf("change %d (%s -> %s) not seen after 30s (served %v, plugin %v)", k, c.Name, ip, gotServed, gotPlugin)
			}
		}
	}
	res.Changes = *changes
	res.ServedMS, res.PluginMS = summarize(toServed), summarize(toPlugin)
	if snap := prov.Current(); *bodyFile != "" && snap != nil {
		if err := os.WriteFile(*bodyFile, snap.Body, 0o644); err != nil {
			return err
		}
	}
	res.MaxRSSMBytes = maxRSS()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	// Serve for wrk until stdin closes.
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// maxRSS is the process's peak resident set (VmHWM), in MB.
func maxRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return round(kb / 1024)
		}
	}
	return 0
}
