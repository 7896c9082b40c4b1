package dnsserver

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/domain"
)

// Zones are built in two pure steps: each container's rows become a
// fragment (its owner names and records), and fragments are assembled into a
// snapshot. A change of one container rebuilds its fragment only; assembling
// reuses the others' record sets, so a change is answered quickly even with
// tens of thousands of names.

// group is one container's rows.
type group struct {
	key     string // container id (name when rows carry no id)
	name    string
	project string
	records []Record
	ports   []Port
	aliases []Alias
}

func groupKey(id, name string) string {
	if id != "" {
		return id
	}
	return name
}

// groupData splits rows by container.
func groupData(d Data) map[string]*group {
	gs := map[string]*group{}
	get := func(id, name, project string) *group {
		k := groupKey(id, name)
		g := gs[k]
		if g == nil {
			if project == "" {
				project = domain.DefaultProject
			}
			g = &group{key: k, name: name, project: project}
			gs[k] = g
		}
		return g
	}
	for _, r := range d.Records {
		g := get(r.ContainerID, r.Container, r.Project)
		g.records = append(g.records, r)
	}
	for _, p := range d.Ports {
		g := get(p.ContainerID, p.Container, p.Project)
		g.ports = append(g.ports, p)
	}
	for _, a := range d.Aliases {
		g := get(a.ContainerID, a.Container, a.Project)
		g.aliases = append(g.aliases, a)
	}
	return gs
}

// hash digests a group's content, independent of row order.
func (g *group) hash() [32]byte {
	lines := make([]string, 0, len(g.records)+len(g.ports)+len(g.aliases)+1)
	lines = append(lines, "c\x00"+g.name, "P\x00"+g.project)
	for _, r := range g.records {
		lines = append(lines, "r\x00"+r.Zone+"\x00"+strings.ToLower(r.Name)+"\x00"+r.Type+"\x00"+r.Value+"\x00"+
			strconv.FormatUint(uint64(r.TTL), 10)+"\x00"+strconv.Itoa(r.Replica))
	}
	for _, p := range g.ports {
		lines = append(lines, "p\x00"+p.Name+"\x00"+strconv.Itoa(int(p.Port))+"\x00"+p.Proto)
	}
	for _, a := range g.aliases {
		lines = append(lines, "a\x00"+strings.ToLower(a.Name))
	}
	sort.Strings(lines)
	return sha256.Sum256([]byte(strings.Join(lines, "\n")))
}

// Hash is a digest of d's content, independent of row order: equal content
// gives an equal hash, so the serial rises only when something changed. It
// is the XOR of the containers' digests, so one container's change updates
// it without rehashing the others.
func (d Data) Hash() []byte {
	var h [32]byte
	for _, g := range groupData(d) {
		xorInto(&h, g.hash())
	}
	return h[:]
}

