//go:build linux

// Command dns benchmarks moor's DNS server against dnsmasq (run it through
// bench/dns.sh, which provides a PostgreSQL database):
//
//  1. 10,000 containers are written to PostgreSQL (one replica each, the
//     rows moor writes) with psql's help (bench/dns.sh seeds them);
//  2. moor's DNS server (package dnsserver, the code `moor serve` runs) loads
//     them, and dnsmasq serves the same 10,000 names from a hosts file;
//  3. dnsperf (same query file, same load: 100 outstanding queries, loopback)
//     runs against each, interleaved, ROUNDS times; queries/s, lost queries
//     and the server's CPU time per query are reported;
//  4. change-to-answer latency: a replica's address is changed in PostgreSQL
//     (as the reconciler does) and the server is polled until it answers the
//     new address, SAMPLES times; p50/p90/p99/max are reported.
//
// Only loopback addresses are used. Output is Markdown for bench/RESULTS.md.
//
// It runs on Linux only (getrusage, dnsperf and dnsmasq).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moorhq/moor/bench/internal/machine"
	"github.com/moorhq/moor/dnsserver"
	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/store"
)

var (
	loads      = flag.String("loads", "8x2,1x1", "dnsperf load shapes, each CLIENTSxTHREADS (-c, -T); every shape runs against both servers")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of moor's DNS server during its dnsperf runs")
)

// loadShape is how dnsperf sends: from how many sockets (clients) and
// threads. One socket is one flow: SO_REUSEPORT hands all of it to one of
// moor's sockets, so moor then runs on one core, as dnsmasq always does.
type loadShape struct{ clients, threads int }

func (l loadShape) String() string {
	return fmt.Sprintf("%d client(s), %d thread(s)", l.clients, l.threads)
}

func loadShapes() []loadShape {
	var out []loadShape
	for _, f := range strings.Split(*loads, ",") {
		var l loadShape
		if _, err := fmt.Sscanf(f, "%dx%d", &l.clients, &l.threads); err != nil || l.clients < 1 || l.threads < 1 {
			log.Fatalf("-loads: %q is not CLIENTSxTHREADS", f)
		}
		out = append(out, l)
	}
	return out
}

func main() {
	dbURL := flag.String("db", os.Getenv("MOOR_DATABASE_URL"), "PostgreSQL URL (seeded by bench/dns.sh)")
	names := flag.Int("names", 10000, "containers seeded (names c00000..)")
	seconds := flag.Int("seconds", 15, "dnsperf run length")
	rounds := flag.Int("rounds", 2, "interleaved rounds of moor and dnsmasq")
	outstanding := flag.Int("q", 100, "dnsperf outstanding queries")
	samples := flag.Int("samples", 200, "change-to-answer samples")
	skipPerf := flag.Bool("latency-only", false, "skip the dnsperf runs")
	flag.Parse()
	if err := run(*dbURL, *names, *seconds, *rounds, *outstanding, *samples, *skipPerf); err != nil {
		fmt.Fprintln(os.Stderr, "bench/dns:", err)
		os.Exit(1)
	}
}

