package dnsserver

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// Views by project: a client's source address picks the project whose
// names it sees in the container zone and the reverse zones. A client in a
// project's subnet sees that project's names (and is a container: it sees
// those zones even outside ContainerCIDRs); one in ContainerCIDRs and in no
// project's subnet (the router, moor's own network) sees the default
// project's; any other sees neither zone. A name of another project does
// not exist for it, exactly as a name nobody has. The host zone is one
// public namespace.

// views maps client addresses to projects' key prefixes.
type views struct {
	v4 []range4 // sorted by lo; Docker's subnets on one engine are disjoint
	v6 []prefixKey
	// sig is the networks in canonical form: equal networks, equal sig.
	sig string
}

type range4 struct {
	lo, hi uint32
	pfx    string
}

type prefixKey struct {
	p   netip.Prefix
	pfx string
}

// defaultKey is the default project's key prefix.
var defaultKey = projectKey(domain.DefaultProject)

// newViews builds the table of nets (project -> subnets); projects whose
// name is no DNS label are left out.
func newViews(nets map[string][]netip.Prefix) *views {
	v := &views{}
	projects := make([]string, 0, len(nets))
	for p := range nets {
		if domain.IsLabel(p) {
			projects = append(projects, p)
		}
	}
	sort.Strings(projects)
	var sig strings.Builder
	for _, project := range projects {
		pfx := projectKey(project)
		sig.WriteString(project)
		for _, p := range domain.SortedPrefixes(nets[project]) {
			sig.WriteString(" " + p.String())
			if p.Addr().Is4() {
				a := p.Addr().As4()
				lo := binary.BigEndian.Uint32(a[:])
				v.v4 = append(v.v4, range4{lo: lo, hi: lo | uint32(uint64(1)<<(32-p.Bits())-1), pfx: pfx})
			} else {
				v.v6 = append(v.v6, prefixKey{p: p, pfx: pfx})
			}
		}
		sig.WriteString("\n")
	}
	sort.Slice(v.v4, func(i, j int) bool { return v.v4[i].lo < v.v4[j].lo })
	v.sig = sig.String()
	return v
}

// signature is v.sig ("" for no table).
func (v *views) signature() string {
	if v == nil {
		return ""
	}
	return v.sig
}

// of is the key prefix of the project whose subnet holds a, if any. It
// allocates nothing: it runs for every query.
func (v *views) of(a netip.Addr) (string, bool) {
	if v == nil {
		return "", false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		// The last range starting at or before x.
		lo, hi := 0, len(v.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if v.v4[m].lo <= x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo > 0 && x <= v.v4[lo-1].hi {
			return v.v4[lo-1].pfx, true
		}
		return "", false
	}
	for i := range v.v6 {
		if v.v6[i].p.Contains(a) {
			return v.v6[i].pfx, true
		}
	}
	return "", false
}

// clientView is what the client of q sees: the zones, and the key prefix
// of its project ("" : no container zone, the host zone's names only).
func (s *Snapshot) clientView(q *query) (view, string) {
	if pfx, ok := s.views.of(q.addr); ok {
		return q.view | viewContainer, pfx
	}
	if q.view&viewContainer != 0 {
		return q.view, defaultKey
	}
	return q.view, ""
}
