package dnsserver

// Tests with the real tools from Debian: dig (dnsutils), kdig
// (knot-dnsutils), named-checkzone (bind9-utils) and dnsmasq. Missing tools
// skip the tests, except under CI where they fail them.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/testenv"
)

func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Unavailable(t, "%s not installed (Debian: dnsutils knot-dnsutils bind9-utils dnsmasq-base)", name)
	}
	return p
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, tool(t, name), args...).CombinedOutput()
	return string(out)
}

var (
	statusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	flagsRE  = regexp.MustCompile(`(?i);; flags: ([a-z ]*);`)
	countsRE = regexp.MustCompile(`(?i)ANSWER: (\d+)[,;] AUTHORITY: (\d+)`)
)

type toolReply struct {
	out, status string
	flags       map[string]bool
	answer      int
	authority   int
}

func parseTool(out string) toolReply {
	r := toolReply{out: out, flags: map[string]bool{}}
	if m := statusRE.FindStringSubmatch(out); m != nil {
		r.status = m[1]
	}
	if m := flagsRE.FindStringSubmatch(out); m != nil {
		for _, f := range strings.Fields(m[1]) {
			r.flags[strings.ToLower(f)] = true
		}
	}
	if m := countsRE.FindStringSubmatch(out); m != nil {
		fmt.Sscan(m[1], &r.answer)
		fmt.Sscan(m[2], &r.authority)
	}
	return r
}

func (ts *testServer) port() string {
	_, p, _ := net.SplitHostPort(ts.addr)
	return p
}

// dig runs dig against the server from src (a 127.0.0.0/8 address).
func (ts *testServer) dig(src string, args ...string) toolReply {
	ts.t.Helper()
	all := append([]string{"@127.0.0.1", "-p", ts.port(), "-b", src, "+norec", "+tries=1", "+time=5"}, args...)
	return parseTool(runTool(ts.t, "dig", all...))
}

func (ts *testServer) kdig(src string, args ...string) toolReply {
	ts.t.Helper()
	all := append([]string{"@127.0.0.1", "-p", ts.port(), "-b", src, "+norec", "+retry=0", "+time=5"}, args...)
	return parseTool(runTool(ts.t, "kdig", all...))
}

// rfcServer serves the fixture's containers, and big with 100 replicas,
// with 127.0.0.2 as the container network and wildcards on.
func rfcServer(t *testing.T) *testServer {
	ts := startServer(t, func(c *Config) {
		c.ContainerCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		c.Zones.Wildcard = true
	})
	ts.addContainer("blog", []domain.PortSpec{{Name: "http", Port: 8080, Protocol: "tcp"}}, []string{"www.moor.localhost"}, "172.20.0.2", "172.20.0.3")
	var ips []string
	for i := 0; i < 100; i++ {
		ips = append(ips, fmt.Sprintf("172.20.1.%d", i+1))
	}
	ts.addContainer("big", nil, nil, ips...)
	eventually(t, "zones loaded", func() bool {
		return len(ts.ask("127.0.0.2", "99.big.moor.internal.", dns.TypeA).Answer) == 1
	})
	return ts
}

