package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// projectRecords are the rows moor writes for a running container of a
// project (as the store reads them: Container is NAME, or NAME.PROJECT
// outside the default project): the host name NAME or NAME-PROJECT, the
// container names NAME.PROJECT and, in the default project, NAME.
func projectRecords(project, name string, ips ...string) []Record {
	label, labels := name+"."+project, []string{name + "." + project}
	if project == "default" {
		label, labels = name, []string{name, name + ".default"}
	}
	rs := []Record{{Zone: "host", Name: hostLabel(label) + ".moor.localhost", Type: "A", Value: "127.0.0.1", TTL: 5, Replica: -1,
		Container: label, ContainerID: project + "/" + name, Project: project}}
	for i, ip := range ips {
		typ := "A"
		if strings.Contains(ip, ":") {
			typ = "AAAA"
		}
		for _, l := range labels {
			rs = append(rs,
				Record{Zone: "container", Name: l + ".moor.internal", Type: typ, Value: ip, TTL: 5, Replica: i, Container: label, ContainerID: project + "/" + name, Project: project},
				Record{Zone: "container", Name: fmt.Sprintf("%d.%s.moor.internal", i, l), Type: typ, Value: ip, TTL: 5, Replica: i, Container: label, ContainerID: project + "/" + name, Project: project})
		}
	}
	return rs
}

// projectsConfig has one reverse zone covering every project's network.
func projectsConfig() ZoneConfig {
	c := testConfig()
	c.ReverseCIDRs = []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("fd00::/16")}
	return c
}

// projectsFixture: "web" in the default project, in a and in b; "db" in b
// only; a default container named "a" (whose name is also project a's
// empty non-terminal).
func projectsFixture() Data {
	d := Data{Networks: map[string][]netip.Prefix{
		"default": {netip.MustParsePrefix("172.20.0.0/16")},
		"a":       {netip.MustParsePrefix("172.21.0.0/16")},
		"b":       {netip.MustParsePrefix("172.22.0.0/16"), netip.MustParsePrefix("fd00:22::/64")},
	}}
	d.Records = append(d.Records, projectRecords("default", "web", "172.20.0.2")...)
	d.Records = append(d.Records, projectRecords("default", "a", "172.20.0.3")...)
	d.Records = append(d.Records, projectRecords("a", "web", "172.21.0.2")...)
	d.Records = append(d.Records, projectRecords("b", "web", "172.22.0.2")...)
	d.Records = append(d.Records, projectRecords("b", "db", "fd00:22::5")...)
	d.Ports = []Port{
		{ContainerID: "a/web", Container: "web.a", Project: "a", Name: "http", Port: 8080, Proto: "tcp"},
		{ContainerID: "b/web", Container: "web.b", Project: "b", Name: "http", Port: 8080, Proto: "tcp"},
	}
	return d
}

