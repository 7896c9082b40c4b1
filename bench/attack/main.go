//go:build linux

// Command attack is the attack of issue 8 point 1 as a benchmark: without
// credentials, an attacker holds DNS-over-TCP and HTTP connections far
// beyond moor's caps, and a victim client (a separate process, so the
// attacker's goroutines do not delay it) measures what moor still answers
// and in what time: GET /healthz, an authenticated API call, a UDP and a
// TCP DNS query. Beside it: how many attacker connections moor keeps open,
// moor's open descriptors, resident memory, Go heap and CPU. Run it through
// bench/attack.sh, which starts moor with its default limits.
//
// The attacker keeps each of its connections open as long as moor lets it
// and, once moor closes one, dials it again after -redial (a persistent
// attacker fills whatever moor frees). Its dials are paced (-dial-rate) so
// that the run, on a shared machine, fills neither the connection tracking
// table nor the ephemeral ports; it closes with a reset, leaving nothing in
// TIME_WAIT.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

var (
	httpAddr    = flag.String("http", "", "moor's HTTP address, host:port")
	dnsAddr     = flag.String("dns", "", "moor's DNS address, host:port (UDP and TCP)")
	key         = flag.String("key", "", "API key of the victim's API calls")
	metricsKey  = flag.String("metrics-key", "", "API key for GET /metrics (a separate key: the per-key rate is the victim's)")
	pid         = flag.Int("pid", 0, "moor's process id")
	zone        = flag.String("zone", "moor.localhost", "the host zone (the victim asks for the A records of its apex)")
	dnsConns    = flag.Int("dns-conns", 20000, "attacker DNS-over-TCP connections")
	httpConns   = flag.Int("http-conns", 20000, "attacker HTTP connections")
	sources     = flag.Int("sources", 1000, "loopback source addresses of the many-address attacks")
	dialRate    = flag.Int("dial-rate", 2000, "attacker dials per second at most, all connections together")
	redial      = flag.Duration("redial", time.Second, "pause before the attacker dials again a connection moor closed")
	settle      = flag.Duration("settle", 3*time.Second, "wait once every connection was dialed once, before the victim starts")
	requests    = flag.Int("requests", 200, "victim requests of each kind per attack")
	every       = flag.Duration("every", 100*time.Millisecond, "victim: one request of each kind this often")
	victimSlack = flag.Duration("victim-slack", 20*time.Second, "victim: time allowed beyond requests × every; requests not sent by then are counted apart")
	only        = flag.String("attacks", "none,dns,dns1,http,all", "attacks to run, in order: none (baseline), dns (many addresses), dns1 (one address), http, all")

	victim = flag.Bool("victim", false, "internal: be the victim process (JSON on stdout)")
)

func main() {
	flag.Parse()
	if *victim {
		runVictim()
		return
	}
	if *httpAddr == "" || *dnsAddr == "" || *pid == 0 {
		fail(errors.New("-http, -dns and -pid are required"))
	}
	// moor binds its DNS listeners beside the HTTP one, not before it.
	for _, network := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(*zone), dns.TypeA)
		c := &dns.Client{Net: network, Timeout: time.Second}
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, _, err := c.Exchange(q, *dnsAddr); err == nil {
				break
			} else if time.Now().After(end) {
				fail(fmt.Errorf("moor's DNS over %s: %w", network, err))
			}
		}
	}
	var out []result
	for _, name := range strings.Split(*only, ",") {
		a, ok := attacks()[strings.TrimSpace(name)]
		if !ok {
			fail(fmt.Errorf("-attacks: no attack %q", name))
		}
		r, err := runAttack(a)
		if err != nil {
			fail(err)
		}
		out = append(out, r)
	}
	report(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/attack:", err)
	os.Exit(1)
}

// kind is what one attacker connection does.
type kind int

const (
	dnsIdle      kind = iota // connects and says nothing
	dnsQuery                 // one query every 4 s, as the attack of the issue
	httpIdle                 // a keep-alive after one GET /healthz
	httpSilent               // never sends a request
	httpSlowBody             // POST to the sign-in route, one body byte every 5 s
	nKinds
)

