package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/moorhq/moor/internal/domain"
)

// projectColumns read a project with its use, summed as quotas count it
// (projectUse): containers not being removed, their types' limits times
// their replicas.
const projectColumns = `name, internal, max_containers, max_memory_mb, max_cpus::float8, created_by, created_at,
	(SELECT count(*) FROM containers WHERE containers.project = projects.name),
	(SELECT coalesce(sum(replicas * coalesce((spec->'resources'->>'memory_mb')::bigint, 0)), 0)
		FROM containers WHERE containers.project = projects.name AND desired_state <> 'removed'),
	(SELECT coalesce(sum(replicas * coalesce((spec->'resources'->>'cpus')::float8, 0)), 0)
		FROM containers WHERE containers.project = projects.name AND desired_state <> 'removed'),
	subnets::text[]`

func scanProject(row pgx.Row) (domain.Project, error) {
	var p domain.Project
	err := row.Scan(&p.Name, &p.Internal, &p.MaxContainers, &p.MaxMemoryMB, &p.MaxCPUs, &p.CreatedBy, &p.CreatedAt, &p.Containers,
		&p.MemoryMB, &p.CPUs, &p.Subnets)
	return p, err
}

// lockProject reads a project under a row lock: creates in one project
// take turns (their quotas are checked under it), and a project cannot be
// deleted while a container is being created in it.
func lockProject(ctx context.Context, tx pgx.Tx, name string) (domain.Project, error) {
	p, err := scanProject(tx.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE name = $1 FOR UPDATE`, name))
	return p, mapErr(err, fmt.Sprintf("project %q", name))
}

// CreateProject records a new project (its network is the reconciler's to
// create) and a project.created event.
func (s *Store) CreateProject(ctx context.Context, np domain.NewProject, actor string) (domain.Project, error) {
	var p domain.Project
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanProject(tx.QueryRow(ctx, `
			INSERT INTO projects (name, internal, max_containers, max_memory_mb, max_cpus, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+projectColumns,
			np.Name, np.Internal, np.MaxContainers, np.MaxMemoryMB, np.MaxCPUs, actor))
		if err != nil {
			return mapErr(err, fmt.Sprintf("project %q", np.Name))
		}
		_, err = appendEvent(ctx, tx, "project.created", ref{project: np.Name}, actor, map[string]any{"name": np.Name, "internal": np.Internal})
		return err
	})
	return p, err
}

// GetProject returns one project.
func (s *Store) GetProject(ctx context.Context, name string) (domain.Project, error) {
	p, err := scanProject(s.pool.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE name = $1`, name))
	return p, mapErr(err, fmt.Sprintf("project %q", name))
}

// ListProjects returns every project, sorted by name.
func (s *Store) ListProjects(ctx context.Context) ([]domain.Project, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY name`)
	if err != nil {
		return nil, mapErr(err, "projects")
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Project, error) { return scanProject(r) })
	return ps, mapErr(err, "projects")
}

// maxNamed bounds the names a refusal lists.
const maxNamed = 20

// DeleteProject deletes an empty project; one that still has containers
// (including those being removed) is a conflict naming them. The default
// project stays.
func (s *Store) DeleteProject(ctx context.Context, name, actor string) error {
	if name == domain.DefaultProject {
		return fmt.Errorf("project %q holds the containers created without a project and cannot be deleted: %w", name, domain.ErrConflict)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockProject(ctx, tx, name); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name FROM containers WHERE project = $1 ORDER BY name`, name)
		if err != nil {
			return mapErr(err, fmt.Sprintf("project %q", name))
		}
		held, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return mapErr(err, fmt.Sprintf("project %q", name))
		}
		if len(held) > 0 {
			list := held
			if len(list) > maxNamed {
				list = append(list[:maxNamed:maxNamed], fmt.Sprintf("and %d more", len(held)-maxNamed))
			}
			return fmt.Errorf("project %q still has %d container(s): %s; remove them first: %w",
				name, len(held), strings.Join(list, ", "), domain.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projects WHERE name = $1`, name); err != nil {
			return mapErr(err, fmt.Sprintf("project %q", name))
		}
		_, err = appendEvent(ctx, tx, "project.deleted", ref{project: name}, actor, map[string]any{"name": name})
		return err
	})
}