// TestRFCWithDigAndKdig is DESIGN.md's behaviour list checked with the
// tools operators use.
func TestRFCWithDigAndKdig(t *testing.T) {
	tool(t, "dig")
	tool(t, "kdig")
	ts := rfcServer(t)
	const host, cont = "127.0.0.1", "127.0.0.2"
	type want struct {
		status         string
		flags, noFlags string
		answer         int // -1: don't check
		authority      int // -1: don't check
		contains       []string
	}
	cases := []struct {
		name string
		tool string
		src  string
		args []string
		want want
	}{
		{"AA, no RA", "dig", host, []string{"blog.moor.localhost", "A"}, want{"NOERROR", "qr aa", "ra", 1, 0, []string{"127.0.0.1"}}},
		{"case echoed", "dig", host, []string{"BLOG.Moor.LocalHost", "A"}, want{"NOERROR", "aa", "", 1, 0, []string{";BLOG.Moor.LocalHost.", "BLOG.Moor.LocalHost.\t5\tIN\tA\t127.0.0.1"}}},
		{"NXDOMAIN + SOA", "dig", host, []string{"nope.moor.localhost", "A"}, want{"NXDOMAIN", "aa", "ra", 0, 1, []string{"SOA\tmoor.localhost. hostmaster.moor.localhost."}}},
		{"NODATA + SOA", "dig", host, []string{"blog.moor.localhost", "TXT"}, want{"NOERROR", "aa", "", 0, 1, []string{"SOA"}}},
		{"empty non-terminal", "dig", cont, []string{"_tcp.blog.moor.internal", "SRV"}, want{"NOERROR", "aa", "", 0, 1, nil}},
		{"SRV", "dig", cont, []string{"_http._tcp.blog.moor.internal", "SRV"}, want{"NOERROR", "aa", "", 2, 0, []string{"0 10 8080 0.blog.moor.internal."}}},
		{"PTR", "dig", cont, []string{"-x", "172.20.0.3"}, want{"NOERROR", "aa", "", 1, 0, []string{"PTR\t1.blog.moor.internal."}}},
		{"CNAME alias", "dig", host, []string{"www.moor.localhost", "A"}, want{"NOERROR", "aa", "", 2, 0, []string{"CNAME\tblog.moor.localhost."}}},
		{"NS with glue", "dig", host, []string{"moor.localhost", "NS"}, want{"NOERROR", "aa", "", 1, 0, []string{"ADDITIONAL SECTION", "moor.localhost.\t\t5\tIN\tA\t127.0.0.1"}}},
		{"wildcard", "dig", host, []string{"anything.blog.moor.localhost", "A"}, want{"NOERROR", "aa", "", 1, 0, []string{"anything.blog.moor.localhost. 5\tIN\tA\t127.0.0.1"}}},
		{"container zone refused to others", "dig", host, []string{"blog.moor.internal", "A"}, want{"REFUSED", "", "aa", 0, 0, nil}},
		{"container zone for containers", "dig", cont, []string{"blog.moor.internal", "A"}, want{"NOERROR", "aa", "", 2, 0, nil}},
		{"out of zone refused", "dig", host, []string{"example.com", "A"}, want{"REFUSED", "", "aa", 0, 0, nil}},
		{"EDNS echoed", "dig", host, []string{"blog.moor.localhost", "A", "+edns=0"}, want{"NOERROR", "aa", "", 1, 0, []string{"EDNS: version: 0, flags:; udp: 1232"}}},
		{"BADVERS", "dig", host, []string{"blog.moor.localhost", "A", "+edns=1", "+noednsnegotiation"}, want{"BADVERS", "", "", 0, 0, []string{"EDNS: version: 0"}}},
		{"NOTIMP", "dig", host, []string{"blog.moor.localhost", "A", "+opcode=3"}, want{"NOTIMP", "", "", -1, -1, nil}},
		{"FORMERR without a question", "dig", host, []string{"blog.moor.localhost", "A", "+header-only"}, want{"FORMERR", "", "", -1, -1, nil}},
		{"CHAOS refused", "dig", host, []string{"version.bind", "CH", "TXT"}, want{"REFUSED", "", "", 0, 0, nil}},
		{"TC over UDP", "dig", cont, []string{"big.moor.internal", "A", "+ignore", "+noedns"}, want{"NOERROR", "tc aa", "", 0, 0, nil}},
		{"TCP fallback", "dig", cont, []string{"big.moor.internal", "A"}, want{"NOERROR", "aa", "tc", 100, 0, []string{"Truncated, retrying in TCP mode"}}},
		{"kdig A", "kdig", host, []string{"blog.moor.localhost", "A"}, want{"NOERROR", "qr aa", "ra", 1, 0, []string{"127.0.0.1"}}},
		{"kdig NXDOMAIN", "kdig", host, []string{"nope.moor.localhost", "A"}, want{"NXDOMAIN", "aa", "ra", 0, 1, []string{"SOA"}}},
		{"kdig EDNS", "kdig", host, []string{"blog.moor.localhost", "A", "+edns=0", "+bufsize=4096"}, want{"NOERROR", "aa", "", 1, 0, []string{"Version: 0; flags: ; UDP size: 1232 B"}}},
		{"kdig BADVERS", "kdig", host, []string{"blog.moor.localhost", "A", "+edns=1"}, want{"BADVERS", "", "", 0, 0, nil}},
		{"kdig TC", "kdig", cont, []string{"big.moor.internal", "A", "+ignore", "+noedns"}, want{"NOERROR", "tc aa", "", 0, 0, nil}},
		{"kdig TCP", "kdig", cont, []string{"big.moor.internal", "A", "+tcp"}, want{"NOERROR", "aa", "tc", 100, 0, nil}},
		{"kdig REFUSED", "kdig", host, []string{"blog.moor.internal", "A"}, want{"REFUSED", "", "aa", 0, 0, nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r toolReply
			if c.tool == "dig" {
				r = ts.dig(c.src, c.args...)
			} else {
				r = ts.kdig(c.src, c.args...)
			}
			w := c.want
			if r.status != w.status {
				t.Errorf("status %q, want %q", r.status, w.status)
			}
			for _, f := range strings.Fields(w.flags) {
				if !r.flags[f] {
					t.Errorf("flag %s missing", f)
				}
			}
			for _, f := range strings.Fields(w.noFlags) {
				if r.flags[f] {
					t.Errorf("flag %s set", f)
				}
			}
			if w.answer >= 0 && r.answer != w.answer {
				t.Errorf("ANSWER %d, want %d", r.answer, w.answer)
			}
			if w.authority >= 0 && r.authority != w.authority {
				t.Errorf("AUTHORITY %d, want %d", r.authority, w.authority)
			}
			for _, s := range w.contains {
				if !strings.Contains(r.out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			if t.Failed() {
				t.Logf("%s %v:\n%s", c.tool, c.args, r.out)
			}
		})
	}
}

// TestTransfers: AXFR over TCP to allowed peers only, IXFR, NOTIFY to a
// secondary on change, and named-checkzone accepting what was transferred.
func TestTransfers(t *testing.T) {
	tool(t, "dig")
	tool(t, "named-checkzone")
	// The secondary: a UDP socket on 127.0.0.3 that records NOTIFYs and
	// acknowledges them, then transfers from that address.
	sec, err := net.ListenPacket("udp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	notifies := make(chan *dns.Msg, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := sec.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			ack := new(dns.Msg)
			ack.SetReply(m)
			if b, err := ack.Pack(); err == nil {
				sec.WriteTo(b, from)
			}
			notifies <- m
		}
	}()
	ts := startServer(t, func(c *Config) {
		c.Secondaries = []string{sec.LocalAddr().String()}
		c.TransferPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}
	})
	ts.addContainer("web", []domain.PortSpec{{Name: "http", Port: 80, Protocol: "tcp"}}, nil, "172.20.0.7")
	// NOTIFY for each zone with the serial that holds web.
	var serial uint32
	eventually(t, "web", func() bool { return len(ts.ask("", "web.moor.localhost.", dns.TypeA).Answer) == 1 })
	// web's addresses arrive in a second transaction: a full read settles
	// the zones so that the serial taken here is the last one.
	ts.srv.rebuildOnce()
	serial = ts.serial()
	got := map[string]bool{}
	eventually(t, "NOTIFY of moor.localhost. at the new serial", func() bool {
		select {
		case m := <-notifies:
			if m.Opcode != dns.OpcodeNotify || !m.Authoritative || len(m.Question) != 1 || m.Question[0].Qtype != dns.TypeSOA {
				t.Errorf("not a NOTIFY: %v", m)
			}
			if len(m.Answer) == 1 && m.Answer[0].(*dns.SOA).Serial == serial {
				got[m.Question[0].Name] = true
			}
		default:
		}
		return got["moor.localhost."] && got["moor.internal."]
	})

	dir := t.TempDir()
	for _, c := range []struct{ src, zone string }{
		{"127.0.0.3", "moor.localhost"}, {"127.0.0.3", "moor.internal"}, {"127.0.0.4", "20.172.in-addr.arpa"},
	} {
		out := runTool(t, "dig", "@127.0.0.1", "-p", ts.port(), "-b", c.src, "+tries=1", "+time=5", "AXFR", c.zone)
		if strings.Contains(out, "Transfer failed") || !strings.Contains(out, "XFR size") {
			t.Fatalf("AXFR %s from %s:\n%s", c.zone, c.src, out)
		}
		file := filepath.Join(dir, c.zone+".zone")
		os.WriteFile(file, []byte(out), 0o644)
		check := runTool(t, "named-checkzone", "-i", "full", c.zone, file)
		if !strings.Contains(check, "OK") || !strings.Contains(check, fmt.Sprintf("loaded serial %d", serial)) {
			t.Errorf("named-checkzone %s:\n%s\nzone:\n%s", c.zone, check, out)
		}
	}
	// Strangers are refused, over TCP and UDP.
	if out := runTool(t, "dig", "@127.0.0.1", "-p", ts.port(), "-b", "127.0.0.1", "+tries=1", "+time=5", "AXFR", "moor.localhost"); !strings.Contains(out, "Transfer failed") {
		t.Errorf("AXFR from a stranger:\n%s", out)
	}
	m := new(dns.Msg)
	m.SetQuestion("moor.localhost.", dns.TypeAXFR)
	if r, err := ts.exchangeFrom("127.0.0.3", "udp", m); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP from a secondary: %v %v, want REFUSED", r, err)
	}
	// IXFR: current serial -> one SOA; older -> the whole zone.
	ixfr := func(from uint32) string {
		return runTool(t, "dig", "@127.0.0.1", "-p", ts.port(), "-b", "127.0.0.3", "+tries=1", "+time=5", fmt.Sprintf("IXFR=%d", from), "moor.localhost")
	}
	if out := ixfr(serial); strings.Count(out, "\tSOA\t") != 1 || strings.Contains(out, "web.moor.localhost") {
		t.Errorf("IXFR at the current serial: want one SOA:\n%s", out)
	}
	if out := ixfr(serial - 1); !strings.Contains(out, "web.moor.localhost.") || strings.Count(out, "\tSOA\t") != 2 {
		t.Errorf("IXFR from an older serial: want the whole zone:\n%s", out)
	}
}