var kindNames = [nKinds]string{"DNS idle", "DNS query/4s", "HTTP keep-alive", "HTTP silent", "HTTP slow body"}

type attack struct {
	name                string
	dns, dnsSources     int
	http, httpSources   int
	dnsOctet, httpOctet byte // second octet of the source addresses: 127.<octet>.x.y
}

func attacks() map[string]attack {
	many := fmt.Sprintf("%s addresses", num(*sources))
	return map[string]attack{
		"none": {name: "none (baseline)"},
		"dns":  {name: fmt.Sprintf("DNS-TCP %s, %s", num(*dnsConns), many), dns: *dnsConns, dnsSources: *sources, dnsOctet: 1},
		"dns1": {name: fmt.Sprintf("DNS-TCP %s, one address", num(*dnsConns)), dns: *dnsConns, dnsSources: 1, dnsOctet: 3},
		"http": {name: fmt.Sprintf("HTTP %s, %s", num(*httpConns), many), http: *httpConns, httpSources: *sources, httpOctet: 2},
		"all": {name: fmt.Sprintf("DNS-TCP %s + HTTP %s, %s", num(*dnsConns), num(*httpConns), many),
			dns: *dnsConns, dnsSources: *sources, dnsOctet: 1, http: *httpConns, httpSources: *sources, httpOctet: 2},
	}
}

// source is the i-th of n loopback addresses 127.<first>.x.y (127.0.0.1,
// the victim's, is never one of them). All of 127/8 is local on Linux.
func source(first byte, i int) net.IP {
	return net.IPv4(127, first, byte(i/250), byte(i%250+1))
}

// slot is one attacker connection, dialed again each time moor closes it.
type slot struct {
	kind  kind
	src   net.IP
	since atomic.Int64 // when its connection opened (UnixNano), 0 while it has none
}

type attacker struct {
	pace                    pacer
	dials, failed, closedBy atomic.Int64
	slots                   []*slot
	wg                      sync.WaitGroup
}

// pacer spaces dials evenly: each caller takes the next free instant.
type pacer struct {
	mu    sync.Mutex
	next  time.Time
	every time.Duration
}

func (p *pacer) wait(ctx context.Context) bool {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.every)
	p.mu.Unlock()
	return sleep(ctx, time.Until(at))
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *attacker) add(n, nsrc int, first byte, kinds ...kind) {
	for i := range n {
		a.slots = append(a.slots, &slot{kind: kinds[i%len(kinds)], src: source(first, i%nsrc)})
	}
}

func (a *attacker) start(ctx context.Context) {
	for _, s := range a.slots {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.run(ctx, s)
		}()
	}
}

func (a *attacker) run(ctx context.Context, s *slot) {
	addr := *httpAddr
	if s.kind <= dnsQuery {
		addr = *dnsAddr
	}
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: s.src}}
	for a.pace.wait(ctx) {
		a.dials.Add(1)
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() == nil {
				a.failed.Add(1)
			}
		} else {
			tc := c.(*net.TCPConn)
			s.since.Store(time.Now().UnixNano())
			// A reset, not a FIN: no TIME_WAIT, a short conntrack entry.
			stop := context.AfterFunc(ctx, func() { tc.SetLinger(0); tc.Close() })
			hold(s.kind, tc)
			s.since.Store(0)
			if stop() {
				a.closedBy.Add(1)
				tc.SetLinger(0)
				tc.Close()
			}
		}
		if !sleep(ctx, *redial) {
			return
		}
	}
}

// hold does what kind k does on c until moor closes it (or the attack
// ends and closes it).
func hold(k kind, c net.Conn) {
	buf := make([]byte, 512)
	// waitClosed reads (and drops) what moor sends for d (forever: 0);
	// true while the connection is still open.
	waitClosed := func(d time.Duration) bool {
		end := time.Time{}
		if d > 0 {
			end = time.Now().Add(d)
		}
		c.SetReadDeadline(end)
		for {
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				return errors.As(err, &ne) && ne.Timeout()
			}
		}
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	switch k {
	case dnsIdle, httpSilent:
		waitClosed(0)
	case dnsQuery:
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(*zone), dns.TypeA)
		msg, _ := q.Pack()
		framed := append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...)
		for {
			if _, err := c.Write(framed); err != nil || !waitClosed(4*time.Second) {
				return
			}
		}
	case httpIdle:
		if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host); err == nil {
			waitClosed(0)
		}
	case httpSlowBody:
		_, err := fmt.Fprintf(c, "POST /api/v1/session HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", host)
		for err == nil && waitClosed(5*time.Second) {
			_, err = c.Write([]byte(" "))
		}
	}
}