// TestProjectViews: the source address picks the project whose names a
// client sees in the container and reverse zones; another project's names
// (and its empty non-terminals) are NXDOMAIN, answered exactly as a name
// nobody has; the host zone is public; transfers get everything.
func TestProjectViews(t *testing.T) {
	s := mustBuild(t, projectsConfig(), projectsFixture(), 42)
	var (
		// a project's clients need not be in ContainerCIDRs
		clientA = exchange{view: viewHost, forwarding: true, addr: netip.MustParseAddr("172.21.0.9")}
		clientB = exchange{view: viewHost, addr: netip.MustParseAddr("fd00:22::9")}
		// in ContainerCIDRs: the default project's network, and one in no
		// project's subnet (the router's, moor's own)
		clientDefault = exchange{view: viewHost | viewContainer, addr: netip.MustParseAddr("172.20.0.9")}
		router        = exchange{view: viewHost | viewContainer, addr: netip.MustParseAddr("172.30.0.5")}
		unknown       = exchange{view: viewHost, addr: netip.MustParseAddr("192.0.2.1")}
		peer          = exchange{view: viewHost, tcp: true, xfr: true, addr: netip.MustParseAddr("192.0.2.53")}
	)
	nx := expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}
	nodata := expect{act: actReply, aa: true, soa: true}
	a := func(name, ip string) expect {
		return expect{act: actReply, aa: true, answers: []string{name + " A " + ip}}
	}
	ptr := func(rev, target string) expect {
		return expect{act: actReply, aa: true, answers: []string{rev + " PTR " + target}}
	}
	for _, c := range []struct {
		name string
		x    exchange
		q    []byte
		want expect
	}{
		{"a: its own name", clientA, packQuery("web.a.moor.internal.", dns.TypeA), a("web.a.moor.internal.", "172.21.0.2")},
		{"a: its own replica", clientA, packQuery("0.web.a.moor.internal.", dns.TypeA), a("0.web.a.moor.internal.", "172.21.0.2")},
		{"a: its own SRV with the target's address", clientA, packQuery("_http._tcp.web.a.moor.internal.", dns.TypeSRV),
			expect{act: actReply, aa: true, answers: []string{"_http._tcp.web.a.moor.internal. SRV 0 10 8080 0.web.a.moor.internal."},
				extra: []string{"0.web.a.moor.internal. A 172.21.0.2"}}},
		{"a: its own empty non-terminal", clientA, packQuery("a.moor.internal.", dns.TypeA), nodata},
		{"a: b's name", clientA, packQuery("web.b.moor.internal.", dns.TypeA), nx},
		{"a: b's name, another type", clientA, packQuery("web.b.moor.internal.", dns.TypeTXT), nx},
		{"a: b's only name", clientA, packQuery("db.b.moor.internal.", dns.TypeAAAA), nx},
		{"a: b's SRV", clientA, packQuery("_http._tcp.web.b.moor.internal.", dns.TypeSRV), nx},
		{"a: b's empty non-terminal", clientA, packQuery("b.moor.internal.", dns.TypeA), nx},
		{"a: below b's name", clientA, packQuery("x.web.b.moor.internal.", dns.TypeA), nx},
		{"a: default's short name", clientA, packQuery("web.moor.internal.", dns.TypeA), nx},
		{"a: default's long name", clientA, packQuery("web.default.moor.internal.", dns.TypeA), nx},
		{"a: default's empty non-terminal", clientA, packQuery("default.moor.internal.", dns.TypeA), nx},
		{"a: its own PTR", clientA, packQuery("2.0.21.172.in-addr.arpa.", dns.TypePTR), ptr("2.0.21.172.in-addr.arpa.", "0.web.a.moor.internal.")},
		{"a: b's PTR", clientA, packQuery("2.0.22.172.in-addr.arpa.", dns.TypePTR), nx},
		{"a: default's PTR", clientA, packQuery("2.0.20.172.in-addr.arpa.", dns.TypePTR), nx},
		{"a: the reverse empty non-terminal of b's addresses", clientA, packQuery("22.172.in-addr.arpa.", dns.TypePTR), nx},
		{"a: the container zone's apex", clientA, packQuery("moor.internal.", dns.TypeSOA), expect{act: actReply, aa: true, nAnswers: 1}},
		{"a: the host zone is public", clientA, packQuery("web-b.moor.localhost.", dns.TypeA), a("web-b.moor.localhost.", "127.0.0.1")},
		{"a: a container, so forwarded", clientA, packQuery("example.com.", dns.TypeA), expect{act: actForward}},
		{"b over IPv6: its own name", clientB, packQuery("db.b.moor.internal.", dns.TypeAAAA),
			expect{act: actReply, aa: true, answers: []string{"db.b.moor.internal. AAAA fd00:22::5"}}},
		{"b: a's name", clientB, packQuery("web.a.moor.internal.", dns.TypeA), nx},
		{"b: its own PTR v6", clientB, packQuery("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.2.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR),
			ptr("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.2.0.0.0.0.d.f.ip6.arpa.", "0.db.b.moor.internal.")},
		{"default: its short name", clientDefault, packQuery("web.moor.internal.", dns.TypeA), a("web.moor.internal.", "172.20.0.2")},
		{"default: its long name", clientDefault, packQuery("web.default.moor.internal.", dns.TypeA), a("web.default.moor.internal.", "172.20.0.2")},
		{"default: its container named a", clientDefault, packQuery("a.moor.internal.", dns.TypeA), a("a.moor.internal.", "172.20.0.3")},
		{"default: a's name", clientDefault, packQuery("web.a.moor.internal.", dns.TypeA), nx},
		{"default: its PTR", clientDefault, packQuery("2.0.20.172.in-addr.arpa.", dns.TypePTR), ptr("2.0.20.172.in-addr.arpa.", "0.web.moor.internal.")},
		{"default: a's PTR", clientDefault, packQuery("2.0.21.172.in-addr.arpa.", dns.TypePTR), nx},
		{"router: the default project's names", router, packQuery("web.moor.internal.", dns.TypeA), a("web.moor.internal.", "172.20.0.2")},
		{"router: b's name", router, packQuery("web.b.moor.internal.", dns.TypeA), nx},
		{"unknown: no container zone", unknown, packQuery("web.moor.internal.", dns.TypeA), expect{act: actReply, rcode: dns.RcodeRefused}},
		{"unknown: no reverse zone", unknown, packQuery("2.0.21.172.in-addr.arpa.", dns.TypePTR), expect{act: actReply, rcode: dns.RcodeRefused}},
		{"unknown: the host zone", unknown, packQuery("web-a.moor.localhost.", dns.TypeA), a("web-a.moor.localhost.", "127.0.0.1")},
		{"peer: the container zone's transfer", peer, packQuery("moor.internal.", dns.TypeAXFR), expect{act: actTransfer}},
		{"peer: the reverse zone's transfer", peer, packQuery("172.in-addr.arpa.", dns.TypeAXFR), expect{act: actTransfer}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, act, _ := ask(t, s, c.x, c.q)
			if act != c.want.act {
				t.Fatalf("action %d, want %d", act, c.want.act)
			}
			if act == actReply {
				checkReply(t, c.q, m, c.want)
			}
		})
	}

	// Another project's name is answered byte for byte as a name of the
	// same length that nobody has, over both paths.
	for _, pair := range [][2]string{
		{"web.b.moor.internal.", "xyz.q.moor.internal."},
		{"b.moor.internal.", "q.moor.internal."},
		{"2.0.22.172.in-addr.arpa.", "9.9.22.172.in-addr.arpa."},
	} {
		for _, edit := range [][]func(*dns.Msg){nil, {withEDNS(1232, true)}, {func(m *dns.Msg) { m.Opcode = dns.OpcodeQuery; m.CheckingDisabled = true; m.Compress = false }}} {
			_, _, other := ask(t, s, clientA, packQuery(pair[0], dns.TypeA, edit...))
			_, _, none := ask(t, s, clientA, packQuery(pair[1], dns.TypeA, edit...))
			other, none = slices.Clone(other), slices.Clone(none)
			copy(other[12:], wireName(pair[1])) // the question as the other was asked
			if !slices.Equal(other, none) {
				t.Errorf("%s answered unlike %s:\n%x\n%x", pair[0], pair[1], other, none)
			}
			var r request
			q := packQuery(pair[0], dns.TypeA, edit...)
			parseFast(q, &r)
			slowMsg, _, _ := s.slow(query{msg: q, view: viewHost | viewContainer, pfx: projectKey("a")})
			if slowMsg.Rcode != dns.RcodeNameError || len(slowMsg.Answer) != 0 || len(slowMsg.Ns) != 1 {
				t.Errorf("%s on the slow path: %v", pair[0], slowMsg)
			}
		}
	}

	// Transfers and listings hold every project's names.
	var names []string
	for _, rr := range s.records(s.zoneByName("moor.internal.")) {
		names = append(names, rr.Header().Name)
	}
	for _, want := range []string{"web.moor.internal.", "web.default.moor.internal.", "web.a.moor.internal.", "web.b.moor.internal.", "db.b.moor.internal.", "a.moor.internal."} {
		if !slices.Contains(names, want) {
			t.Errorf("transfer of the container zone lacks %s: %v", want, names)
		}
	}
}