// TestViewsAndForwarding: the container network gets other names from the
// upstream (a real dnsmasq), everyone else gets REFUSED; moor never lists
// itself as upstream.
func TestViewsAndForwarding(t *testing.T) {
	up := startDnsmasq(t, "--address=/upstream.test/192.0.2.7")
	ts := startServer(t, func(c *Config) {
		c.ContainerCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
		c.Upstreams = []string{up}
	})
	if strings.Join(ts.srv.Upstreams(), ",") != up {
		t.Fatalf("upstreams %v", ts.srv.Upstreams())
	}
	r := ts.ask("127.0.0.2", "www.upstream.test.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("forwarded query: %v", r)
	}
	m := new(dns.Msg)
	m.SetQuestion("www.upstream.test.", dns.TypeA)
	if r, err := ts.exchangeFrom("127.0.0.2", "tcp", m); err != nil || len(r.Answer) != 1 {
		t.Errorf("forwarded over TCP: %v %v", r, err)
	}
	if r := ts.ask("127.0.0.1", "www.upstream.test.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("other names from outside the container network: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// moor as its own upstream is dropped.
	ts2 := startServer(t, func(c *Config) {
		c.Listen = []string{"127.0.0.1:0"}
		c.Upstreams = []string{up}
	})
	self := withoutSelf([]string{ts2.addr, up}, []string{ts2.addr}, ts2.srv.log)
	if strings.Join(self, ",") != up {
		t.Errorf("upstreams %v: moor itself must be dropped", self)
	}
}

// startDnsmasq runs the real dnsmasq on 127.0.0.1 and a free port with extra
// options; it returns its address.
func startDnsmasq(t *testing.T, extra ...string) string {
	t.Helper()
	bin := tool(t, "dnsmasq")
	port := testenv.FreeUDPPort(t)
	args := append([]string{"--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-daemon", "--user=root",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port=" + port, "--pid-file=", "--log-facility=-"}, extra...)
	cmd := exec.Command(bin, args...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("dnsmasq: %s", logs.String())
		}
	})
	addr := "127.0.0.1:" + port
	eventually(t, "dnsmasq up", func() bool {
		m := new(dns.Msg)
		m.SetQuestion("up.check.", dns.TypeA)
		_, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, addr)
		return err == nil
	})
	return addr
}