// open counts the attacker's connections open now, and those open for a
// second or more (held, rather than on their way to being closed), by kind.
func (a *attacker) open() (now, held [nKinds]int) {
	t := time.Now().UnixNano()
	for _, s := range a.slots {
		if v := s.since.Load(); v != 0 {
			now[s.kind]++
			if t-v >= int64(time.Second) {
				held[s.kind]++
			}
		}
	}
	return
}

// proc is what /proc says of moor.
type proc struct {
	fds    int
	rssKiB int
	cpu    time.Duration // user + system
}

func readProc(pid int) proc {
	var p proc
	dir := "/proc/" + strconv.Itoa(pid)
	if ents, err := os.ReadDir(dir + "/fd"); err == nil {
		p.fds = len(ents)
	}
	b, _ := os.ReadFile(dir + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			p.rssKiB, _ = strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	b, _ = os.ReadFile(dir + "/stat")
	if i := strings.LastIndexByte(string(b), ')'); i > 0 {
		f := strings.Fields(string(b[i+2:]))
		if len(f) > 13 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			p.cpu = time.Duration(u+s) * 10 * time.Millisecond // USER_HZ is 100 on Linux
		}
	}
	return p
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapInuse reads go_memstats_heap_inuse_bytes from moor's /metrics; -1
// when that fails (under attack, a figure of its own).
func heapInuse(client *http.Client) int64 {
	req, _ := http.NewRequest("GET", "http://"+*httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+*metricsKey)
	resp, err := client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return -1
}

func conntrack() int {
	b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// socks is what moor holds on its two TCP ports: connections from the
// attacker (any address but the victim's 127.0.0.1) and the length of
// each listener's accept queue (connections the kernel completed that
// moor has not accepted yet).
type socks struct{ http, dns, httpQueue, dnsQueue int }

func readSocks(pid int) socks {
	var out socks
	_, hp, _ := net.SplitHostPort(*httpAddr)
	_, dp, _ := net.SplitHostPort(*dnsAddr)
	httpPort, _ := strconv.ParseUint(hp, 10, 16)
	dnsPort, _ := strconv.ParseUint(dp, 10, 16)
	mine := map[string]bool{}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if l, err := os.Readlink(dir + e.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[l[len("socket:["):len(l)-1]] = true
		}
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/tcp")
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 10 || !mine[f[9]] {
			continue
		}
		delete(mine, f[9]) // the kernel's walk may list a socket twice while the table changes
		_, lport, _ := strings.Cut(f[1], ":")
		port, _ := strconv.ParseUint(lport, 16, 16)
		remote, _, _ := strings.Cut(f[2], ":")
		_, rxq, _ := strings.Cut(f[4], ":")
		q, _ := strconv.ParseUint(rxq, 16, 32)
		listen := f[3] == "0A"
		attacker := remote != "0100007F" // 127.0.0.1, the victim
		switch {
		case port == httpPort && listen:
			out.httpQueue = int(q)
		case port == dnsPort && listen:
			out.dnsQueue = int(q)
		case port == httpPort && attacker:
			out.http++
		case port == dnsPort && attacker:
			out.dns++
		}
	}
	return out
}

// result is one attack's figures.
type result struct {
	attack      attack
	victim      []series
	target      int
	dials       int64
	dialFailed  int64
	dialsPerSec float64
	openNow     [nKinds]int
	held        [nKinds]int
	maxFds      int
	maxRSSKiB   int
	maxHeap     int64
	heapFailed  int
	moorCPU     float64 // share of one CPU while the victim measured
	selfCPU     float64 // the attacker's, likewise
	maxTrack    int
	maxSocks    socks
}

func runAttack(at attack) (result, error) {
	r := result{attack: at, target: at.dns + at.http}
	fds0 := readProc(*pid).fds
	fmt.Fprintf(os.Stderr, "attack: %s\n", at.name)
	ctx, cancel := context.WithCancel(context.Background())
	a := &attacker{pace: pacer{every: time.Second / time.Duration(*dialRate)}}
	a.add(at.dns, max(at.dnsSources, 1), at.dnsOctet, dnsIdle, dnsQuery)
	a.add(at.http, max(at.httpSources, 1), at.httpOctet, httpIdle, httpSilent, httpSlowBody)

	// The sampler follows moor (and the conntrack table) all along.
	metricsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	sampleDone := make(chan struct{})
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			p := readProc(*pid)
			ct := conntrack()
			var h int64 = -2
			if i%8 == 0 && *metricsKey != "" {
				h = heapInuse(metricsClient)
			}
			var so socks
			if i%4 == 0 { // /proc/net/tcp lists the whole machine's sockets: once a second
				so = readSocks(*pid)
			}
			r.maxFds, r.maxRSSKiB, r.maxTrack = max(r.maxFds, p.fds), max(r.maxRSSKiB, p.rssKiB), max(r.maxTrack, ct)
			if h == -1 {
				r.heapFailed++
			}
			r.maxHeap = max(r.maxHeap, h)
			m := &r.maxSocks
			m.http, m.dns, m.httpQueue, m.dnsQueue = max(m.http, so.http), max(m.dns, so.dns), max(m.httpQueue, so.httpQueue), max(m.dnsQueue, so.dnsQueue)
			select {
			case <-t.C:
			case <-sampleCtx.Done():
				return
			}
		}
	}()

	start := time.Now()
	a.start(ctx)
	// Every slot dialed once (or the pacer's share of time for that), then
	// a pause for moor to close what it does not keep.
	for a.dials.Load() < int64(len(a.slots)) && time.Since(start) < time.Duration(len(a.slots))*a.pace.every+10*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if len(a.slots) > 0 {
		fmt.Fprintf(os.Stderr, "  %d connections dialed in %v, settling\n", a.dials.Load(), time.Since(start).Round(time.Millisecond))
		time.Sleep(*settle)
	}

	p0, self0, d0, t0 := readProc(*pid), selfCPU(), a.dials.Load(), time.Now()
	v, err := measure()
	if err != nil {
		cancel()
		a.wg.Wait()
		stopSampling()
		<-sampleDone
		return r, err
	}
	r.victim = v
	p1, self1, d1, el := readProc(*pid), selfCPU(), a.dials.Load(), time.Since(t0)
	r.openNow, r.held = a.open()
	var open []string
	for k := range nKinds {
		if r.openNow[k] > 0 {
			open = append(open, fmt.Sprintf("%s %d (%d ≥ 1 s)", kindNames[k], r.openNow[k], r.held[k]))
		}
	}
	if len(open) > 0 {
		// Its view counts connections still in moor's accept queue too.
		fmt.Fprintf(os.Stderr, "  open in the attacker's view at the end: %s\n", strings.Join(open, ", "))
	}
	r.moorCPU = float64(p1.cpu-p0.cpu) / float64(el)
	r.selfCPU = float64(self1-self0) / float64(el)
	r.dialsPerSec = float64(d1-d0) / el.Seconds()
	r.dials, r.dialFailed = a.dials.Load(), a.failed.Load()

	cancel()
	a.wg.Wait()
	stopSampling()
	<-sampleDone
	// moor lets the reset connections go before the next attack.
	fds := readProc(*pid).fds
	for end := time.Now().Add(20 * time.Second); fds > fds0+20 && time.Now().Before(end); fds = readProc(*pid).fds {
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "  done; moor's descriptors before %d, after %d; conntrack entries (the whole machine's) max %d\n", fds0, fds, r.maxTrack)
	time.Sleep(time.Second)
	return r, nil
}

