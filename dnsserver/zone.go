// Package dnsserver is moor's authoritative DNS server: zones built from
// PostgreSQL into immutable snapshots with pre-packed answers, views by
// source address, forwarding for containers, zone transfers with NOTIFY, and
// a dnsmasq --hostsdir writer. It is the only package that imports miekg/dns.
package dnsserver

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/domain"
)

// Record is one DNS row: Zone is "host" or "container", Name is fully
// qualified (trailing dot optional), Replica is -1 when the row belongs to no
// replica.
type Record struct {
	Zone      string
	Name      string
	Type      string
	Value     string
	TTL       uint32
	Replica   int
	Container string
	// ContainerID groups rows by container (Container when empty).
	ContainerID string
	// Project is the container's ("" is the default project): its rows
	// outside the host zone are seen by that project's clients only.
	Project string
}

// Port is a named port of a container: an SRV record per running replica.
type Port struct {
	ContainerID string
	Container   string
	Project     string
	Name        string
	Port        uint16
	Proto       string // tcp or udp
}

// Alias is an extra host name of a container: a CNAME when it lies in the
// host zone.
type Alias struct {
	ContainerID string
	Container   string
	Project     string
	Name        string
}

// Data is what zones are built from.
type Data struct {
	Records []Record
	Ports   []Port
	Aliases []Alias
	// Networks are each project's subnets: a client there sees that
	// project's names in the container and reverse zones.
	Networks map[string][]netip.Prefix
}

// ZoneConfig says which zones are served and how their apexes look.
type ZoneConfig struct {
	HostZone      string
	ContainerZone string
	// TTL of the SOA, NS and apex records, and the negative-caching TTL.
	TTL uint32
	// HostNS and ContainerNS are the addresses of the zones' name server,
	// whose name is the zone apex itself (so it never collides with a
	// container name): A/AAAA records at the apex, the NS glue.
	HostNS      []netip.Addr
	ContainerNS []netip.Addr
	// ReverseCIDRs are the container networks: each gives a reverse zone
	// (rounded out to an octet for IPv4, a nibble for IPv6) holding PTR
	// records of container addresses. When empty, a /16 (IPv4) or /64 (IPv6)
	// zone is made around each container address.
	ReverseCIDRs []netip.Prefix
	// Wildcard adds *.NAME.<host zone> next to each host name.
	Wildcard bool
}

type view uint8

const (
	viewHost      view = 1
	viewContainer view = 2
)

// zone is one served zone.
type zone struct {
	name    string // lower-case, fully qualified
	wire    []byte // wire form of name
	vis     view
	soa     *dns.SOA
	soaWire []byte // the SOA RR, owner uncompressed: the authority section of negative answers
	idx     uint8  // position in Snapshot.zones, stable across patched snapshots
	once    sync.Once
	rrs     []dns.RR // every record in canonical order, SOA first: made on first use
	// wildcards counts the zone's wildcard names: negative answers then
	// take the slow path, which synthesises.
	wildcards int
}

// node is one owner name (or empty non-terminal).
type node struct {
	name string
	zi   uint8 // its zone: Snapshot.zones[zi]
	// pfx is the key prefix of the project whose clients alone see the
	// node (projectKey), "" when everyone who sees the zone does (the
	// host zone, zone apexes).
	pfx    string
	rrsets rrsets
	// packed holds the pre-packed responses, made on first use (so a
	// rebuild costs no packing). A node of an unchanged container is shared
	// by the next snapshot with its packed answers: they hold the zone's SOA
	// only at a known offset, where the serial is written at serve time.
	packed atomic.Pointer[packed]
}

// packed are the responses per query type; other is the response for every
// other type (NODATA, or the CNAME for an alias).
type packed struct {
	answers []answer
	other   answer
}

type answer struct {
	qtype  uint16
	msg    []byte
	soaOff int // offset of the SOA serial to patch, or -1
}

