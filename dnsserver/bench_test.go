package dnsserver

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// tenThousand is a snapshot of 10,000 containers (host name and one replica).
func tenThousand(b testing.TB) *Snapshot {
	var d Data
	for i := 0; i < 10000; i++ {
		d.Records = append(d.Records, containerRecords(fmt.Sprintf("c%05d", i), fmt.Sprintf("172.20.%d.%d", i/250, i%250+2))...)
	}
	return mustBuild(b, testConfig(), d, 1)
}

// tenThousandProjects is 10,000 containers in ten projects p0..p9, each
// with its network 10.N.0.0/16.
func tenThousandProjects(b testing.TB) *Snapshot {
	d := Data{Networks: map[string][]netip.Prefix{}}
	for p := 0; p < 10; p++ {
		d.Networks[fmt.Sprintf("p%d", p)] = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(p), 0, 0}), 16)}
	}
	for i := 0; i < 10000; i++ {
		d.Records = append(d.Records, projectRecords(fmt.Sprintf("p%d", i%10), fmt.Sprintf("c%05d", i), fmt.Sprintf("10.%d.%d.%d", i%10, i/250, i%250+2))...)
	}
	cfg := testConfig()
	cfg.ReverseCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	return mustBuild(b, cfg, d, 1)
}

func benchHandle(b *testing.B, s *Snapshot, v view, q []byte, from ...string) {
	out := make([]byte, 0, 65536)
	var r request
	var addr netip.Addr
	if len(from) > 0 {
		addr = netip.MustParseAddr(from[0])
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		resp, _, act := s.handle(out, query{msg: q, addr: addr, view: v}, &r)
		if act != actReply || len(resp) == 0 {
			b.Fatal("no reply")
		}
	}
}

func BenchmarkHandle(b *testing.B) {
	s := tenThousand(b)
	b.Run("hit-A", func(b *testing.B) { benchHandle(b, s, viewHost, packQuery("c04242.moor.localhost.", dns.TypeA)) })
	b.Run("hit-A-edns", func(b *testing.B) {
		benchHandle(b, s, viewHost, packQuery("c04242.moor.localhost.", dns.TypeA, withEDNS(1232, false)))
	})
	b.Run("hit-container", func(b *testing.B) {
		benchHandle(b, s, viewHost|viewContainer, packQuery("0.c04242.moor.internal.", dns.TypeA))
	})
	b.Run("nodata", func(b *testing.B) { benchHandle(b, s, viewHost, packQuery("c04242.moor.localhost.", dns.TypeAAAA)) })
	b.Run("nxdomain", func(b *testing.B) { benchHandle(b, s, viewHost, packQuery("nope.moor.localhost.", dns.TypeA)) })
	b.Run("refused-slow", func(b *testing.B) { benchHandle(b, s, viewHost, packQuery("example.com.", dns.TypeA)) })
	// Views by project: a client of p2 (10.2.0.0/16) and of p3.
	ps := tenThousandProjects(b)
	b.Run("project-hit", func(b *testing.B) {
		benchHandle(b, ps, viewHost, packQuery("0.c04242.p2.moor.internal.", dns.TypeA), "10.2.0.9")
	})
	b.Run("project-other-nxdomain", func(b *testing.B) {
		benchHandle(b, ps, viewHost, packQuery("0.c04242.p2.moor.internal.", dns.TypeA), "10.3.0.9")
	})
	b.Run("project-host-zone", func(b *testing.B) {
		benchHandle(b, ps, viewHost, packQuery("c04242-p2.moor.localhost.", dns.TypeA), "10.3.0.9")
	})
	b.Run("project-host-client", func(b *testing.B) {
		benchHandle(b, ps, viewHost, packQuery("c04242-p2.moor.localhost.", dns.TypeA), "192.0.2.1")
	})
}

func BenchmarkBuild10k(b *testing.B) {
	var d Data
	for i := 0; i < 10000; i++ {
		d.Records = append(d.Records, containerRecords(fmt.Sprintf("c%05d", i), fmt.Sprintf("172.20.%d.%d", i/250, i%250+2))...)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(testConfig(), d, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHotPathAllocations holds the hot path to zero allocations per query
// (counted, not timed).
func TestHotPathAllocations(t *testing.T) {
	s := tenThousand(t)
	out := make([]byte, 0, 65536)
	var r request
	for name, q := range map[string][]byte{
		"hit":      packQuery("c00001.moor.localhost.", dns.TypeA),
		"edns":     packQuery("C00001.moor.localhost.", dns.TypeA, withEDNS(1232, true)),
		"nodata":   packQuery("c00001.moor.localhost.", dns.TypeTXT),
		"nxdomain": packQuery("zzz.moor.localhost.", dns.TypeA),
	} {
		if n := testing.AllocsPerRun(100, func() { s.handle(out, query{msg: q, view: viewHost}, &r) }); n != 0 {
			t.Errorf("%s: %.1f allocations per query, want 0", name, n)
		}
	}
	ps := tenThousandProjects(t)
	for name, c := range map[string]struct {
		q    []byte
		from string
	}{
		"project hit":              {packQuery("0.c04242.p2.moor.internal.", dns.TypeA), "10.2.0.9"},
		"another project's":        {packQuery("0.c04242.p2.moor.internal.", dns.TypeA), "10.3.0.9"},
		"project PTR":              {packQuery("244.16.2.10.in-addr.arpa.", dns.TypePTR), "10.2.0.9"},
		"host zone from a project": {packQuery("c04242-p2.moor.localhost.", dns.TypeA, withEDNS(1232, false)), "10.3.0.9"},
	} {
		q := query{msg: c.q, addr: netip.MustParseAddr(c.from), view: viewHost}
		if n := testing.AllocsPerRun(100, func() { ps.handle(out, q, &r) }); n != 0 {
			t.Errorf("%s: %.1f allocations per query, want 0", name, n)
		}
	}
}

// BenchmarkPatch10k is the incremental path: one container of 10,000
// changes its address and the snapshot is patched.
func BenchmarkPatch10k(b *testing.B) {
	cfg := testConfig()
	zn := cfg.zoneNames()
	var d Data
	for i := 0; i < 10000; i++ {
		d.Records = append(d.Records, containerRecords(fmt.Sprintf("c%05d", i), fmt.Sprintf("172.20.%d.%d", i/250, i%250+2))...)
	}
	var frags []*fragment
	byName := map[string]*fragment{}
	for k, g := range groupData(d) {
		f := buildFragment(cfg, zn, g)
		frags = append(frags, f)
		byName[k] = f
	}
	sortFragments(frags)
	snap, err := assemble(cfg, zn, frags, 1)
	if err != nil {
		b.Fatal(err)
	}
	old := byName["c04242"]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		g := groupData(Data{Records: containerRecords("c04242", fmt.Sprintf("172.20.99.%d", i%250+1))})["c04242"]
		f := buildFragment(cfg, zn, g)
		next, ok := patch(cfg, zn, snap, []*fragment{old}, []*fragment{f}, uint32(i+1))
		if !ok {
			b.Fatal("patch declined")
		}
		snap, old = next, f
	}
}
