package dnsserver

import (
	"fmt"
	"strings"
)

// What tests look at inside the server, kept out of the production files.

// ZoneText renders every zone in master-file form, in canonical order, one
// zone after another: the golden files and the dnsmasq comparison use it.
func (s *Snapshot) ZoneText() string {
	var sb strings.Builder
	for _, z := range s.zones {
		fmt.Fprintf(&sb, "; zone %s\n", z.name)
		for _, rr := range s.records(z) {
			sb.WriteString(rr.String())
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

// Upstreams are the resolvers forwarded to, after dropping moor's own
// addresses.
func (s *Server) Upstreams() []string { return s.upstreams }

// len counts the names in every shard.
func (m *shardMap[V]) len() int {
	n := 0
	for _, s := range m.s {
		n += len(s)
	}
	return n
}
