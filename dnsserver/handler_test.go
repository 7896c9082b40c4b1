package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// packQuery packs a query; edit may change the message before packing.
func packQuery(name string, qtype uint16, edit ...func(*dns.Msg)) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0xBEEF
	m.RecursionDesired = false
	for _, e := range edit {
		e(m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func withEDNS(size uint16, do bool) func(*dns.Msg) {
	return func(m *dns.Msg) { m.SetEdns0(size, do) }
}

type exchange struct {
	view       view
	tcp        bool
	xfr        bool
	forwarding bool
	addr       netip.Addr // the client's address: its project's view
}

func (x exchange) query(p []byte) query {
	return query{msg: p, addr: x.addr, view: x.view, tcp: x.tcp, xfrAllowed: x.xfr, forwarding: x.forwarding}
}

// ask runs p through the handler and unpacks the reply.
func ask(t *testing.T, s *Snapshot, x exchange, p []byte) (*dns.Msg, action, []byte) {
	t.Helper()
	var r request
	out := make([]byte, 0, 65536)
	b, _, act := s.handle(out, x.query(p), &r)
	if act != actReply || b == nil {
		return nil, act, nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not unpack: %v (%x)", err, b)
	}
	return m, act, b
}

var (
	host      = exchange{view: viewHost}
	container = exchange{view: viewHost | viewContainer, forwarding: true}
)

type expect struct {
	act      action
	rcode    int
	aa, tc   bool
	answers  []string // "NAME TYPE DATA" of each answer, in order; nil: don't check
	nAnswers int      // when answers is nil and nAnswers >= 0
	soa      bool     // an SOA in authority
	extra    []string // additional records (OPT excluded), "NAME TYPE DATA"
	check    func(t *testing.T, m *dns.Msg)
}

func short(rr dns.RR) string {
	h := rr.Header()
	return h.Name + " " + dns.TypeToString[h.Rrtype] + " " + strings.TrimPrefix(rr.String(), h.String())
}

// rfcCases is the behaviour table of DESIGN.md's "Facts for the DNS server".
func rfcCases() []struct {
	name string
	snap string // "basic", "wildcard", "big"
	x    exchange
	q    []byte
	want expect
} {
	type c = struct {
		name string
		snap string
		x    exchange
		q    []byte
		want expect
	}
	tcpHost := host
	tcpHost.tcp = true
	xfrTCP := exchange{view: viewHost | viewContainer, tcp: true, xfr: true}
	xfrUDP := exchange{view: viewHost | viewContainer, xfr: true}
	noFwd := container
	noFwd.forwarding = false
	return []c{
		{"A positive, AA set, RA clear", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"blog.moor.localhost. A 127.0.0.1"}}},
		{"case echoed in question", "basic", host, packQuery("BlOg.MoOr.LoCaLhOsT.", dns.TypeA),
			expect{act: actReply, aa: true, nAnswers: 1, check: func(t *testing.T, m *dns.Msg) {
				if m.Question[0].Name != "BlOg.MoOr.LoCaLhOsT." {
					t.Errorf("question %q, want the query's case", m.Question[0].Name)
				}
			}}},
		{"NXDOMAIN with SOA", "basic", host, packQuery("nope.moor.localhost.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}},
		{"NXDOMAIN below an existing name", "basic", host, packQuery("x.blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}},
		{"NODATA with SOA", "basic", host, packQuery("blog.moor.localhost.", dns.TypeTXT),
			expect{act: actReply, aa: true, soa: true}},
		{"NODATA for AAAA", "basic", host, packQuery("blog.moor.localhost.", dns.TypeAAAA),
			expect{act: actReply, aa: true, soa: true}},
		{"empty non-terminal is NOERROR", "basic", container, packQuery("_tcp.blog.moor.internal.", dns.TypeA),
			expect{act: actReply, aa: true, soa: true}},
		{"apex SOA", "basic", host, packQuery("moor.localhost.", dns.TypeSOA),
			expect{act: actReply, aa: true, nAnswers: 1}},
		{"apex NS with glue", "basic", host, packQuery("moor.localhost.", dns.TypeNS),
			expect{act: actReply, aa: true, answers: []string{"moor.localhost. NS moor.localhost."}, extra: []string{"moor.localhost. A 127.0.0.1"}}},
		{"container zone NS glue", "basic", container, packQuery("moor.internal.", dns.TypeNS),
			expect{act: actReply, aa: true, answers: []string{"moor.internal. NS moor.internal."}, extra: []string{"moor.internal. A 172.20.0.1"}}},
		{"replicas", "basic", container, packQuery("blog.moor.internal.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"blog.moor.internal. A 172.20.0.2", "blog.moor.internal. A 172.20.0.3"}}},
		{"one replica", "basic", container, packQuery("1.blog.moor.internal.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"1.blog.moor.internal. A 172.20.0.3"}}},
		{"AAAA", "basic", container, packQuery("db.moor.internal.", dns.TypeAAAA),
			expect{act: actReply, aa: true, answers: []string{"db.moor.internal. AAAA fd00:20::5"}}},
		{"SRV with target addresses", "basic", container, packQuery("_http._tcp.blog.moor.internal.", dns.TypeSRV),
			expect{act: actReply, aa: true,
				answers: []string{"_http._tcp.blog.moor.internal. SRV 0 10 8080 0.blog.moor.internal.", "_http._tcp.blog.moor.internal. SRV 0 10 8080 1.blog.moor.internal."},
				extra:   []string{"0.blog.moor.internal. A 172.20.0.2", "1.blog.moor.internal. A 172.20.0.3"}}},
		{"no SRV without a running replica", "basic", container, packQuery("_http._tcp.stopped.moor.internal.", dns.TypeSRV),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}},
		{"PTR", "basic", container, packQuery("3.0.20.172.in-addr.arpa.", dns.TypePTR),
			expect{act: actReply, aa: true, answers: []string{"3.0.20.172.in-addr.arpa. PTR 1.blog.moor.internal."}}},
		{"PTR v6", "basic", container, packQuery("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR),
			expect{act: actReply, aa: true, answers: []string{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa. PTR 0.db.moor.internal."}}},
		{"PTR unknown address", "basic", container, packQuery("9.9.20.172.in-addr.arpa.", dns.TypePTR),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}},
		{"CNAME alias with target", "basic", host, packQuery("www.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"www.moor.localhost. CNAME blog.moor.localhost.", "blog.moor.localhost. A 127.0.0.1"}}},
		{"CNAME alias, type the target lacks", "basic", host, packQuery("www.moor.localhost.", dns.TypeMX),
			expect{act: actReply, aa: true, answers: []string{"www.moor.localhost. CNAME blog.moor.localhost."}, soa: true}},
		{"CNAME asked directly", "basic", host, packQuery("www.moor.localhost.", dns.TypeCNAME),
			expect{act: actReply, aa: true, answers: []string{"www.moor.localhost. CNAME blog.moor.localhost."}}},
		{"ANY", "basic", host, packQuery("blog.moor.localhost.", dns.TypeANY),
			expect{act: actReply, aa: true, answers: []string{"blog.moor.localhost. A 127.0.0.1"}}},
		{"class ANY", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassANY }),
			expect{act: actReply, aa: true, answers: []string{"blog.moor.localhost. A 127.0.0.1"}}},
		{"class CHAOS refused", "basic", host, packQuery("version.bind.", dns.TypeTXT, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
			expect{act: actReply, rcode: dns.RcodeRefused, nAnswers: 0}},
		{"unknown class refused", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = 42 }),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"container zone refused to others", "basic", host, packQuery("blog.moor.internal.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"reverse zone refused to others", "basic", host, packQuery("2.0.20.172.in-addr.arpa.", dns.TypePTR),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"other names refused to others", "basic", host, packQuery("example.com.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"other names forwarded for containers", "basic", container, packQuery("example.com.", dns.TypeA),
			expect{act: actForward}},
		{"other names refused without upstreams", "basic", noFwd, packQuery("example.com.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"host zone seen by containers", "basic", container, packQuery("blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, nAnswers: 1}},
		{"EDNS echoed", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, withEDNS(4096, true)),
			expect{act: actReply, aa: true, nAnswers: 1, check: func(t *testing.T, m *dns.Msg) {
				o := m.IsEdns0()
				if o == nil || o.Version() != 0 || o.UDPSize() != maxUDPSize || !o.Do() {
					t.Errorf("OPT %v, want version 0, size %d, DO echoed", o, maxUDPSize)
				}
			}}},
		{"no EDNS when not asked", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, nAnswers: 1, check: func(t *testing.T, m *dns.Msg) {
				if m.IsEdns0() != nil {
					t.Error("OPT in reply to a query without one")
				}
			}}},
		{"EDNS on NXDOMAIN", "basic", host, packQuery("nope.moor.localhost.", dns.TypeA, withEDNS(1232, false)),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true, check: func(t *testing.T, m *dns.Msg) {
				if m.IsEdns0() == nil {
					t.Error("no OPT")
				}
			}}},
		{"BADVERS", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }),
			expect{act: actReply, rcode: dns.RcodeBadVers, check: func(t *testing.T, m *dns.Msg) {
				if o := m.IsEdns0(); o == nil || o.Version() != 0 {
					t.Errorf("OPT %v, want version 0", o)
				}
			}}},
		{"two OPT records: FORMERR", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) { m.Extra = append(m.Extra, dns.Copy(m.Extra[0])) }),
			expect{act: actReply, rcode: dns.RcodeFormatError}},
		{"NOTIFY opcode: NOTIMP", "basic", host, packQuery("moor.localhost.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
			expect{act: actReply, rcode: dns.RcodeNotImplemented}},
		{"UPDATE opcode: NOTIMP", "basic", host, packQuery("moor.localhost.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }),
			expect{act: actReply, rcode: dns.RcodeNotImplemented}},
		{"unknown opcode 3: NOTIMP", "basic", host, packQuery("moor.localhost.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = 3 }),
			expect{act: actReply, rcode: dns.RcodeNotImplemented}},
		{"unknown opcode 15: NOTIMP", "basic", host, packQuery("moor.localhost.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = 15 }),
			expect{act: actReply, rcode: dns.RcodeNotImplemented}},
		{"two questions: FORMERR", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, func(m *dns.Msg) {
			m.Question = append(m.Question, dns.Question{Name: "db.moor.localhost.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
		}), expect{act: actReply, rcode: dns.RcodeFormatError}},
		{"no question: FORMERR", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, func(m *dns.Msg) { m.Question = nil }),
			expect{act: actReply, rcode: dns.RcodeFormatError}},
		{"truncated question: FORMERR", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA)[:20],
			expect{act: actReply, rcode: dns.RcodeFormatError}},
		{"header only with a question count: FORMERR", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA)[:12],
			expect{act: actReply, rcode: dns.RcodeFormatError}},
		{"oversize: trailing garbage", "basic", host, append(packQuery("blog.moor.localhost.", dns.TypeA), make([]byte, 3000)...),
			expect{act: actReply, rcode: dns.RcodeFormatError}},
		{"a response is never answered", "basic", host, packQuery("blog.moor.localhost.", dns.TypeA, func(m *dns.Msg) { m.Response = true }),
			expect{act: actDrop}},
		{"shorter than a header: dropped", "basic", host, []byte{1, 2, 3},
			expect{act: actDrop}},
		{"TC over UDP without EDNS", "big", host, packQuery("big.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, nAnswers: 1}},
		{"TC over UDP when too big", "big", container, packQuery("big.moor.internal.", dns.TypeA),
			expect{act: actReply, aa: true, tc: true, nAnswers: 0}},
		{"TC over UDP even with EDNS 4096 (1232 cap)", "big", container, packQuery("big.moor.internal.", dns.TypeA, withEDNS(4096, false)),
			expect{act: actReply, aa: true, tc: true, nAnswers: 0, check: func(t *testing.T, m *dns.Msg) {
				if m.IsEdns0() == nil {
					t.Error("no OPT on truncated reply")
				}
			}}},
		{"full answer over TCP", "big", exchange{view: viewHost | viewContainer, tcp: true}, packQuery("big.moor.internal.", dns.TypeA),
			expect{act: actReply, aa: true, nAnswers: 100}},
		{"AXFR over UDP refused", "basic", xfrUDP, packQuery("moor.localhost.", dns.TypeAXFR),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"AXFR to a stranger refused", "basic", tcpHost, packQuery("moor.localhost.", dns.TypeAXFR),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"AXFR of a non-apex refused", "basic", xfrTCP, packQuery("blog.moor.localhost.", dns.TypeAXFR),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"AXFR over TCP to a peer", "basic", xfrTCP, packQuery("moor.localhost.", dns.TypeAXFR),
			expect{act: actTransfer}},
		{"IXFR over UDP: current SOA", "basic", xfrUDP, packQuery("moor.localhost.", dns.TypeIXFR),
			expect{act: actReply, aa: true, nAnswers: 1}},
		{"IXFR to a stranger refused", "basic", host, packQuery("moor.localhost.", dns.TypeIXFR),
			expect{act: actReply, rcode: dns.RcodeRefused}},
		{"wildcard synthesis", "wildcard", host, packQuery("x.Blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"x.Blog.moor.localhost. A 127.0.0.1"}}},
		{"wildcard deeper", "wildcard", host, packQuery("a.b.blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"a.b.blog.moor.localhost. A 127.0.0.1"}}},
		{"wildcard NODATA", "wildcard", host, packQuery("x.blog.moor.localhost.", dns.TypeTXT),
			expect{act: actReply, aa: true, soa: true}},
		{"wildcard does not cover the name itself", "wildcard", host, packQuery("blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"blog.moor.localhost. A 127.0.0.1"}}},
		{"wildcard asked literally", "wildcard", host, packQuery("*.blog.moor.localhost.", dns.TypeA),
			expect{act: actReply, aa: true, answers: []string{"*.blog.moor.localhost. A 127.0.0.1"}}},
		{"no wildcard under an alias", "wildcard", host, packQuery("x.www.moor.localhost.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}},
		{"no wildcard at the apex", "wildcard", host, packQuery("nope.moor.localhost.", dns.TypeA),
			expect{act: actReply, rcode: dns.RcodeNameError, aa: true, soa: true}},
	}
}

func snapshots(t *testing.T) map[string]*Snapshot {
	wild := testConfig()
	wild.Wildcard = true
	return map[string]*Snapshot{
		"basic":    mustBuild(t, testConfig(), fixture(), 42),
		"wildcard": mustBuild(t, wild, fixture(), 42),
		"big":      mustBuild(t, testConfig(), bigFixture(), 42),
		"projects": mustBuild(t, testConfig(), projectsFixture(), 42),
	}
}

func TestRFCBehaviour(t *testing.T) {
	snaps := snapshots(t)
	for _, c := range rfcCases() {
		t.Run(c.name, func(t *testing.T) {
			m, act, _ := ask(t, snaps[c.snap], c.x, c.q)
			if act != c.want.act {
				t.Fatalf("action %d, want %d", act, c.want.act)
			}
			if act != actReply {
				return
			}
			checkReply(t, c.q, m, c.want)
		})
	}
}

func checkReply(t *testing.T, q []byte, m *dns.Msg, w expect) {
	t.Helper()
	if len(q) >= 2 && m.Id != u16(q, 0) {
		t.Errorf("id %x, want %x", m.Id, u16(q, 0))
	}
	if !m.Response || m.RecursionAvailable {
		t.Errorf("QR %v RA %v, want QR set and RA clear", m.Response, m.RecursionAvailable)
	}
	if m.Rcode != w.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[w.rcode])
	}
	if m.Authoritative != w.aa {
		t.Errorf("AA %v, want %v", m.Authoritative, w.aa)
	}
	if m.Truncated != w.tc {
		t.Errorf("TC %v, want %v", m.Truncated, w.tc)
	}
	var got []string
	for _, rr := range m.Answer {
		got = append(got, short(rr))
	}
	if w.answers != nil {
		if strings.Join(got, "\n") != strings.Join(w.answers, "\n") {
			t.Errorf("answers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(w.answers, "\n"))
		}
	} else if len(got) != w.nAnswers {
		t.Errorf("%d answers, want %d: %v", len(got), w.nAnswers, got)
	}
	hasSOA := len(m.Ns) == 1 && m.Ns[0].Header().Rrtype == dns.TypeSOA
	if hasSOA != w.soa {
		t.Errorf("SOA in authority %v, want %v (%v)", hasSOA, w.soa, m.Ns)
	}
	if w.extra != nil {
		var ex []string
		for _, rr := range m.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				ex = append(ex, short(rr))
			}
		}
		if strings.Join(ex, "\n") != strings.Join(w.extra, "\n") {
			t.Errorf("additional:\n%s\nwant:\n%s", strings.Join(ex, "\n"), strings.Join(w.extra, "\n"))
		}
	}
	if w.check != nil {
		w.check(t, m)
	}
}

// TestFastMatchesSlow asks every name of the big fixture for several types
// through the pre-packed path and through miekg's, and wants the same
// messages.
func TestFastMatchesSlow(t *testing.T) {
	for name, s := range snapshots(t) {
		var names []string
		s.nodes.each(func(_ string, n *node) {
			names = append(names, n.name, "x."+n.name, strings.ToUpper(n.name))
		})
		for _, qn := range names {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS, dns.TypeSRV, dns.TypePTR, dns.TypeCNAME, dns.TypeTXT, dns.TypeANY} {
				for _, edns := range []bool{false, true} {
					for _, cv := range clientViews {
						v := cv.view
						var edits []func(*dns.Msg)
						if edns {
							edits = append(edits, withEDNS(1232, false))
						}
						q := packQuery(qn, qt, edits...)
						var r request
						if !parseFast(q, &r) {
							t.Fatalf("%s %s: fast parser declined a plain query", qn, dns.TypeToString[qt])
						}
						fast, ok := s.serveFast(make([]byte, 0, 65536), q, &r, v, cv.pfx, r.limit())
						if !ok {
							continue
						}
						slowMsg, _, _ := s.slow(query{msg: q, view: v, pfx: cv.pfx})
						slow := packReply(make([]byte, 0, 65536), slowMsg, r.limit())
						fm, sm := new(dns.Msg), new(dns.Msg)
						if err := fm.Unpack(fast); err != nil {
							t.Fatalf("%s: fast reply: %v", qn, err)
						}
						sm.Unpack(slow)
						// Owner names: the fast path echoes the query's case through
						// compression pointers; compare case-insensitively.
						if !strings.EqualFold(fm.String(), sm.String()) {
							t.Fatalf("%s/%s %s edns=%v view=%d:\nfast:\n%s\nslow:\n%s", name, qn, dns.TypeToString[qt], edns, v, fm, sm)
						}
					}
				}
			}
		}
	}
}

// clientViews are the views a client can have: the host zone alone, the
// default project's (in ContainerCIDRs), and two projects'.
var clientViews = []struct {
	view view
	pfx  string
}{
	{viewHost, ""},
	{viewHost | viewContainer, defaultKey},
	{viewHost | viewContainer, projectKey("a")},
	{viewHost | viewContainer, projectKey("b")},
}

func TestParseFastDeclines(t *testing.T) {
	for name, q := range map[string][]byte{
		"compressed name": {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1},
		"AXFR":            packQuery("moor.localhost.", dns.TypeAXFR),
		"CH":              packQuery("x.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
		"opcode":          packQuery("x.", dns.TypeA, func(m *dns.Msg) { m.Opcode = 2 }),
		"answer section":  packQuery("x.", dns.TypeA, func(m *dns.Msg) { m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: 1, Class: 1}}} }),
		"trailing":        append(packQuery("x.", dns.TypeA), 0),
		"edns v1":         packQuery("x.", dns.TypeA, withEDNS(1232, false), func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }),
	} {
		var r request
		if parseFast(q, &r) {
			t.Errorf("%s: fast path accepted it", name)
		}
	}
}

func ExampleSnapshot_ZoneText() {
	s, _ := Build(testConfig(), Data{Records: containerRecords("web", "172.20.0.9")}, 7)
	fmt.Print(strings.SplitAfterN(s.ZoneText(), "\n", 6)[4])
	// Output: web.moor.localhost.	5	IN	A	127.0.0.1
}

func TestResponsesByRcode(t *testing.T) {
	var st Stats
	st.Responses[dns.RcodeNameError] = 3
	st.Responses[dns.RcodeNotZone] = 2
	got := st.ResponsesByRcode()
	want := map[string]uint64{"NOERROR": 0, "FORMERR": 0, "SERVFAIL": 0, "NXDOMAIN": 3, "NOTIMP": 0, "REFUSED": 0, "NOTZONE": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
