// Command projects measures what projects (issue 11) cost at 1,000
// containers, in two layouts of the same 1,000 containers, each in a
// database of its own (bench/projects.sh makes both):
//
//	A: 100 projects (p000..p099) of 10 containers each;
//	B: 1 project (default) of 1,000 containers.
//
// Each database is migrated and seeded the way moor writes its rows: the
// projects, then each container created through the lifecycle service (as
// POST /api/v1/containers does: spec, env, sealed secrets, ports, host
// names and DNS rows, pending instances, history, event), then observed
// running as the reconciler records it (an address per replica, the
// container-zone DNS rows, the running event). The types cycle through
// four of the built-in ones (testapp, nginx, redis, postgres).
//
// For each layout it measures, N times each, median and p99:
//
//  1. the DNS server's full rebuild: a dnsserver.Server (the code `moor
//     serve` runs) is started on the database; Run's first step is the full
//     rebuild (read every DNS row, build every container's fragment, the
//     serial query, assemble the zones), after which it binds its
//     listener; the time from Run to Ready (the bind, about 0.1 ms,
//     included) and the read alone are taken;
//  2. the Traefik provider's full rebuild (provider.Rebuild: read the
//     routing state, build and render), and its read alone;
//  3. GET of a project's containers through the real API (api.Server on
//     the store and the lifecycle service, served over loopback by
//     net/http) with a key limited to that project: in A
//     /api/v1/projects/p042/containers (10), in B /api/v1/containers
//     (1,000); sequential latency, then requests/s with C clients;
//  4. the authenticating query (store.ActorByKeyHash, which reads the
//     caller's roles per project as one JSON object) for keys with 0, 1
//     (limited to a project) and 100 memberships (in A only: B has one
//     project).
//
// The in-process cost of authorization is api's BenchmarkAuthorization
// (go test), run by bench/projects.sh. Output is Markdown.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/bench/internal/machine"
	"github.com/moorhq/moor/dnsserver"
	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/catalog"
	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/lifecycle"
	"github.com/moorhq/moor/internal/secretbox"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/provider"
)

const (
	hostZone      = "moor.localhost"
	containerZone = "moor.internal"
	ttl           = 5
)

var types = []string{"testapp", "nginx", "redis", "postgres"}

type layout struct {
	name     string // A or B
	db       string
	projects int // besides default; 0: every container in default
	per      int // containers per project
	member   string
}

func (l layout) listPath() string {
	if l.member == domain.DefaultProject {
		return "/api/v1/containers"
	}
	return "/api/v1/projects/" + l.member + "/containers"
}

func main() {
	dbA := flag.String("db-a", "", "PostgreSQL URL for layout A (100 projects x 10)")
	dbB := flag.String("db-b", "", "PostgreSQL URL for layout B (default x 1,000)")
	runs := flag.Int("runs", 40, "timed DNS and Traefik rebuilds per layout")
	requests := flag.Int("requests", 400, "sequential GETs timed per layout")
	clients := flag.Int("clients", 4, "concurrent clients for requests/s")
	seconds := flag.Float64("seconds", 5, "duration of each requests/s run")
	authN := flag.Int("auth", 2000, "authenticating queries timed per key")
	flag.Parse()
	b := bench{runs: *runs, requests: *requests, clients: *clients, dur: time.Duration(*seconds * float64(time.Second)), authN: *authN}
	if err := b.run([]layout{
		{name: "A", db: *dbA, projects: 100, per: 10, member: "p042"},
		{name: "B", db: *dbB, projects: 0, per: 1000, member: domain.DefaultProject},
	}); err != nil {
		fmt.Fprintln(os.Stderr, "bench/projects:", err)
		os.Exit(1)
	}
}

type bench struct {
	runs, requests, clients, authN int
	dur                            time.Duration
	logger                         *slog.Logger
}