// TestViewsOf: addresses to projects, IPv4 by binary search, IPv6, mapped
// addresses; projects that are no DNS label are left out.
func TestViewsOf(t *testing.T) {
	v := newViews(map[string][]netip.Prefix{
		"a":   {netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.3.0.0/24")},
		"b":   {netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("fd00:2::/64")},
		"c":   {netip.MustParsePrefix("10.0.0.0/31")},
		"Bad": {netip.MustParsePrefix("10.9.0.0/16")},
	})
	for addr, want := range map[string]string{
		"10.1.0.1": "a", "10.1.255.255": "a", "10.3.0.200": "a", "10.3.1.0": "",
		"10.2.3.4": "b", "fd00:2::1": "b", "::ffff:10.2.0.1": "b", "fd00:3::1": "",
		"10.0.0.1": "c", "10.0.0.2": "", "9.255.255.255": "", "10.9.0.1": "", "255.255.255.255": "",
	} {
		pfx, ok := v.of(netip.MustParseAddr(addr))
		if want == "" && ok || want != "" && pfx != projectKey(want) {
			t.Errorf("%s: %q %v, want project %q", addr, pfx, ok, want)
		}
	}
	if _, ok := (*views)(nil).of(netip.MustParseAddr("10.1.0.1")); ok {
		t.Error("nil views found a project")
	}
	if n := testing.AllocsPerRun(100, func() { v.of(netip.MustParseAddr("10.2.3.4")) }); n != 0 {
		t.Errorf("%.1f allocations per lookup", n)
	}
}
