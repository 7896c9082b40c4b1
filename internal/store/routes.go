package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// RoutingState returns what the Traefik provider needs of every container
// (name, status, ports and routing options of its spec, instances sorted by
// replica), in no particular order, and the sequence number of the last
// event it reflects. It is a true picture of one moment of the database,
// never a mix of two (see routingState).
func (s *Store) RoutingState(ctx context.Context) ([]domain.Container, int64, error) {
	return s.routingState(ctx, nil)
}

// RoutingStateOf is RoutingState for the containers with the given ids
// only; an id missing from the result has no container any more.
func (s *Store) RoutingStateOf(ctx context.Context, ids []string) ([]domain.Container, int64, error) {
	if ids == nil {
		ids = []string{}
	}
	return s.routingState(ctx, ids)
}

// routingState reads every container (ids nil) or the given ones.
//
// A few ids are read by one statement (PostgreSQL runs a statement on one
// snapshot). Everything is read by two plain scans in one repeatable-read,
// read-only transaction, unsorted (a join or ORDER BY costs ten times the
// scans at 10,000 containers).
func (s *Store) routingState(ctx context.Context, ids []string) ([]domain.Container, int64, error) {
	if ids != nil {
		cs, seq, err := s.routingStateOf(ctx, ids)
		return cs, seq, mapErr(err, "routing state")
	}
	var cs []domain.Container
	var seq int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT (SELECT coalesce(max(seq), 0) FROM events), (SELECT count(*) FROM containers)`).Scan(&seq, &n); err != nil {
			return err
		}
		cs = make([]domain.Container, 0, n) // a Container is large: no regrowth
		rows, err := tx.Query(ctx, `
			SELECT id::text, project, name, status, status_reason, desired_state, replicas, coalesce(spec->'routing', 'null'),
				coalesce(spec->'health', 'null')
			FROM containers`)
		if err != nil {
			return err
		}
		idx := make(map[string]int, n)
		var c domain.Container
		var routing, health []byte
		_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Project, &c.Name, &c.Status, &c.StatusReason, &c.DesiredState, &c.Replicas, &routing, &health}, func() error {
			n, err := routingContainer(c, nil, routing, health)
			idx[n.ID] = len(cs)
			cs = append(cs, n)
			return err
		})
		if err != nil {
			return err
		}
		// The ports as typed rows (written from the spec at creation), not
		// the spec's JSON: no decoding.
		rows, err = tx.Query(ctx, `SELECT container_id::text, name, container_port, protocol, http FROM container_ports`)
		if err != nil {
			return err
		}
		var id string
		var p domain.PortSpec
		_, err = pgx.ForEachRow(rows, []any{&id, &p.Name, &p.Port, &p.Protocol, &p.HTTP}, func() error {
			if i, ok := idx[id]; ok {
				cs[i].Spec.Ports = append(cs[i].Spec.Ports, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT container_id::text, replica, coalesce(host(internal_ip), ''), status, health
			FROM container_instances`)
		if err != nil {
			return err
		}
		var in domain.Instance
		_, err = pgx.ForEachRow(rows, []any{&id, &in.Index, &in.InternalIP, &in.Status, &in.Health}, func() error {
			if i, ok := idx[id]; ok {
				cs[i].Instances = append(cs[i].Instances, in)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, 0, mapErr(err, "routing state")
	}
	sortRouting(cs)
	return cs, seq, nil
}

// routingStateOf reads the containers with these ids in one statement.
func (s *Store) routingStateOf(ctx context.Context, ids []string) ([]domain.Container, int64, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.id::text, c.project, c.name, c.status, c.status_reason, c.desired_state, c.replicas,
			coalesce(c.spec->'ports', '[]'), coalesce(c.spec->'routing', 'null'), coalesce(c.spec->'health', 'null'),
			i.replica, coalesce(host(i.internal_ip), ''), coalesce(i.status, ''), coalesce(i.health, ''),
			(SELECT coalesce(max(seq), 0) FROM events)
		FROM containers c LEFT JOIN container_instances i ON i.container_id = c.id
		WHERE c.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, 0, err
	}
	var cs []domain.Container
	var seq int64
	idx := map[string]int{}
	var c domain.Container
	var ports, routing, health []byte
	var replica *int
	var in domain.Instance
	_, err = pgx.ForEachRow(rows, []any{&c.ID, &c.Project, &c.Name, &c.Status, &c.StatusReason, &c.DesiredState, &c.Replicas,
		&ports, &routing, &health, &replica, &in.InternalIP, &in.Status, &in.Health, &seq}, func() error {
		i, ok := idx[c.ID]
		if !ok {
			n, err := routingContainer(c, ports, routing, health)
			if err != nil {
				return err
			}
			i = len(cs)
			idx[c.ID] = i
			cs = append(cs, n)
		}
		if replica != nil {
			in.Index = *replica
			cs[i].Instances = append(cs[i].Instances, in)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	sortRouting(cs)
	return cs, seq, nil
}

// routingContainer is c with the ports, routing and health check of its
// spec (JSON; nil ports are left out, "null" is none).
func routingContainer(c domain.Container, ports, routing, health []byte) (domain.Container, error) {
	n := domain.Container{ID: c.ID, Project: c.Project, Name: c.Name, Status: c.Status, StatusReason: c.StatusReason,
		DesiredState: c.DesiredState, Replicas: c.Replicas}
	if ports != nil {
		if err := json.Unmarshal(ports, &n.Spec.Ports); err != nil {
			return n, fmt.Errorf("container %s spec.ports: %w", c.Name, err)
		}
	}
	if len(routing) > 0 && string(routing) != "null" {
		if err := json.Unmarshal(routing, &n.Spec.Routing); err != nil {
			return n, fmt.Errorf("container %s spec.routing: %w", c.Name, err)
		}
	}
	if len(health) > 0 && string(health) != "null" {
		if err := json.Unmarshal(health, &n.Spec.Health); err != nil {
			return n, fmt.Errorf("container %s spec.health: %w", c.Name, err)
		}
	}
	return n, nil
}

// sortRouting sorts each container's instances by replica (the containers
// stay in the database's order: the provider sorts names itself).
func sortRouting(cs []domain.Container) {
	for i := range cs {
		slices.SortFunc(cs[i].Instances, func(a, b domain.Instance) int { return a.Index - b.Index })
	}
}

// RoutesChannel is the NOTIFY channel triggers (migration 0002) signal on
// at the commit of any change of a container or its instances; the payload
// is the container's id.
const RoutesChannel = "moor_routes"

// ListenRoutes calls fn with the id of every container whose row or
// instances a committed transaction changed, and with "" after each
// (re)connect (changes may have been missed meanwhile: read everything),
// until ctx ends. It reconnects with backoff.
func (s *Store) ListenRoutes(ctx context.Context, fn func(id string)) error {
	return s.listen(ctx, RoutesChannel, "routes", fn)
}