// result is one layout's figures, in ms unless said.
type result struct {
	containers, dnsNames, dnsRows int
	dnsRebuild, dnsRead           stats
	trRebuild, trRead             stats
	trBytes                       int
	getLat, getRead               stats
	getBytes, getCount            int
	rps                           float64
	auth                          map[string]stats // key kind -> ms
	seed                          time.Duration
}

func (b *bench) run(ls []layout) error {
	level := slog.LevelWarn
	if os.Getenv("BENCH_DEBUG") != "" {
		level = slog.LevelDebug
	}
	b.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	start := time.Now()
	load0 := machine.LoadAvg()
	res := map[string]*result{}
	for _, l := range ls {
		r, err := b.layout(l)
		if err != nil {
			return fmt.Errorf("layout %s: %w", l.name, err)
		}
		res[l.name] = r
	}
	b.report(res, start, load0)
	return nil
}

func (b *bench) layout(l layout) (*result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, l.db, b.logger)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	cat, err := catalog.Load("", b.logger)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		return nil, err
	}
	svc := lifecycle.New(cat, st, box, nil, lifecycle.Zones{Host: hostZone, Container: containerZone, TTL: ttl, PublicIP: "127.0.0.1", Network: "moor"},
		lifecycle.Publishing{}, b.logger)
	r := &result{auth: map[string]stats{}}
	t0 := time.Now()
	if err := b.seed(ctx, st, svc, l); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	r.seed = time.Since(t0)
	fmt.Fprintf(os.Stderr, "layout %s: seeded in %v\n", l.name, r.seed.Round(time.Millisecond))

	if err := b.dns(ctx, st, r); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	fmt.Fprintf(os.Stderr, "layout %s: dns done\n", l.name)
	if err := b.traefik(ctx, st, r); err != nil {
		return nil, fmt.Errorf("traefik: %w", err)
	}
	fmt.Fprintf(os.Stderr, "layout %s: traefik done\n", l.name)
	if err := b.get(ctx, st, svc, cat, l, r); err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	fmt.Fprintf(os.Stderr, "layout %s: GET done\n", l.name)
	if l.projects > 0 {
		if err := b.authQuery(ctx, st, l, r); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	return r, nil
}

