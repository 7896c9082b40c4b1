package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestPatchMatchesAssemble applies changes one container at a time with
// patch (the incremental path) and checks the result equals a full
// assemble of the same data: same records, same answers for every name.
func TestPatchMatchesAssemble(t *testing.T) {
	for _, wildcard := range []bool{false, true} {
		cfg := testConfig()
		cfg.Wildcard = wildcard
		zn := cfg.zoneNames()
		groups := groupData(fixture())
		frags := map[string]*fragment{}
		for k, g := range groups {
			frags[k] = buildFragment(cfg, zn, g)
		}
		all := func() []*fragment {
			var fs []*fragment
			for _, f := range frags {
				fs = append(fs, f)
			}
			sortFragments(fs)
			return fs
		}
		prev, err := assemble(cfg, zn, all(), 1)
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			key  string
			data Data // the container's new rows; empty: removed
		}{
			{"new addresses", "blog", Data{
				Records: containerRecords("blog", "172.20.0.7"),
				Ports:   []Port{{Container: "blog", Name: "http", Port: 8080, Proto: "tcp"}},
				Aliases: []Alias{{Container: "blog", Name: "www.moor.localhost"}}}},
			{"removed", "db", Data{}},
			{"added with an alias", "shop", Data{
				Records: containerRecords("shop", "172.20.3.4", "172.20.3.5"),
				Ports:   []Port{{Container: "shop", Name: "https", Port: 443, Proto: "tcp"}},
				Aliases: []Alias{{Container: "shop", Name: "store.moor.localhost"}, {Container: "shop", Name: "x.stopped.moor.localhost"}}}},
			{"stopped (container rows gone)", "shop", Data{Records: containerRecords("shop"),
				Aliases: []Alias{{Container: "shop", Name: "store.moor.localhost"}}}},
			{"the parent of an alias removed", "stopped", Data{}},
			{"claims a taken name (full assemble)", "thief", Data{Records: []Record{
				{Zone: "host", Name: "blog.moor.localhost", Type: "A", Value: "127.0.0.9", TTL: 5, Replica: -1, Container: "thief"}}}},
			{"db back", "db", Data{Records: containerRecords("db", "fd00:20::9")}},
			{"the same name in project a", "a/blog", Data{Records: projectRecords("a", "blog", "172.20.9.7")}},
			{"project a's own name only", "a/db", Data{Records: projectRecords("a", "db", "172.20.9.8")}},
			{"project a's blog gone", "a/blog", Data{}},
		}
		for i, st := range steps {
			serial := uint32(i + 2)
			drop := []*fragment{}
			if f := frags[st.key]; f != nil {
				drop = append(drop, f)
				delete(frags, st.key)
			}
			add := []*fragment{}
			if g := groupData(st.data)[st.key]; g != nil {
				f := buildFragment(cfg, zn, g)
				frags[st.key] = f
				add = append(add, f)
			}
			want, err := assemble(cfg, zn, all(), serial)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := patch(cfg, zn, prev, drop, add, serial)
			if !ok {
				if !strings.Contains(st.name, "full assemble") {
					t.Errorf("wildcard=%v %s: patch declined", wildcard, st.name)
				}
				prev = want
				continue
			}
			if strings.Contains(st.name, "full assemble") {
				t.Errorf("%s: patch accepted a name two containers claim", st.name)
			}
			if got.ZoneText() != want.ZoneText() {
				t.Fatalf("wildcard=%v %s: zones differ:\npatched:\n%s\nassembled:\n%s", wildcard, st.name, got.ZoneText(), want.ZoneText())
			}
			compareAnswers(t, fmt.Sprintf("wildcard=%v %s", wildcard, st.name), got, want)
			prev = got
		}
	}
}

func compareAnswers(t *testing.T, what string, a, b *Snapshot) {
	t.Helper()
	names := map[string]bool{}
	for _, s := range []*Snapshot{a, b} {
		s.nodes.each(func(_ string, n *node) {
			names[n.name] = true
			names["x."+n.name] = true
		})
	}
	if a.nodes.len() != b.nodes.len() {
		t.Errorf("%s: %d names, want %d", what, a.nodes.len(), b.nodes.len())
	}
	// As the default project's clients and project a's see them.
	nets := newViews(map[string][]netip.Prefix{"a": {netip.MustParsePrefix("172.21.0.0/16")}})
	for _, s := range []*Snapshot{a, b} {
		if s.views == nil {
			s.views = nets
		}
	}
	out := make([]byte, 0, 65536)
	for name := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeTXT, dns.TypeCNAME} {
			for _, addr := range []netip.Addr{{}, netip.MustParseAddr("172.21.0.9")} {
				q := packQuery(name, qt)
				var r request
				ra, _, _ := a.handle(out, query{msg: q, addr: addr, view: viewHost | viewContainer}, &r)
				ra = append([]byte(nil), ra...)
				rb, _, _ := b.handle(out, query{msg: q, addr: addr, view: viewHost | viewContainer}, &r)
				ma, mb := new(dns.Msg), new(dns.Msg)
				ma.Unpack(ra)
				mb.Unpack(rb)
				if ma.String() != mb.String() {
					t.Fatalf("%s: %s %s from %v:\npatched:\n%s\nassembled:\n%s", what, name, dns.TypeToString[qt], addr, ma, mb)
				}
			}
		}
	}
}