func xorInto(dst *[32]byte, src [32]byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// fragment is what one container contributes to the zones.
type fragment struct {
	key, container string
	hash           [32]byte
	entries        []fragEntry
	ents           []fragEntry // ancestors that must exist (empty non-terminals)
	revZones       []string    // reverse zones it needs (when none are configured)
	skipped        []string
}

type fragEntry struct {
	key    string // wire-format name, after the project's prefix outside the host zone
	pfx    string // that prefix (node.pfx)
	zone   string // the zone holding it
	name   string
	rrsets rrsets
}

// zoneNames are the zone names fixed by the configuration.
type zoneNames struct {
	host, cont string
	rev        []string // from ReverseCIDRs
}

func (c ZoneConfig) zoneNames() zoneNames {
	zn := zoneNames{host: fqdn(c.HostZone), cont: fqdn(c.ContainerZone)}
	seen := map[string]bool{}
	for _, p := range c.ReverseCIDRs {
		if z := reverseZone(p); !seen[z] {
			seen[z] = true
			zn.rev = append(zn.rev, z)
		}
	}
	sort.Strings(zn.rev)
	return zn
}

// longest returns the longest of zones that holds name ("" if none).
func longest(name string, zones ...[]string) string {
	best := ""
	for _, zs := range zones {
		for _, z := range zs {
			if (name == z || strings.HasSuffix(name, "."+z)) && len(z) > len(best) {
				best = z
			}
		}
	}
	return best
}

// buildFragment turns one container's rows into records. It is pure.
func buildFragment(cfg ZoneConfig, zn zoneNames, g *group) *fragment {
	f := &fragment{key: g.key, container: g.name, hash: g.hash()}
	byName := map[string]*fragEntry{}
	var order []string
	add := func(rr dns.RR) {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		e := byName[h.Name]
		if e == nil {
			e = &fragEntry{name: h.Name}
			byName[h.Name] = e
			order = append(order, h.Name)
		}
		e.rrsets = addRR(e.rrsets, rr)
	}
	skip := func(format string, args ...any) {
		f.skipped = append(f.skipped, "container "+g.name+": "+fmt.Sprintf(format, args...))
	}
	hdr := func(name string, t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}

	if !domain.IsLabel(g.project) {
		skip("project %q: must be a DNS label", g.project)
		return f
	}
	var replicas []int
	hostName := ""
	for _, r := range g.records {
		field := func() string { return fmt.Sprintf("record %s %s", r.Name, r.Type) }
		name := fqdn(r.Name)
		want := zn.host
		if r.Zone == "container" {
			want = zn.cont
		} else if r.Zone != "host" {
			skip("%s: zone must be host or container, got %q", field(), r.Zone)
			continue
		}
		if !strings.HasSuffix(name, "."+want) {
			skip("%s: name must lie below zone %s", field(), want)
			continue
		}
		if _, ok := dns.IsDomainName(name); !ok {
			skip("%s: name must be a domain name", field())
			continue
		}
		ttl := r.TTL
		if ttl == 0 {
			ttl = cfg.TTL
		}
		rr, err := recordRR(name, r.Type, r.Value, ttl)
		if err != nil {
			skip("%s: value %q: %v", field(), r.Value, err)
			continue
		}
		add(rr)
		switch {
		case r.Zone == "container" && r.Replica >= 0 && (r.Type == "A" || r.Type == "AAAA"):
			if !containsInt(replicas, r.Replica) {
				replicas = append(replicas, r.Replica)
			}
			ip, _ := netip.ParseAddr(r.Value)
			rev, _ := dns.ReverseAddr(ip.String())
			z := ""
			if len(cfg.ReverseCIDRs) > 0 {
				z = longest(rev, zn.rev)
			} else {
				bits := 16
				if !ip.Is4() {
					bits = 64
				}
				p, _ := ip.Prefix(bits)
				z = reverseZone(p)
				if !containsString(f.revZones, z) {
					f.revZones = append(f.revZones, z)
				}
			}
			if z != "" {
				if e := byName[rev]; e == nil || len(e.rrsets.get(dns.TypePTR)) == 0 {
					add(&dns.PTR{Hdr: hdr(rev, dns.TypePTR, ttl), Ptr: strconv.Itoa(r.Replica) + "." + g.name + "." + zn.cont})
				}
			}
		case r.Zone == "host" && (r.Type == "A" || r.Type == "AAAA") && name == hostLabel(g.name)+"."+zn.host:
			hostName = name
		}
	}

	// SRV for named ports, one target per replica with an address.
	sort.Ints(replicas)
	for _, p := range g.ports {
		if !domain.IsLabel(p.Name) || (p.Proto != "tcp" && p.Proto != "udp") {
			skip("port %s/%s: port name must be a DNS label and protocol tcp or udp", p.Name, p.Proto)
			continue
		}
		owner := "_" + p.Name + "._" + p.Proto + "." + g.name + "." + zn.cont
		for _, rep := range replicas {
			add(&dns.SRV{Hdr: hdr(owner, dns.TypeSRV, cfg.TTL), Priority: 0, Weight: 10, Port: p.Port,
				Target: strconv.Itoa(rep) + "." + g.name + "." + zn.cont})
		}
	}

	// The wildcard under the host name.
	if cfg.Wildcard && hostName != "" {
		wild := "*." + hostName
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			for _, rr := range byName[hostName].rrsets.get(t) {
				cp := dns.Copy(rr)
				cp.Header().Name = wild
				add(cp)
			}
		}
	}

	// Aliases in the host zone: CNAME to the container's host name.
	for _, a := range g.aliases {
		name := fqdn(a.Name)
		if !strings.HasSuffix(name, "."+zn.host) {
			continue // a name of another zone: Traefik routes it, someone else's DNS answers it
		}
		if hostName == "" {
			skip("alias %s: container has no host name", a.Name)
			continue
		}
		if e := byName[name]; e != nil {
			skip("alias %s: name already has records", a.Name)
			continue
		}
		add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME, cfg.TTL), Target: hostName})
	}

	// Names outside the host zone are the project's own: its clients
	// alone see them.
	pk := projectKey(g.project)
	sort.Strings(order)
	seenEnt := map[string]bool{}
	for _, name := range order {
		e := byName[name]
		e.zone = longest(name, []string{zn.host, zn.cont}, zn.rev, f.revZones)
		if e.zone != zn.host {
			e.pfx = pk
		}
		e.key = e.pfx + wireKey(name)
		f.entries = append(f.entries, *e)
		for p := parent(name); p != "" && len(p) > len(e.zone); p = parent(p) {
			if byName[p] != nil || seenEnt[p] {
				break
			}
			seenEnt[p] = true
			f.ents = append(f.ents, fragEntry{key: e.pfx + wireKey(p), pfx: e.pfx, zone: e.zone, name: p})
		}
	}
	return f
}