// TestDnsmasqSync: MOOR_DNS_MODE=dnsmasq writes one hosts file per name into
// the --hostsdir of a real dnsmasq, which answers the names and stops when
// they go.
func TestDnsmasqSync(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "not-ours.example"), []byte("192.0.2.1 not-ours.example\n"), 0o644)
	dm := startDnsmasq(t, "--hostsdir="+dir)
	ts := startServer(t, func(c *Config) {
		c.Listen = nil
		c.HostsDir = dir
	})
	askDM := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dm)
		if err != nil {
			t.Fatalf("dnsmasq: %v", err)
		}
		return r
	}
	start := time.Now()
	id := ts.addContainer("shop", nil, nil, "172.20.0.8", "172.20.0.9")
	eventually(t, "shop in dnsmasq", func() bool {
		r := askDM("shop.moor.internal.")
		return len(r.Answer) == 2
	})
	t.Logf("name appeared in dnsmasq after %v", time.Since(start))
	if r := askDM("shop.moor.localhost."); len(r.Answer) != 1 {
		t.Errorf("host name in dnsmasq: %v", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "shop.moor.internal"))
	if err != nil || string(b) != "172.20.0.8 shop.moor.internal\n172.20.0.9 shop.moor.internal\n" {
		t.Errorf("hosts file: %q %v", b, err)
	}
	start = time.Now()
	ts.remove(id, "shop")
	eventually(t, "shop gone from dnsmasq", func() bool { return len(askDM("shop.moor.internal.").Answer) == 0 })
	t.Logf("name disappeared from dnsmasq after %v", time.Since(start))
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "not-ours.example" {
		t.Errorf("hosts dir holds %v: want only the file moor does not own", names)
	}
}
