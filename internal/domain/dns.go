package domain

import (
	"net/netip"
	"slices"
)

// DNS zones a record belongs to.
const (
	ZoneHost      = "host"      // names clients outside Docker resolve (Traefik's address)
	ZoneContainer = "container" // names containers resolve (each replica's address)
)

// DNSEntry is one DNS record moor keeps for a container.
type DNSEntry struct {
	Zone    string `json:"zone"` // ZoneHost or ZoneContainer
	Name    string `json:"name"` // fully qualified, no trailing dot
	Type    string `json:"type"`
	Value   string `json:"value"`
	Replica *int   `json:"replica,omitempty"`
	TTL     int    `json:"ttl"`
}

// DNSRecord is a DNSEntry with its container's id, name and project.
type DNSRecord struct {
	DNSEntry
	ContainerID string
	Container   string
	Project     string
}

// DNSPort is a named port of a container, for SRV records.
type DNSPort struct {
	ContainerID string
	Container   string
	Project     string
	Name        string
	Port        int
	Protocol    string
}

// DNSAlias is an extra host name of a container (spec.routing.aliases).
type DNSAlias struct {
	ContainerID string
	Container   string
	Project     string
	Alias       string
}

// DNSState is everything the DNS server builds its zones from, read in one
// consistent snapshot, every list sorted.
type DNSState struct {
	Records []DNSRecord
	Ports   []DNSPort
	Aliases []DNSAlias
	// Networks are each project's subnets (from the engine, recorded by the
	// reconciler): a client's source address picks the project whose
	// container-zone names it sees.
	Networks map[string][]netip.Prefix
}

// SortedPrefixes returns ps masked, sorted and without duplicates: the
// order subnets are stored and compared in.
func SortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out)
}