// measure runs the victim in its own process and reads its figures.
func measure() ([]series, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-victim", "-http", *httpAddr, "-dns", *dnsAddr, "-key", *key, "-zone", *zone,
		"-requests", strconv.Itoa(*requests), "-every", every.String(), "-victim-slack", victimSlack.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("victim: %w", err)
	}
	var s []series
	return s, json.Unmarshal(out, &s)
}

// series is one kind of victim request: latencies of the answered ones.
type series struct {
	Name    string          `json:"name"`
	Lat     []time.Duration `json:"lat"`
	Failed  int             `json:"failed"`
	Unmade  int             `json:"unmade"` // not sent: the time bound had passed
	LastErr string          `json:"last_err,omitempty"`
}

// runVictim makes -requests requests of each kind, one of each every
// -every, each on a new connection (a client that was not already
// connected when the attack began).
func runVictim() {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path, key string) func() error {
		return func() error {
			req, _ := http.NewRequest("GET", "http://"+*httpAddr+path, nil)
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	query := func(network string) func() error {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		return func() error {
			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(*zone), dns.TypeA)
			r, _, err := c.Exchange(q, *dnsAddr)
			if err != nil {
				return err
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				return fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			return nil
		}
	}
	kinds := []struct {
		name string
		do   func() error
	}{
		{"GET /healthz", get("/healthz", "")},
		{"GET /api/v1/containers (API key)", get("/api/v1/containers", *key)},
		{"DNS A, UDP", query("udp")},
		{"DNS A, TCP", query("tcp")},
	}
	// Each kind on its own, so that a slow one does not space the others
	// out; bounded in time, so that a starved one ends the run anyway.
	out := make([]series, len(kinds))
	deadline := time.Now().Add(time.Duration(*requests)*(*every) + *victimSlack)
	var wg sync.WaitGroup
	for i, k := range kinds {
		out[i].Name = k.name
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(*every)
			defer tick.Stop()
			for range *requests {
				if time.Now().After(deadline) {
					out[i].Unmade++
					continue
				}
				t := time.Now()
				if err := k.do(); err != nil {
					out[i].Failed++
					out[i].LastErr = err.Error()
				} else {
					out[i].Lat = append(out[i].Lat, time.Since(t))
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func num(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func report(rs []result) {
	fmt.Println("| attack | request | answered | failed | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rs {
		for _, s := range r.victim {
			sort.Slice(s.Lat, func(i, j int) bool { return s.Lat[i] < s.Lat[j] })
			q := func(p float64) string {
				if len(s.Lat) == 0 {
					return "-"
				}
				return ms(s.Lat[min(len(s.Lat)-1, int(p*float64(len(s.Lat))))])
			}
			failed := strconv.Itoa(s.Failed)
			if s.Failed > 0 {
				failed = fmt.Sprintf("**%d** (%s)", s.Failed, s.LastErr)
			}
			if s.Unmade > 0 {
				failed += fmt.Sprintf(", **%d not sent** (time bound)", s.Unmade)
			}
			fmt.Printf("| %s | %s | %d | %s | %s | %s | %s |\n", r.attack.name, s.Name, len(s.Lat), failed, q(0.5), q(0.99), q(1))
		}
	}
	fmt.Println()
	fmt.Println("| attack | attacker dials/s (failed of all) | attacker connections moor holds, max: HTTP / DNS | accept queue max: HTTP / DNS | moor fds max | moor RSS max | moor heap in use max | CPU: moor / attacker |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		heap := "-"
		if r.maxHeap > 0 {
			heap = fmt.Sprintf("%.1f MiB", float64(r.maxHeap)/(1<<20))
		}
		if r.heapFailed > 0 {
			heap += fmt.Sprintf(" (%d scrapes failed)", r.heapFailed)
		}
		dials := "-"
		if r.target > 0 {
			dials = fmt.Sprintf("%s (%s of %s)", num(int(r.dialsPerSec)), num(int(r.dialFailed)), num(int(r.dials)))
		}
		m := r.maxSocks
		fmt.Printf("| %s | %s | %s / %s | %s / %s | %s | %.1f MiB | %s | %.0f%% / %.0f%% |\n", r.attack.name, dials,
			num(m.http), num(m.dns), num(m.httpQueue), num(m.dnsQueue), num(r.maxFds), float64(r.maxRSSKiB)/1024, heap, 100*r.moorCPU, 100*r.selfCPU)
	}
}
