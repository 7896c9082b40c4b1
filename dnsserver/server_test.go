package dnsserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

// faultySource is the store with a switch that makes reads fail: the only
// fake, there to inject the database going away.
type faultySource struct {
	Source
	down atomic.Bool
}

var errDown = errors.New("injected: database down")

func (f *faultySource) DNSState(ctx context.Context) (domain.DNSState, error) {
	if f.down.Load() {
		return domain.DNSState{}, errDown
	}
	return f.Source.DNSState(ctx)
}

func (f *faultySource) DNSStateOf(ctx context.Context, ids []string) (domain.DNSState, error) {
	if f.down.Load() {
		return domain.DNSState{}, errDown
	}
	return f.Source.DNSStateOf(ctx, ids)
}

// rebuildOnce is one timed rebuild, run to its end.
func (s *Server) rebuildOnce() { s.rebuild(context.Background()) }

type testServer struct {
	t    *testing.T
	srv  *Server
	st   *store.Store
	src  *faultySource
	addr string // UDP and TCP, 127.0.0.1:port
}

// startServer runs a server on 127.0.0.1 (a free port) against a new,
// migrated PostgreSQL database.
func startServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, testenv.Postgres(t), logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Zones: testConfig(), Listen: []string{"127.0.0.1:0"}, Refresh: time.Hour, Sockets: 2}
	if edit != nil {
		edit(&cfg)
	}
	src := &faultySource{Source: st}
	srv, err := New(src, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	// Run's result is recorded once and read by whoever needs it: a Run
	// that ends early fails the test at once, and cleanup never waits on
	// a value someone else took.
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr = srv.Run(ctx)
	}()
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		st.ListenDNS(ctx, srv.Changed) // as cmd/moor wires it
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		<-listening
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
		st.Close()
	})
	ts := &testServer{t: t, srv: srv, st: st, src: src}
	if len(cfg.Listen) > 0 {
		select {
		case <-srv.Ready():
		case <-done:
			t.Fatalf("Run ended early: %v", runErr)
		}
		ts.addr = srv.Addrs()[0].String()
	}
	eventually(t, "first snapshot", func() bool { return srv.Snapshot() != nil })
	return ts
}

// eventually polls cond until it holds; the deadline only guards against a
// hang, it is not a speed requirement.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// addContainer records a running container the way moor does: host-zone row
// at create, container-zone rows per running replica by the reconciler.
func (ts *testServer) addContainer(name string, ports []domain.PortSpec, aliases []string, ips ...string) string {
	ts.t.Helper()
	ctx := context.Background()
	id := uuid()
	spec := domain.Type{ID: "testapp", Ports: ports}
	if len(aliases) > 0 {
		spec.Routing = &domain.Routing{Aliases: aliases}
	}
	_, err := ts.st.CreateContainer(ctx, domain.NewContainer{
		ID: id, Name: name, Type: "testapp", Image: "moor-testapp:latest", Spec: spec, Replicas: len(ips),
		DNS: []domain.DNSEntry{{Zone: "host", Name: name + ".moor.localhost", Type: "A", Value: "127.0.0.1", TTL: 5}},
	}, "test")
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.setIPs(id, name, ips...)
	return id
}

// setIPs records the replicas' addresses as the reconciler does.
func (ts *testServer) setIPs(id, name string, ips ...string) {
	ts.t.Helper()
	o := domain.Observation{ID: id, Name: name, Status: domain.StatusRunning, ContainerDNS: []domain.DNSEntry{}}
	for i, ip := range ips {
		rep := i
		typ := "A"
		if strings.Contains(ip, ":") {
			typ = "AAAA"
		}
		o.Instances = append(o.Instances, domain.Instance{Index: i, Status: domain.StatusRunning, InternalIP: ip})
		o.ContainerDNS = append(o.ContainerDNS,
			domain.DNSEntry{Zone: "container", Name: name + ".moor.internal", Type: typ, Value: ip, Replica: &rep, TTL: 5},
			domain.DNSEntry{Zone: "container", Name: fmt.Sprintf("%d.%s.moor.internal", i, name), Type: typ, Value: ip, Replica: &rep, TTL: 5})
	}
	if err := ts.st.RecordObservation(context.Background(), o); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testServer) remove(id, name string) {
	ts.t.Helper()
	ctx := context.Background()
	if _, err := ts.st.ChangeContainer(ctx, domain.Ref(name), domain.Change{Action: domain.ActionRemove}, "test"); err != nil {
		ts.t.Fatal(err)
	}
	if err := ts.st.FinishRemoval(ctx, id, name, nil); err != nil {
		ts.t.Fatal(err)
	}
}