// addRR adds rr to its type's set unless it is a duplicate.
func addRR(sets rrsets, rr dns.RR) rrsets {
	t := rr.Header().Rrtype
	for i := range sets {
		if sets[i].t == t {
			for _, old := range sets[i].rrs {
				if dns.IsDuplicate(old, rr) {
					return sets
				}
			}
			sets[i].rrs = append(sets[i].rrs, rr)
			return sets
		}
	}
	return append(sets, rrset{t: t, rrs: []dns.RR{rr}})
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Build turns d into a snapshot with this SOA serial. It is pure.
func Build(cfg ZoneConfig, d Data, serial uint32) (*Snapshot, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	zn := cfg.zoneNames()
	var frags []*fragment
	for _, g := range groupData(d) {
		frags = append(frags, buildFragment(cfg, zn, g))
	}
	sortFragments(frags)
	s, err := assemble(cfg, zn, frags, serial)
	if err != nil {
		return nil, err
	}
	s.views = newViews(d.Networks)
	return s, nil
}

// sortFragments orders fragments by container name, which decides who wins a
// name two containers claim.
func sortFragments(fs []*fragment) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].container != fs[j].container {
			return fs[i].container < fs[j].container
		}
		return fs[i].key < fs[j].key
	})
}

// zoneList is the served zones in order: host, container, reverse zones
// sorted. Patched snapshots keep the order, so node zone indices hold.
func zoneList(zn zoneNames, frags []*fragment) []string {
	rev := append([]string{}, zn.rev...)
	for _, f := range frags {
		for _, z := range f.revZones {
			if !containsString(rev, z) {
				rev = append(rev, z)
			}
		}
	}
	sort.Strings(rev)
	return append([]string{zn.host, zn.cont}, rev...)
}