// Snapshot is an immutable picture of every zone, with every positive and
// NODATA response pre-packed.
type Snapshot struct {
	Serial uint32
	// Skipped lists rows that could not become records, with the reason.
	Skipped []string
	zones   []*zone
	nodes   *shardMap[*node] // key: lower-case wire-format name
	ents    *shardMap[int]   // empty non-terminal key -> fragments needing it
	merged  map[string]bool  // keys two containers claim: a change there needs a full assemble
	views   *views           // client address -> project
}

func (s *Snapshot) zoneOf(n *node) *zone { return s.zones[n.zi] }

// node returns the node of a wire-format key, or nil.
func (s *Snapshot) node(key string) *node {
	n, _ := s.nodes.get(key)
	return n
}

// lookup is the node of name as a client of the project with key prefix
// pfx sees it ("" : shared names only): the project's own, else a shared
// one. A name only another project has does not exist.
func (s *Snapshot) lookup(pfx, name string) *node {
	key := wireKey(name)
	if pfx != "" {
		if n := s.node(pfx + key); n != nil {
			return n
		}
	}
	return s.node(key)
}

// projectKey is the prefix of a project's keys in Snapshot.nodes: a byte
// no wire-format name starts with (labels are at most 63 bytes), then the
// name. Projects are DNS labels.
func projectKey(project string) string {
	if project == "" {
		project = domain.DefaultProject
	}
	return string(rune(0x40+len(project))) + project
}

func (c ZoneConfig) check() error {
	for field, z := range map[string]string{"HostZone": c.HostZone, "ContainerZone": c.ContainerZone} {
		if _, ok := dns.IsDomainName(z); !ok || strings.Trim(z, ".") == "" {
			return fmt.Errorf("%s: must be a domain name (got %q)", field, z)
		}
	}
	if dns.IsSubDomain(fqdn(c.HostZone), fqdn(c.ContainerZone)) || dns.IsSubDomain(fqdn(c.ContainerZone), fqdn(c.HostZone)) {
		return fmt.Errorf("ContainerZone: must not overlap HostZone (%q, %q)", c.ContainerZone, c.HostZone)
	}
	if c.TTL == 0 {
		return fmt.Errorf("TTL: must be at least 1 second")
	}
	if len(c.HostNS) == 0 {
		return fmt.Errorf("HostNS: must hold at least one address (the NS glue of the host zone)")
	}
	if len(c.ContainerNS) == 0 {
		return fmt.Errorf("ContainerNS: must hold at least one address (the NS glue of the container zone)")
	}
	return nil
}

func fqdn(s string) string { return dns.Fqdn(strings.ToLower(s)) }

func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() || a.Is4In6() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.Unmap().AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

// rrset is the records of one type at a name.
type rrset struct {
	t   uint16
	rrs []dns.RR
}

type rrsets []rrset

func (s rrsets) get(t uint16) []dns.RR {
	for i := range s {
		if s[i].t == t {
			return s[i].rrs
		}
	}
	return nil
}

// types lists the types held: SOA, NS first, then by number.
func (s rrsets) types() []uint16 {
	ts := make([]uint16, len(s))
	for i := range s {
		ts[i] = s[i].t
	}
	sort.Slice(ts, func(i, j int) bool {
		ri, rj := typeRank(ts[i]), typeRank(ts[j])
		if ri != rj {
			return ri < rj
		}
		return ts[i] < ts[j]
	})
	return ts
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// recordRR makes an RR from a dns_entries row.
func recordRR(name, typ, value string, ttl uint32) (dns.RR, error) {
	switch typ {
	case "A", "AAAA":
		a, err := netip.ParseAddr(value)
		if err != nil {
			return nil, fmt.Errorf("must be an IP address")
		}
		if (typ == "A") != (a.Is4() || a.Is4In6()) {
			return nil, fmt.Errorf("must be an IPv%s address for %s", map[bool]string{true: "4", false: "6"}[typ == "A"], typ)
		}
		return addrRR(name, a, ttl), nil
	case "CNAME", "SRV", "TXT":
		if typ == "TXT" && !strings.HasPrefix(value, `"`) {
			value = strconv.Quote(value)
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, typ, value))
		if err != nil || rr == nil {
			return nil, fmt.Errorf("must be valid %s data", typ)
		}
		return rr, nil
	}
	return nil, fmt.Errorf("record type must be A, AAAA, CNAME, SRV or TXT")
}

