package dnsserver

import (
	"fmt"
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

func benchHandle(b *testing.B, s *Snapshot, v view, q []byte) {
	out := make([]byte, 0, 65536)
	var r request
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		resp, _, act := s.handle(out, query{msg: q, view: v}, &r)
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