// newZone makes zone number idx of the list with this serial, and its apex
// node (SOA, NS, glue).
func newZone(cfg ZoneConfig, zn zoneNames, name string, idx int, serial uint32) (*zone, *node, error) {
	vis, nsName, glue := viewContainer, zn.cont, []netip.Addr(nil)
	switch idx {
	case 0:
		vis, nsName, glue = viewHost|viewContainer, zn.host, cfg.HostNS
	case 1:
		glue = cfg.ContainerNS
	}
	z := &zone{name: name, vis: vis, wire: wireName(name), idx: uint8(idx)}
	z.soa = &dns.SOA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: cfg.TTL},
		Ns: nsName, Mbox: "hostmaster." + name, Serial: serial, Refresh: 60, Retry: 30, Expire: 604800, Minttl: cfg.TTL}
	apex := &node{name: name, zi: uint8(idx)}
	apex.rrsets = addRR(apex.rrsets, z.soa)
	apex.rrsets = addRR(apex.rrsets, &dns.NS{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: cfg.TTL}, Ns: nsName})
	for _, a := range glue {
		apex.rrsets = addRR(apex.rrsets, addrRR(name, a, cfg.TTL))
	}
	buf := make([]byte, dns.Len(z.soa)+16)
	off, err := dns.PackRR(z.soa, buf, 0, nil, false)
	if err != nil {
		return nil, nil, fmt.Errorf("zone %s: pack SOA: %w", name, err)
	}
	z.soaWire = buf[:off]
	return z, apex, nil
}

const maxZones = 255

// assemble puts the zones' apexes and the fragments together into a new
// snapshot. Nodes are new (their packed answers start empty); record sets
// are shared with the fragments, which never change them.
func assemble(cfg ZoneConfig, zn zoneNames, frags []*fragment, serial uint32) (*Snapshot, error) {
	s := &Snapshot{Serial: serial, nodes: &shardMap[*node]{}, ents: &shardMap[int]{}, merged: map[string]bool{}}
	names := zoneList(zn, frags)
	if len(names) > maxZones {
		return nil, fmt.Errorf("ReverseCIDRs: at most %d reverse zones (got %d)", maxZones-2, len(names)-2)
	}
	idx := map[string]int{}
	for i, name := range names {
		z, apex, err := newZone(cfg, zn, name, i, serial)
		if err != nil {
			return nil, err
		}
		s.zones = append(s.zones, z)
		s.nodes.set(string(z.wire), apex)
		idx[name] = i
	}
	for _, f := range frags {
		s.Skipped = append(s.Skipped, f.skipped...)
		for i := range f.entries {
			e := &f.entries[i]
			zi, ok := idx[e.zone]
			if !ok {
				continue
			}
			if strings.HasPrefix(e.name, "*.") {
				s.zones[zi].wildcards++
			}
			old := s.node(e.key)
			if old == nil {
				s.nodes.set(e.key, &node{name: e.name, zi: uint8(zi), pfx: e.pfx, rrsets: e.rrsets})
				continue
			}
			s.merged[e.key] = true
			s.Skipped = append(s.Skipped, merge(old, e.rrsets, f.container)...)
		}
	}
	for _, f := range frags {
		s.addAncestors(f, idx)
	}
	return s, nil
}

// addAncestors counts f's empty non-terminals and creates their nodes.
func (s *Snapshot) addAncestors(f *fragment, idx map[string]int) {
	for i := range f.ents {
		e := &f.ents[i]
		zi, ok := idx[e.zone]
		if !ok {
			continue
		}
		c, _ := s.ents.get(e.key)
		s.ents.set(e.key, c+1)
		if s.node(e.key) == nil {
			s.nodes.set(e.key, &node{name: e.name, zi: uint8(zi), pfx: e.pfx})
		}
	}
}