// reverseZone names the reverse zone covering p, rounded out to a label
// boundary (8 bits for IPv4, 4 for IPv6).
func reverseZone(p netip.Prefix) string {
	p = p.Masked()
	a := p.Addr()
	if a.Is4() {
		o := a.As4()
		labels := []string{"in-addr.arpa."}
		for i := 0; i < p.Bits()/8; i++ {
			labels = append([]string{strconv.Itoa(int(o[i]))}, labels...)
		}
		return strings.Join(labels, ".")
	}
	o := a.As16()
	labels := []string{"ip6.arpa."}
	for i := 0; i < p.Bits()/4; i++ {
		nib := o[i/2] >> 4
		if i%2 == 1 {
			nib = o[i/2] & 0xf
		}
		labels = append([]string{strconv.FormatInt(int64(nib), 16)}, labels...)
	}
	return strings.Join(labels, ".")
}

// records lists zone z in canonical order, SOA first (for transfers and
// listings), sorted once per snapshot.
func (s *Snapshot) records(z *zone) []dns.RR {
	z.once.Do(func() {
		// A name may have a node in several projects: each comes, by
		// project (transfers and listings are the whole zone).
		byName := map[string][]*node{}
		var names []string
		s.nodes.each(func(_ string, n *node) {
			if n.zi == z.idx && len(n.rrsets) > 0 {
				if byName[n.name] == nil {
					names = append(names, n.name)
				}
				byName[n.name] = append(byName[n.name], n)
			}
		})
		sortCanonical(names)
		for _, name := range names {
			ns := byName[name]
			sort.Slice(ns, func(i, j int) bool { return ns[i].pfx < ns[j].pfx })
			for _, n := range ns {
				for _, t := range n.rrsets.types() {
					z.rrs = append(z.rrs, n.rrsets.get(t)...)
				}
			}
		}
	})
	return z.rrs
}

func parent(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return ""
	}
	return name[i+1:]
}

func typeRank(t uint16) int {
	switch t {
	case dns.TypeSOA:
		return 0
	case dns.TypeNS:
		return 1
	}
	return 2
}

// sortCanonical orders names by DNS canonical order (RFC 4034 6.1): by
// labels from the right, each key computed once.
func sortCanonical(names []string) {
	type keyed struct{ key, name string }
	ks := make([]keyed, len(names))
	for i, n := range names {
		labels := dns.SplitDomainName(n)
		for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
			labels[i], labels[j] = labels[j], labels[i]
		}
		ks[i] = keyed{strings.Join(labels, "\x00"), n}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	for i := range ks {
		names[i] = ks[i].name
	}
}

// wireName is the wire form of a fully qualified name (no compression).
func wireName(name string) []byte {
	out := make([]byte, 0, len(name)+2)
	for name != "" && name != "." {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			i = len(name)
		}
		out = append(out, byte(i))
		out = append(out, name[:i]...)
		if i == len(name) {
			break
		}
		name = name[i+1:]
	}
	return append(out, 0)
}

func wireKey(name string) string { return string(wireName(strings.ToLower(name))) }

// Hosts returns every A/AAAA record as name -> addresses, for the dnsmasq
// hosts files (views do not exist there: every zone is included).
func (s *Snapshot) Hosts() map[string][]string {
	out := map[string][]string{}
	for _, z := range s.zones {
		for _, rr := range s.records(z) {
			name := strings.TrimSuffix(rr.Header().Name, ".")
			switch v := rr.(type) {
			case *dns.A:
				if rr.Header().Name != z.name && !strings.HasPrefix(name, "*.") {
					out[name] = append(out[name], v.A.String())
				}
			case *dns.AAAA:
				if rr.Header().Name != z.name && !strings.HasPrefix(name, "*.") {
					out[name] = append(out[name], v.AAAA.String())
				}
			}
		}
	}
	return out
}

func u16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