// hostTaken is a host name another container holds: the transaction that
// found it is aborted, so holder looks the holder up afterwards.
type hostTaken struct {
	host string
	err  error
}

func (e *hostTaken) Error() string { return e.err.Error() }
func (e *hostTaken) Unwrap() error { return e.err }

// claimHosts records the host names a container holds.
func claimHosts(ctx context.Context, tx pgx.Tx, containerID string, hosts []string) error {
	for _, h := range hosts {
		_, err := tx.Exec(ctx, `INSERT INTO host_names (host, container_id) VALUES ($1, $2)`, h, containerID)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return &hostTaken{host: h, err: err}
		}
		if err != nil {
			return mapErr(err, "host name "+h)
		}
	}
	return nil
}

func (s *Store) hostHolder(ctx context.Context, t *hostTaken) error {
	var holder domain.ContainerRef
	err := s.pool.QueryRow(ctx, `SELECT c.project, c.name FROM host_names h JOIN containers c ON c.id = h.container_id WHERE h.host = $1`,
		t.host).Scan(&holder.Project, &holder.Name)
	if err != nil {
		return fmt.Errorf("host name %s is already taken by another container; try again: %w", t.host, domain.ErrConflict)
	}
	return fmt.Errorf("host name %s is already taken by container %q: choose another name (or alias), or remove %s first: %w",
		t.host, holder, holder, domain.ErrConflict)
}

// ClaimMissingHosts records the host names of containers that hold none
// (those created before host names were recorded), hosts giving each one's
// names. A name two of them share stays with the older container; it
// returns the names left unclaimed.
func (s *Store) ClaimMissingHosts(ctx context.Context, hosts func(domain.Container) []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+containerColumns+` FROM containers
		WHERE NOT EXISTS (SELECT 1 FROM host_names WHERE container_id = containers.id) ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr(err, "containers")
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Container, error) { return scanContainer(r) })
	if err != nil || len(cs) == 0 {
		return nil, mapErr(err, "containers")
	}
	var lost []string
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		for _, c := range cs {
			for _, h := range hosts(c) {
				tag, err := tx.Exec(ctx, `INSERT INTO host_names (host, container_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, h, c.ID)
				if err != nil {
					return mapErr(err, "host name "+h)
				}
				if tag.RowsAffected() == 0 {
					lost = append(lost, h)
				}
			}
		}
		return nil
	})
	return lost, err
}

// UpdateProject changes the quotas pp names, under the project's row lock
// (so no create or scale in the project is checked against the old ones
// meanwhile), and records a project.updated event. A quota lowered below
// the current use holds new containers and growth off; nothing is removed.
func (s *Store) UpdateProject(ctx context.Context, name string, pp domain.ProjectPatch, actor string) (domain.Project, error) {
	var p domain.Project
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := lockProject(ctx, tx, name)
		if err != nil {
			return err
		}
		details := map[string]any{"name": name}
		if pp.MaxContainers.Set {
			cur.MaxContainers, details["max_containers"] = pp.MaxContainers.Value, pp.MaxContainers.Value
		}
		if pp.MaxMemoryMB.Set {
			cur.MaxMemoryMB, details["max_memory_mb"] = pp.MaxMemoryMB.Value, pp.MaxMemoryMB.Value
		}
		if pp.MaxCPUs.Set {
			cur.MaxCPUs, details["max_cpus"] = pp.MaxCPUs.Value, pp.MaxCPUs.Value
		}
		p, err = scanProject(tx.QueryRow(ctx, `
			UPDATE projects SET max_containers = $2, max_memory_mb = $3, max_cpus = $4 WHERE name = $1
			RETURNING `+projectColumns, name, cur.MaxContainers, cur.MaxMemoryMB, cur.MaxCPUs))
		if err != nil {
			return mapErr(err, fmt.Sprintf("project %q", name))
		}
		_, err = appendEvent(ctx, tx, "project.updated", ref{project: name}, actor, details)
		return err
	})
	return p, err
}
