package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// DNSChannel is the NOTIFY channel a trigger (migration 0003) signals on at
// the commit of any change of dns_entries or container_ports; the payload
// is the container's id.
const DNSChannel = "moor_dns"

// domain.DNSState reads the DNS rows, named ports and aliases of every container.
func (s *Store) DNSState(ctx context.Context) (domain.DNSState, error) {
	return s.dnsState(ctx, nil)
}

// DNSStateOf is domain.DNSState for the containers with these ids only (a
// container without rows, or gone, has none), with every project's
// networks.
func (s *Store) DNSStateOf(ctx context.Context, ids []string) (domain.DNSState, error) {
	if ids == nil {
		ids = []string{}
	}
	return s.dnsState(ctx, ids)
}

// dnsLabel is a container's name in the container zone, relative to it
// (domain.ContainerLabel, the default project's short form): what the DNS
// server names its records by.
const dnsLabel = `CASE WHEN c.project = 'default' THEN c.name ELSE c.name || '.' || c.project END`

func (s *Store) dnsState(ctx context.Context, ids []string) (domain.DNSState, error) {
	// One statement (one round trip, one consistent snapshot) for rows,
	// ports and aliases; the filter is a constant clause, never input.
	where, args := "", []any{}
	if ids != nil {
		where, args = "WHERE c.id = ANY($1::uuid[])", []any{ids}
	}
	// Every project's networks come along, read or patched: they are few.
	rows, err := s.pool.Query(ctx, `
		SELECT 'r', d.zone, d.name, d.record_type, d.value, d.replica, d.ttl, c.id::text, `+dnsLabel+`, c.project
		FROM dns_entries d JOIN containers c ON c.id = d.container_id `+where+`
		UNION ALL
		SELECT 'p', '', p.name, p.protocol, '', p.container_port, 0, c.id::text, `+dnsLabel+`, c.project
		FROM container_ports p JOIN containers c ON c.id = p.container_id `+where+`
		UNION ALL
		SELECT 'a', '', a.alias, '', '', NULL, 0, c.id::text, `+dnsLabel+`, c.project
		FROM containers c, jsonb_array_elements_text(CASE WHEN jsonb_typeof(c.spec->'routing'->'aliases') = 'array'
			THEN c.spec->'routing'->'aliases' ELSE '[]' END) AS a(alias) `+where+`
		UNION ALL
		SELECT 'n', '', '', '', array_to_string(subnets, ' '), NULL, 0, '', '', name
		FROM projects WHERE subnets <> '{}'
		ORDER BY 1, 2, 3, 4, 5`, args...)
	if err != nil {
		return domain.DNSState{}, mapErr(err, "dns state")
	}
	var st domain.DNSState
	var kind, zone, name, typ, value, id, container, project string
	var replica *int
	var ttl int
	_, err = pgx.ForEachRow(rows, []any{&kind, &zone, &name, &typ, &value, &replica, &ttl, &id, &container, &project}, func() error {
		switch kind {
		case "r":
			r := domain.DNSRecord{DNSEntry: domain.DNSEntry{Zone: zone, Name: name, Type: typ, Value: value, TTL: ttl},
				ContainerID: id, Container: container, Project: project}
			if replica != nil {
				v := *replica
				r.Replica = &v
			}
			st.Records = append(st.Records, r)
		case "p":
			port := 0
			if replica != nil {
				port = *replica
			}
			st.Ports = append(st.Ports, domain.DNSPort{ContainerID: id, Container: container, Project: project, Name: name, Port: port, Protocol: typ})
		case "a":
			st.Aliases = append(st.Aliases, domain.DNSAlias{ContainerID: id, Container: container, Project: project, Alias: name})
		case "n":
			for _, f := range strings.Fields(value) {
				p, err := netip.ParsePrefix(f)
				if err != nil {
					return fmt.Errorf("project %s: subnet %q: %w", project, f, err)
				}
				if st.Networks == nil {
					st.Networks = map[string][]netip.Prefix{}
				}
				st.Networks[project] = append(st.Networks[project], p)
			}
		}
		return nil
	})
	if err != nil {
		return domain.DNSState{}, mapErr(err, "dns state")
	}
	return st, nil
}

// RecordProjectSubnets records the subnets of a project's network as the
// engine gave them. Nothing is written when they are unchanged; a change
// wakes the DNS servers (migration 0013's trigger). A project deleted
// meanwhile is no error.
func (s *Store) RecordProjectSubnets(ctx context.Context, project string, subnets []netip.Prefix) error {
	strs := make([]string, 0, len(subnets))
	for _, p := range domain.SortedPrefixes(subnets) {
		strs = append(strs, p.String())
	}
	_, err := s.pool.Exec(ctx, `UPDATE projects SET subnets = $2::cidr[] WHERE name = $1 AND subnets IS DISTINCT FROM $2::cidr[]`, project, strs)
	return mapErr(err, fmt.Sprintf("project %q: subnets", project))
}

// DNSSerial returns the zones' SOA serial for content with this hash: the
// stored serial when the hash is the stored one, else the stored serial plus
// one (wrapping within 1..2^32-1), recorded with the new hash.
func (s *Store) DNSSerial(ctx context.Context, hash []byte) (uint32, error) {
	var serial int64
	err := s.pool.QueryRow(ctx, `
		WITH bumped AS (
			UPDATE dns_serial SET content_hash = $1,
				serial = CASE WHEN serial >= 4294967295 THEN 1 ELSE serial + 1 END
			WHERE content_hash <> $1 RETURNING serial)
		SELECT serial FROM bumped UNION ALL SELECT serial FROM dns_serial WHERE content_hash = $1
		LIMIT 1`, hash).Scan(&serial)
	if err != nil {
		return 0, mapErr(err, "dns serial")
	}
	return uint32(serial), nil
}

// ListenDNS calls fn with the id of every container whose DNS rows or ports
// changed, at commit, and with "" after each (re)connect (changes may have
// been missed), until ctx ends.
func (s *Store) ListenDNS(ctx context.Context, fn func(containerID string)) error {
	return s.listen(ctx, DNSChannel, "dns", fn)
}