// seed creates the projects and containers of l (unless the database
// holds them already) and observes each running, 4 at a time.
func (b *bench) seed(ctx context.Context, st *store.Store, svc *lifecycle.Service, l layout) error {
	have, err := st.ListContainers(ctx)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return nil
	}
	projects := []string{domain.DefaultProject}
	if l.projects > 0 {
		projects = nil
		for p := range l.projects {
			name := fmt.Sprintf("p%03d", p)
			if _, err := st.CreateProject(ctx, domain.NewProject{Name: name}, "bench"); err != nil {
				return err
			}
			projects = append(projects, name)
		}
	}
	admin := domain.WithActor(ctx, domain.Actor{Kind: "apikey", Name: "bench", Role: domain.RoleAdmin})
	g, gctx := errgroup.WithContext(admin)
	g.SetLimit(4)
	for pi, p := range projects {
		for i := range l.per {
			g.Go(func() error {
				typ := types[i%len(types)]
				c, err := svc.Create(gctx, domain.CreateRequest{Project: p, Name: fmt.Sprintf("%s%03d", typ, i), Type: typ})
				if err != nil {
					return err
				}
				// 10.(1+project).x.y, as if each project's network had a /16.
				n := i + 2
				ip := fmt.Sprintf("10.%d.%d.%d", 1+pi, n/250, n%250+1)
				in := domain.Instance{Index: 0, RuntimeID: fmt.Sprintf("%064x", pi*100000+i), InternalIP: ip, Status: domain.StatusRunning, Health: "healthy"}
				return st.RecordObservation(gctx, domain.Observation{ID: c.ID, Name: c.Name, Status: domain.StatusRunning,
					Instances: []domain.Instance{in}, ObservedGeneration: c.Generation, ContainerDNS: containerDNS(c, in), Event: "running"})
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// What autovacuum would do soon after such a burst of inserts.
	conn, err := pgx.Connect(ctx, l.db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}

// containerDNS is what the reconciler writes for a running replica
// (reconciler.containerDNS): NAME.PROJECT and its replica's name, and in
// the default project NAME too.
func containerDNS(c domain.Container, in domain.Instance) []domain.DNSEntry {
	labels := []string{domain.ContainerLabel(c.Project, c.Name)}
	if c.Project == domain.DefaultProject {
		labels = []string{c.Name, labels[0]}
	}
	var out []domain.DNSEntry
	for _, l := range labels {
		out = append(out,
			domain.DNSEntry{Zone: domain.ZoneContainer, Name: l + "." + containerZone, Type: "A", Value: in.InternalIP, Replica: &in.Index, TTL: ttl},
			domain.DNSEntry{Zone: domain.ZoneContainer, Name: fmt.Sprintf("%d.%s.%s", in.Index, l, containerZone), Type: "A", Value: in.InternalIP, Replica: &in.Index, TTL: ttl})
	}
	return out
}

// timedSource times the DNS server's reads.
type timedSource struct {
	dnsserver.Source
	read time.Duration
	rows int
}

func (t *timedSource) DNSState(ctx context.Context) (domain.DNSState, error) {
	t0 := time.Now()
	s, err := t.Source.DNSState(ctx)
	t.read, t.rows = time.Since(t0), len(s.Records)
	return s, err
}

func (b *bench) dns(ctx context.Context, st *store.Store, r *result) error {
	cfg := dnsserver.Config{
		Zones: dnsserver.ZoneConfig{
			HostZone: hostZone, ContainerZone: containerZone, TTL: ttl,
			HostNS:      []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			ContainerNS: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		},
		Listen:         []string{"127.0.0.1:0"},
		ContainerCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Refresh:        time.Hour,
		Sockets:        1,
	}
	var total, read []float64
	const warmup = 3
	for i := 0; i < b.runs+warmup; i++ {
		src := &timedSource{Source: st}
		srv, err := dnsserver.New(src, cfg, b.logger)
		if err != nil {
			return err
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		runtime.GC() // each run starts from the same heap
		t0 := time.Now()
		go func() { done <- srv.Run(rctx) }()
		select {
		case <-srv.Ready():
		case err := <-done:
			stop()
			return err
		}
		d := time.Since(t0)
		snap := srv.Snapshot()
		stop()
		if err := <-done; err != nil && rctx.Err() == nil {
			return err
		}
		if snap == nil {
			return fmt.Errorf("no snapshot after the first rebuild")
		}
		if i >= warmup {
			total, read = append(total, ms(d)), append(read, ms(src.read))
		}
		r.dnsNames, r.dnsRows = len(snap.Hosts()), src.rows
	}
	r.dnsRebuild, r.dnsRead = summarize(total), summarize(read)
	return nil
}

func (b *bench) traefik(ctx context.Context, st *store.Store, r *result) error {
	prov, err := provider.New(st, provider.Options{HostZone: hostZone, EntryPoints: []string{"web"}, FallbackURL: "http://moor:8080"},
		"bench-provider-token-0123456789abcdef", time.Hour, b.logger)
	if err != nil {
		return err
	}
	var total, read []float64
	const warmup = 3
	for i := 0; i < b.runs+warmup; i++ {
		runtime.GC()
		t0 := time.Now()
		cs, _, err := st.RoutingState(ctx)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if err := prov.Rebuild(ctx); err != nil {
			return err
		}
		t2 := time.Now()
		if i >= warmup {
			read, total = append(read, ms(t1.Sub(t0))), append(total, ms(t2.Sub(t1)))
		}
		r.containers = len(cs)
	}
	r.trRebuild, r.trRead = summarize(total), summarize(read)
	r.trBytes = len(prov.Current().Body)
	return nil
}

func (b *bench) get(ctx context.Context, st *store.Store, svc *lifecycle.Service, cat *catalog.Catalog, l layout, r *result) error {
	key, hash, err := auth.NewKey()
	if err != nil {
		return err
	}
	if _, err := st.CreateProjectKey(ctx, "member-"+randName(), domain.RoleViewer, l.member, hash); err != nil {
		return err
	}
	// The rate limit per caller (50/s by default) would make this a
	// benchmark of the limiter.
	srv := &api.Server{Lifecycle: svc, Catalog: cat, Keys: st, Logger: b.logger, Version: "bench",
		Limits: api.Limits{Rate: 1e9, Burst: 1e9}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String() + l.listPath()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: b.clients + 1}}
	do := func() (int, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
		}
		return len(body), nil
	}
	// Check the answer once: the project's containers, all of them.
	n, err := do()
	if err != nil {
		return err
	}
	var list struct {
		Containers []domain.Container `json:"containers"`
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if len(list.Containers) != l.per || slices.ContainsFunc(list.Containers, func(c domain.Container) bool { return c.Project != l.member }) {
		return fmt.Errorf("GET %s: %d containers, want %d of project %s", url, len(list.Containers), l.per, l.member)
	}
	r.getBytes, r.getCount = n, len(list.Containers)
	for range 10 { // warm-up
		if _, err := do(); err != nil {
			return err
		}
	}
	lat := make([]float64, 0, b.requests)
	for range b.requests {
		t0 := time.Now()
		if _, err := do(); err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(t0)))
	}
	r.getLat = summarize(lat)
	// The store's part of it (containers, instances, ports, published
	// ports: 4 statements), timed apart.
	lat = lat[:0]
	for range b.requests {
		t0 := time.Now()
		cs, err := st.ProjectContainers(ctx, l.member)
		if err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(t0)))
		if len(cs) != l.per {
			return fmt.Errorf("ProjectContainers(%s): %d containers", l.member, len(cs))
		}
	}
	r.getRead = summarize(lat)

	var count atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	end := time.Now().Add(b.dur)
	t0 := time.Now()
	for range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if _, err := do(); err != nil {
					failed.Store(err)
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	r.rps = float64(count.Load()) / time.Since(t0).Seconds()
	return nil
}

// authQuery times ActorByKeyHash for keys holding 0, 1 (limited to a
// project) and 100 memberships.
func (b *bench) authQuery(ctx context.Context, st *store.Store, l layout, r *result) error {
	admin := "bench"
	kinds := []struct {
		name        string
		project     string
		memberships int
	}{
		{"instance-wide viewer, 0 memberships", "", 0},
		{"limited to one project", l.member, 0},
		{"instance-wide viewer, 10 memberships", "", 10},
		{"instance-wide viewer, 100 memberships", "", 100},
	}
	for _, k := range kinds {
		_, hash, err := auth.NewKey()
		if err != nil {
			return err
		}
		name := "auth-" + randName()
		if _, err := st.CreateProjectKey(ctx, name, domain.RoleViewer, k.project, hash); err != nil {
			return err
		}
		for p := range k.memberships {
			if _, err := st.SetMember(ctx, fmt.Sprintf("p%03d", p), domain.MemberRequest{Kind: "apikey", Name: name}, domain.RoleOperator, admin); err != nil {
				return err
			}
		}
		for range 20 { // warm-up; the first also records last_used_at
			if _, err := st.ActorByKeyHash(ctx, hash); err != nil {
				return err
			}
		}
		lat := make([]float64, 0, b.authN)
		for range b.authN {
			t0 := time.Now()
			a, err := st.ActorByKeyHash(ctx, hash)
			lat = append(lat, ms(time.Since(t0)))
			if err != nil {
				return err
			}
			if k.project == "" && len(a.Projects) != k.memberships {
				return fmt.Errorf("%s: %d memberships read, want %d", k.name, len(a.Projects), k.memberships)
			}
		}
		r.auth[k.name] = summarize(lat)
	}
	return nil
}

func (b *bench) report(res map[string]*result, start time.Time, load0 string) {
	A, B := res["A"], res["B"]
	fmt.Printf("Run %s (%s), machine: %d CPUs (GOMAXPROCS %d), %s; %s; load average before: %s, after: %s.\n\n",
		start.UTC().Format("2006-01-02 15:04 UTC"), time.Since(start).Round(time.Second), runtime.NumCPU(), runtime.GOMAXPROCS(0),
		machine.CPU(), runtime.Version(), load0, machine.LoadAvg())
	fmt.Printf("Seeding (projects, %d creates through the lifecycle service and %d observations, 4 at a time): A %v, B %v.\n\n",
		A.containers, A.containers, A.seed.Round(time.Millisecond), B.seed.Round(time.Millisecond))
	row := func(what string, a, b stats) {
		fmt.Printf("| %s | %.2f / %.2f | %.2f / %.2f | %.2fx |\n", what, a.P50, a.P99, b.P50, b.P99, b.P50/a.P50)
	}
	fmt.Printf("| %d runs each, ms (median / p99) | A: 100 projects x 10 | B: default x 1,000 | B / A (medians) |\n|---|---:|---:|---:|\n", b.runs)
	fmt.Printf("| containers (routing state) | %d | %d | |\n", A.containers, B.containers)
	fmt.Printf("| DNS rows read / names served | %d / %d | %d / %d | |\n", A.dnsRows, A.dnsNames, B.dnsRows, B.dnsNames)
	row("DNS full rebuild (Run to Ready)", A.dnsRebuild, B.dnsRebuild)
	row("of which the read (DNSState)", A.dnsRead, B.dnsRead)
	fmt.Printf("| Traefik configuration bytes | %d | %d | |\n", A.trBytes, B.trBytes)
	row("Traefik full rebuild (provider.Rebuild)", A.trRebuild, B.trRebuild)
	row("of which the read (RoutingState, timed apart)", A.trRead, B.trRead)
	fmt.Println()
	fmt.Printf("| GET as a key limited to one project | A: `GET /api/v1/projects/p042/containers` | B: `GET /api/v1/containers` (default) | B / A |\n|---|---:|---:|---:|\n")
	fmt.Printf("| containers in the answer / bytes | %d / %d | %d / %d | |\n", A.getCount, A.getBytes, B.getCount, B.getBytes)
	fmt.Printf("| latency, one client, %d requests: median / p99 (ms) | %.2f / %.2f | %.2f / %.2f | %.2fx |\n", b.requests,
		A.getLat.P50, A.getLat.P99, B.getLat.P50, B.getLat.P99, B.getLat.P50/A.getLat.P50)
	fmt.Printf("| of which the store's read (ProjectContainers, timed apart): median / p99 (ms) | %.2f / %.2f | %.2f / %.2f | %.2fx |\n",
		A.getRead.P50, A.getRead.P99, B.getRead.P50, B.getRead.P99, B.getRead.P50/A.getRead.P50)
	fmt.Printf("| requests/s, %d clients, %v | %.0f | %.0f | %.2fx |\n", b.clients, b.dur, A.rps, B.rps, B.rps/A.rps)
	fmt.Println()
	fmt.Printf("Authenticating query (`store.ActorByKeyHash`, layout A, %d calls each, sequential):\n\n| key | median ms | p99 ms |\n|---|---:|---:|\n", b.authN)
	for _, k := range []string{"instance-wide viewer, 0 memberships", "limited to one project", "instance-wide viewer, 10 memberships", "instance-wide viewer, 100 memberships"} {
		fmt.Printf("| %s | %.3f | %.3f |\n", k, A.auth[k].P50, A.auth[k].P99)
	}
}

type stats struct{ P50, P99, Max float64 }

func summarize(v []float64) stats {
	if len(v) == 0 {
		return stats{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return stats{P50: s[len(s)/2], P99: s[min(len(s)-1, len(s)*99/100)], Max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func randName() string { return strings.ToLower(rand.Text()[:10]) }