// exchangeFrom sends m over network from the local address src (a
// 127.0.0.0/8 address, to play a client of a view).
func (ts *testServer) exchangeFrom(src, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	if src != "" {
		c.Dialer = dialerFrom(netip.MustParseAddr(src), network)
	}
	r, _, err := c.Exchange(m, ts.addr)
	return r, err
}

func (ts *testServer) ask(src, name string, qtype uint16) *dns.Msg {
	ts.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, err := ts.exchangeFrom(src, "udp", m)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		out = append(out, short(rr))
	}
	return out
}

func (ts *testServer) serial() uint32 {
	ts.t.Helper()
	r := ts.ask("", "moor.localhost.", dns.TypeSOA)
	if len(r.Answer) != 1 {
		ts.t.Fatalf("SOA query: %v", r)
	}
	return r.Answer[0].(*dns.SOA).Serial
}

func TestZonesFromPostgres(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ContainerCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	s0 := ts.serial()
	id := ts.addContainer("blog", []domain.PortSpec{{Name: "http", Port: 8080, Protocol: "tcp"}}, []string{"www.moor.localhost", "blog.example.org"}, "172.20.0.2", "172.20.0.3")
	eventually(t, "blog in the host zone", func() bool {
		return strings.Join(answers(ts.ask("", "blog.moor.localhost.", dns.TypeA)), ",") == "blog.moor.localhost. A 127.0.0.1"
	})
	// The replicas' addresses land in a second transaction (as the
	// reconciler writes them), so wait for that one too.
	eventually(t, "blog in the container zone", func() bool {
		return len(ts.ask("127.0.0.2", "blog.moor.internal.", dns.TypeA).Answer) == 2
	})
	s1 := ts.serial()
	if !serialLess(s0, s1) {
		t.Errorf("serial %d after a change, was %d: want it to rise", s1, s0)
	}
	for _, c := range []struct {
		src, name string
		qtype     uint16
		want      string
	}{
		{"127.0.0.2", "blog.moor.internal.", dns.TypeA, "blog.moor.internal. A 172.20.0.2,blog.moor.internal. A 172.20.0.3"},
		{"127.0.0.2", "1.blog.moor.internal.", dns.TypeA, "1.blog.moor.internal. A 172.20.0.3"},
		{"127.0.0.2", "_http._tcp.blog.moor.internal.", dns.TypeSRV, "_http._tcp.blog.moor.internal. SRV 0 10 8080 0.blog.moor.internal.,_http._tcp.blog.moor.internal. SRV 0 10 8080 1.blog.moor.internal."},
		{"127.0.0.2", "3.0.20.172.in-addr.arpa.", dns.TypePTR, "3.0.20.172.in-addr.arpa. PTR 1.blog.moor.internal."},
		{"", "www.moor.localhost.", dns.TypeA, "www.moor.localhost. CNAME blog.moor.localhost.,blog.moor.localhost. A 127.0.0.1"},
	} {
		if got := strings.Join(answers(ts.ask(c.src, c.name, c.qtype)), ","); got != c.want {
			t.Errorf("%s %s from %q:\n got %s\nwant %s", c.name, dns.TypeToString[c.qtype], c.src, got, c.want)
		}
	}

	// A replica's address changes without any event (status stays running):
	// the trigger's NOTIFY still wakes the server.
	ts.setIPs(id, "blog", "172.20.0.9")
	eventually(t, "new address", func() bool {
		return strings.Join(answers(ts.ask("127.0.0.2", "blog.moor.internal.", dns.TypeA)), ",") == "blog.moor.internal. A 172.20.0.9"
	})
	s2 := ts.serial()
	if !serialLess(s1, s2) {
		t.Errorf("serial %d after an address change, was %d", s2, s1)
	}
	// Nothing changed: a rebuild keeps the serial.
	ts.srv.Changed("")
	ts.setIPs(id, "blog", "172.20.0.9")
	if s := ts.serial(); s != s2 {
		t.Errorf("serial %d after a no-op rewrite, want %d", s, s2)
	}

	ts.remove(id, "blog")
	eventually(t, "blog gone", func() bool { return ts.ask("", "blog.moor.localhost.", dns.TypeA).Rcode == dns.RcodeNameError })
	if s3 := ts.serial(); !serialLess(s2, s3) {
		t.Errorf("serial %d after removal, was %d", s3, s2)
	}
}