// patch derives a snapshot from prev where the fragments in drop leave and
// those in add come in: every other node, with its packed answers, is
// shared. ok is false when the change needs a full assemble (a name two
// containers claim, a new reverse zone).
func patch(cfg ZoneConfig, zn zoneNames, prev *Snapshot, drop, add []*fragment, serial uint32) (*Snapshot, bool) {
	for _, f := range add {
		for _, z := range f.revZones {
			if prev.zoneByName(z) == nil {
				return nil, false
			}
		}
	}
	for _, fs := range [][]*fragment{drop, add} {
		for _, f := range fs {
			for i := range f.entries {
				if prev.merged[f.entries[i].key] {
					return nil, false
				}
			}
		}
	}
	s := &Snapshot{Serial: serial, nodes: prev.nodes.clone(), ents: prev.ents.clone(), merged: prev.merged, views: prev.views}
	idx := map[string]int{}
	for i, pz := range prev.zones {
		z, apex, err := newZone(cfg, zn, pz.name, i, serial)
		if err != nil {
			return nil, false
		}
		z.wildcards = pz.wildcards
		s.zones = append(s.zones, z)
		s.nodes.set(string(z.wire), apex)
		idx[pz.name] = i
	}
	for _, f := range drop {
		for i := range f.entries {
			e := &f.entries[i]
			zi, ok := idx[e.zone]
			if !ok {
				continue
			}
			if strings.HasPrefix(e.name, "*.") {
				s.zones[zi].wildcards--
			}
			s.nodes.del(e.key)
			if c, _ := s.ents.get(e.key); c > 0 {
				s.nodes.set(e.key, &node{name: e.name, zi: uint8(zi), pfx: e.pfx})
			}
		}
		for i := range f.ents {
			e := &f.ents[i]
			c, _ := s.ents.get(e.key)
			if c <= 1 {
				s.ents.del(e.key)
				if n := s.node(e.key); n != nil && len(n.rrsets) == 0 {
					s.nodes.del(e.key)
				}
			} else {
				s.ents.set(e.key, c-1)
			}
		}
	}
	for _, f := range add {
		s.Skipped = append(s.Skipped, f.skipped...)
		for i := range f.entries {
			e := &f.entries[i]
			zi, ok := idx[e.zone]
			if !ok {
				continue
			}
			if old := s.node(e.key); old != nil && len(old.rrsets) > 0 {
				return nil, false // claimed by another container
			}
			if strings.HasPrefix(e.name, "*.") {
				s.zones[zi].wildcards++
			}
			s.nodes.set(e.key, &node{name: e.name, zi: uint8(zi), pfx: e.pfx, rrsets: e.rrsets})
		}
		s.addAncestors(f, idx)
	}
	return s, true
}

func (s *Snapshot) zoneByName(name string) *zone {
	for _, z := range s.zones {
		if z.name == name {
			return z
		}
	}
	return nil
}

// merge adds a later container's records to a name already taken: a
// container's own records beat another's alias (CNAME), a CNAME never shares
// its name, and a PTR keeps one target (the first container's).
func merge(n *node, add rrsets, container string) []string {
	var skipped []string
	sets := make(rrsets, 0, len(n.rrsets))
	addsData := false
	for _, set := range add {
		addsData = addsData || set.t != dns.TypeCNAME
	}
	for i := range n.rrsets {
		if n.rrsets[i].t == dns.TypeCNAME && addsData {
			skipped = append(skipped, fmt.Sprintf("name %s: alias dropped, container %s has records there", n.name, container))
			continue
		}
		sets = append(sets, rrset{t: n.rrsets[i].t, rrs: append([]dns.RR(nil), n.rrsets[i].rrs...)})
	}
	for _, set := range add {
		switch {
		case set.t == dns.TypeCNAME && len(sets) > 0:
			skipped = append(skipped, fmt.Sprintf("container %s: alias %s: name already has records", container, n.name))
			continue
		case set.t == dns.TypePTR && len(sets.get(dns.TypePTR)) > 0:
			skipped = append(skipped, fmt.Sprintf("container %s: PTR %s: address already named", container, n.name))
			continue
		}
		for _, rr := range set.rrs {
			sets = addRR(sets, rr)
		}
	}
	n.rrsets = sets
	return skipped
}

// hostLabel is the host-zone label of a container named label in the
// container zone: "NAME.PROJECT" there is "NAME-PROJECT" here
// (domain.HostLabel); names and projects hold no '.'.
func hostLabel(label string) string { return strings.Replace(label, ".", "-", 1) }