func run(dbURL string, names, seconds, rounds, outstanding, samples int, skipPerf bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	level := slog.LevelWarn
	if os.Getenv("BENCH_DEBUG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	st, err := store.Open(ctx, dbURL, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "moor-bench-dns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// moor's DNS server, as `moor serve` builds it; loopback is the
	// container network here so the container zone is served.
	srv, err := dnsserver.New(st, dnsserver.Config{
		Zones: dnsserver.ZoneConfig{
			HostZone: "moor.localhost", ContainerZone: "moor.internal", TTL: 5,
			HostNS:      []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			ContainerNS: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		},
		Listen:         []string{"127.0.0.1:0"},
		ContainerCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Refresh:        30 * time.Second,
	}, logger)
	if err != nil {
		return err
	}
	go srv.Run(ctx)
	go st.ListenDNS(ctx, srv.Changed)
	<-srv.Ready()
	moorAddr := srv.Addrs()[0].String()
	for srv.Snapshot() == nil {
		time.Sleep(10 * time.Millisecond)
	}

	// The same names for dnsmasq, from the snapshot moor serves.
	hosts := srv.Snapshot().Hosts()
	var lines, queries []string
	for i := 0; i < names; i++ {
		name := fmt.Sprintf("c%05d.moor.internal", i)
		addrs := hosts[name]
		if len(addrs) == 0 {
			return fmt.Errorf("%s not served: was the database seeded (bench/dns.sh)?", name)
		}
		for _, a := range addrs {
			lines = append(lines, a+" "+name)
		}
		queries = append(queries, name+" A")
	}
	hostsFile := filepath.Join(dir, "hosts")
	queryFile := filepath.Join(dir, "queries")
	os.WriteFile(hostsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	os.WriteFile(queryFile, []byte(strings.Join(queries, "\n")+"\n"), 0o644)
	dmPort, err := freePort()
	if err != nil {
		return err
	}
	dm := exec.Command("dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--user=root",
		"--addn-hosts="+hostsFile, "--listen-address=127.0.0.1", "--bind-interfaces", "--port="+dmPort,
		"--pid-file=", "--log-facility=-")
	if err := dm.Start(); err != nil {
		return fmt.Errorf("dnsmasq: %w", err)
	}
	defer func() { dm.Process.Kill(); dm.Wait() }()
	dmAddr := "127.0.0.1:" + dmPort
	for i := 0; ; i++ {
		if a, err := lookupA(dmAddr, "c00000.moor.internal"); err == nil && a != "" {
			break
		}
		if i > 200 {
			return fmt.Errorf("dnsmasq did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}

	fmt.Printf("## DNS: moor vs dnsmasq (%d names)\n\n", names)
	fmt.Printf("Machine: %d CPUs (GOMAXPROCS %d), %s; dnsperf -l %d -q %d on loopback, same query file (%d names, type A), interleaved rounds, for each load shape.\n\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), machine.CPU(), seconds, outstanding, names)
	fmt.Printf("Load average at start (1/5/15 min, other work on the machine included): %s.\n\n", machine.LoadAvg())
	fmt.Println("| load (dnsperf) | round | server | queries/s | completed | lost | avg latency | CPU µs/query |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|")
	type total struct{ qps, cpu float64 }
	var means []string
	for _, shape := range loadShapes() {
		sum := map[string]*total{"moor": {}, "dnsmasq": {}}
		for r := 1; r <= rounds && !skipPerf; r++ {
			for _, s := range []struct {
				name, addr string
				cpu        func() time.Duration
			}{
				{"moor", moorAddr, selfCPU},
				{"dnsmasq", dmAddr, func() time.Duration { return procCPU(dm.Process.Pid) }},
			} {
				if s.name == "moor" && *cpuProfile != "" {
					f, err := os.Create(*cpuProfile)
					if err != nil {
						return err
					}
					pprof.StartCPUProfile(f)
				}
				res, err := dnsperf(s.addr, queryFile, seconds, outstanding, shape.clients, shape.threads, s.cpu)
				if s.name == "moor" && *cpuProfile != "" {
					pprof.StopCPUProfile()
				}
				if err != nil {
					return err
				}
				fmt.Printf("| %s | %d | %s | %.0f | %d | %d | %.3f ms | %.2f |\n", shape, r, s.name, res.qps, res.completed, res.lost, res.avgLatency*1000, res.cpuPerQuery)
				sum[s.name].qps += res.qps / float64(rounds)
				sum[s.name].cpu += res.cpuPerQuery / float64(rounds)
			}
		}
		means = append(means, fmt.Sprintf("- %s: moor %.0f q/s at %.2f µs CPU/query; dnsmasq %.0f q/s at %.2f µs CPU/query; **ratio %.2fx queries/s, %.2fx CPU/query**.",
			shape, sum["moor"].qps, sum["moor"].cpu, sum["dnsmasq"].qps, sum["dnsmasq"].cpu, sum["moor"].qps/sum["dnsmasq"].qps, sum["moor"].cpu/sum["dnsmasq"].cpu))
	}
	fmt.Printf("\nMeans:\n\n%s\n\n", strings.Join(means, "\n"))

	// Change-to-answer latency.
	c, err := st.GetContainer(ctx, domain.Ref("c00042"))
	if err != nil {
		return err
	}
	var lat []time.Duration
	for i := 0; i < samples; i++ {
		ip := fmt.Sprintf("10.250.%d.%d", i/250, i%250+1)
		rep := 0
		o := domain.Observation{ID: c.ID, Name: c.Name, Status: domain.StatusRunning,
			Instances: []domain.Instance{{Index: 0, Status: domain.StatusRunning, InternalIP: ip}},
			ContainerDNS: []domain.DNSEntry{
				{Zone: "container", Name: "c00042.moor.internal", Type: "A", Value: ip, Replica: &rep, TTL: 5},
				{Zone: "container", Name: "0.c00042.moor.internal", Type: "A", Value: ip, Replica: &rep, TTL: 5},
			}}
		if err := st.RecordObservation(ctx, o); err != nil {
			return err
		}
		start := time.Now() // committed
		for {
			if a, err := lookupA(moorAddr, "c00042.moor.internal"); err == nil && a == ip {
				break
			}
			if time.Since(start) > 10*time.Second {
				return fmt.Errorf("change %d never answered", i)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("Change-to-answer (%d names, %d changes: commit in PostgreSQL -> first UDP answer with the new address, polled every 1 ms): p50 %v, p90 %v, p99 %v, max %v.\n",
		names, samples, pct(0.50).Round(100*time.Microsecond), pct(0.90).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	fmt.Printf("\nLoad average at the end: %s.\n", machine.LoadAvg())
	return nil
}

// lookupA sends one A query (built by hand: miekg/dns stays inside
// dnsserver) and returns the address of a single-answer reply.
func lookupA(addr, name string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	q := []byte{0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	q = append(q, 0, 0, 1, 0, 1)
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(q); err != nil {
		return "", err
	}
	b := make([]byte, 512)
	n, err := c.Read(b)
	if err != nil {
		return "", err
	}
	if n < len(q)+16 || b[0] != 0x12 || b[1] != 0x34 || b[3]&0x0f != 0 || b[6] != 0 || b[7] != 1 {
		return "", fmt.Errorf("no single answer")
	}
	return netip.AddrFrom4([4]byte(b[n-4 : n])).String(), nil
}

type perf struct {
	qps, avgLatency, cpuPerQuery float64
	completed, lost              int
}

var (
	completedRE = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	lostRE      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	qpsRE       = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	latRE       = regexp.MustCompile(`Average Latency \(s\):\s+([\d.]+)`)
)

func dnsperf(addr, queryFile string, seconds, outstanding, clients, threads int, cpu func() time.Duration) (perf, error) {
	host, port, _ := net.SplitHostPort(addr)
	before := cpu()
	out, err := exec.Command("dnsperf", "-s", host, "-p", port, "-d", queryFile, "-l", strconv.Itoa(seconds), "-q", strconv.Itoa(outstanding),
		"-c", strconv.Itoa(clients), "-T", strconv.Itoa(threads)).CombinedOutput()
	used := cpu() - before
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf %s: %v\n%s", addr, err, out)
	}
	var p perf
	s := string(out)
	if m := completedRE.FindStringSubmatch(s); m != nil {
		p.completed, _ = strconv.Atoi(m[1])
	}
	if m := lostRE.FindStringSubmatch(s); m != nil {
		p.lost, _ = strconv.Atoi(m[1])
	}
	if m := qpsRE.FindStringSubmatch(s); m != nil {
		p.qps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := latRE.FindStringSubmatch(s); m != nil {
		p.avgLatency, _ = strconv.ParseFloat(m[1], 64)
	}
	if p.completed == 0 {
		return p, fmt.Errorf("dnsperf %s: no queries completed\n%s", addr, out)
	}
	p.cpuPerQuery = float64(used.Microseconds()) / float64(p.completed)
	return p, nil
}

// selfCPU is this process's user+system CPU time (the DNS server runs here;
// nothing else does while dnsperf runs).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user+system CPU time from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stt) * time.Second / 100 // USER_HZ
}

func freePort() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	_, p, _ := net.SplitHostPort(c.LocalAddr().String())
	return p, nil
}