func TestLastGoodSnapshotWhenDatabaseFails(t *testing.T) {
	ts := startServer(t, nil)
	ts.addContainer("keep", nil, nil, "172.20.0.5")
	eventually(t, "keep", func() bool { return len(ts.ask("", "keep.moor.localhost.", dns.TypeA).Answer) == 1 })
	// A full read while the database is up: "keep"'s rows may have arrived in
	// more than one notification, and a patch still in flight would otherwise
	// raise the serial after it is taken below.
	ts.srv.rebuildOnce()
	serial := ts.serial()
	ts.src.down.Store(true)
	ts.addContainer("later", nil, nil, "172.20.0.6")
	ts.srv.Changed("")
	// The rebuild that fails changes nothing: the same answers and serial.
	for i := 0; i < 5; i++ {
		ts.srv.rebuildOnce()
		if r := ts.ask("", "keep.moor.localhost.", dns.TypeA); len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("database down: keep.moor.localhost. -> %v", r)
		}
		if s := ts.serial(); s != serial {
			t.Fatalf("serial %d while the database is down, want %d", s, serial)
		}
	}
	ts.src.down.Store(false)
	ts.srv.Changed("")
	eventually(t, "later after recovery", func() bool { return len(ts.ask("", "later.moor.localhost.", dns.TypeA).Answer) == 1 })
}

// TestRunEndingEarlyFailsFast: when Run ends before its listeners are up
// (here the TCP port is taken), startServer fails the test at once. It used
// to hang in cleanup, waiting for a result the test had already taken, until
// the whole run timed out. The server is started in a child process, whose
// failure is the expected outcome.
func TestRunEndingEarlyFailsFast(t *testing.T) {
	if addr := os.Getenv("MOOR_DNS_TEST_TAKEN"); addr != "" {
		startServer(t, func(c *Config) { c.Listen = []string{addr} })
		return
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRunEndingEarlyFailsFast$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MOOR_DNS_TEST_TAKEN="+taken.Addr().String())
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("startServer still running after %v: it hangs when Run ends early\n%s", time.Since(t0), out)
	}
	if err == nil || !strings.Contains(string(out), "Run ended early") || !strings.Contains(string(out), "listen tcp") {
		t.Fatalf("child: %v, want it to fail with \"Run ended early\" and the listen error:\n%s", err, out)
	}
	t.Logf("the child failed in %v", time.Since(t0).Round(time.Millisecond))
}

func TestWithoutSelf(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(os_discard{}, nil))
	got := withoutSelf([]string{"127.0.0.1:5353", "127.0.0.1:53", "10.9.9.9:53", "127.0.0.5:5300"},
		[]string{"127.0.0.1:5353", "0.0.0.0:5300"}, logger)
	if strings.Join(got, ",") != "127.0.0.1:53,10.9.9.9:53" {
		t.Fatalf("upstreams %v: want moor's own addresses dropped", got)
	}
}

type os_discard struct{}

func (os_discard) Write(p []byte) (int, error) { return len(p), nil }
