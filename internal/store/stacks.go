package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

const stackColumns = `project, name, compose, removing, created_by, created_at, updated_at`

func scanStack(row pgx.Row) (domain.Stack, error) {
	var st domain.Stack
	err := row.Scan(&st.Project, &st.Name, &st.Compose, &st.Removing, &st.CreatedBy, &st.CreatedAt, &st.UpdatedAt)
	return st, err
}

func stackName(project, name string) string {
	return fmt.Sprintf("stack %q", domain.ContainerRef{Project: project, Name: name})
}

// CreateStack records a stack and every container of it in one
// transaction: a name, host name, service name or host port another holds
// rolls everything back.
func (s *Store) CreateStack(ctx context.Context, ns domain.NewStack, actor string) (domain.Stack, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := lockProject(ctx, tx, ns.Project)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO stacks (project, name, compose, created_by) VALUES ($1, $2, $3, $4)`,
			ns.Project, ns.Name, ns.Compose, actor); err != nil {
			return mapErr(err, stackName(ns.Project, ns.Name))
		}
		var services []string
		for _, nc := range ns.Containers {
			if err := serviceNameFree(ctx, tx, nc); err != nil {
				return err
			}
			if _, err := insertContainer(ctx, tx, p, nc, actor); err != nil {
				return serviceErr(nc.StackService, err)
			}
			services = append(services, nc.StackService)
		}
		_, err = appendEvent(ctx, tx, "stack.created", ref{project: ns.Project}, actor, map[string]any{"stack": ns.Name, "services": services})
		return err
	})
	if err != nil {
		return domain.Stack{}, s.holder(ctx, err)
	}
	return s.GetStack(ctx, ns.Project, ns.Name)
}

// serviceErr names the service a refusal of its container is about (a
// quota, a taken name or port).
func serviceErr(service string, err error) error {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		return domain.Invalid("services."+service, "%s: %s", fe.Field, fe.Rule)
	}
	return err
}

// serviceNameFree refuses a service name another stack of the project
// has: both would answer to it on the project's network.
func serviceNameFree(ctx context.Context, tx pgx.Tx, nc domain.NewContainer) error {
	var other string
	err := tx.QueryRow(ctx, `SELECT stack FROM containers WHERE project = $1 AND stack_service = $2 AND stack <> $3`,
		nc.Project, nc.StackService, nc.Stack).Scan(&other)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return mapErr(err, "services."+nc.StackService)
	}
	return fmt.Errorf("services.%s: stack %q of project %q has a service %s already, and service names are names on the project's network: rename the service, or deploy the stack in another project: %w",
		nc.StackService, other, nc.Project, nc.StackService, domain.ErrConflict)
}

// GetStack returns a stack with its services' containers.
func (s *Store) GetStack(ctx context.Context, project, name string) (domain.Stack, error) {
	st, err := scanStack(s.pool.QueryRow(ctx, `SELECT `+stackColumns+` FROM stacks WHERE project = $1 AND name = $2`, project, name))
	if err != nil {
		return st, mapErr(err, stackName(project, name))
	}
	cs, err := s.listContainers(ctx, `project = $1 AND stack = $2`, project, name)
	if err != nil {
		return st, err
	}
	withContainers(&st, cs)
	return st, nil
}

// ListStacks returns the stacks of a project, sorted by name, with their
// services' containers.
func (s *Store) ListStacks(ctx context.Context, project string) ([]domain.Stack, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+stackColumns+` FROM stacks WHERE project = $1 ORDER BY name`, project)
	if err != nil {
		return nil, mapErr(err, "stacks")
	}
	sts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Stack, error) { return scanStack(r) })
	if err != nil {
		return nil, mapErr(err, "stacks")
	}
	cs, err := s.listContainers(ctx, `project = $1 AND stack IS NOT NULL`, project)
	if err != nil {
		return nil, err
	}
	for i := range sts {
		withContainers(&sts[i], slices.DeleteFunc(slices.Clone(cs), func(c domain.Container) bool { return c.Stack != sts[i].Name }))
	}
	return sts, nil
}

// withContainers sets st's containers and services from cs.
func withContainers(st *domain.Stack, cs []domain.Container) {
	st.Containers = cs
	st.Services = make([]domain.StackService, 0, len(cs))
	for _, c := range cs {
		st.Services = append(st.Services, domain.StackService{Name: c.StackService, Container: c.Name, Status: c.Status,
			DesiredState: c.DesiredState, Replicas: c.Replicas, Hash: c.DefinitionHash, DependsOn: dependencies(c.DependsOn)})
	}
	slices.SortFunc(st.Services, func(a, b domain.StackService) int { return strings.Compare(a.Name, b.Name) })
}

// lockStack reads a stack's row and its containers under locks.
func lockStack(ctx context.Context, tx pgx.Tx, project, name string) (domain.Stack, []domain.Container, error) {
	st, err := scanStack(tx.QueryRow(ctx, `SELECT `+stackColumns+` FROM stacks WHERE project = $1 AND name = $2 FOR UPDATE`, project, name))
	if err != nil {
		return st, nil, mapErr(err, stackName(project, name))
	}
	rows, err := tx.Query(ctx, `SELECT `+containerColumns+` FROM containers WHERE project = $1 AND stack = $2 ORDER BY name FOR UPDATE`, project, name)
	if err != nil {
		return st, nil, mapErr(err, stackName(project, name))
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Container, error) { return scanContainer(r) })
	return st, cs, mapErr(err, stackName(project, name))
}

// UpdateStack applies a new definition of a stack in one transaction. Per
// service: a new one is created; one whose hash is unchanged keeps its
// container (a new replica count is a scale, new dependencies are
// recorded); a changed one gets the new definition recorded on its
// container and a new config_version, so the reconciler replaces its
// replicas one at a time (name, volumes and history stay); one no longer in
// the file is removed.
func (s *Store) UpdateStack(ctx context.Context, project, name string, u domain.StackUpdate, actor string) (domain.Stack, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		p, err := lockProject(ctx, tx, project)
		if err != nil {
			return err
		}
		st, cur, err := lockStack(ctx, tx, project, name)
		if err != nil {
			return err
		}
		if st.Removing { // a stack being removed takes no change
			return fmt.Errorf("%s is being removed: %w", stackName(project, name), domain.ErrConflict)
		}
		byService := map[string]domain.Container{}
		for _, c := range cur {
			byService[c.StackService] = c
		}
		summary := map[string][]string{"created": {}, "replaced": {}, "unchanged": {}, "removed": {}}
		for _, nc := range u.Containers {
			c, ok := byService[nc.StackService]
			delete(byService, nc.StackService)
			what := "unchanged"
			switch {
			case !ok:
				if err := serviceNameFree(ctx, tx, nc); err != nil {
					return err
				}
				_, err = insertContainer(ctx, tx, p, nc, actor)
				what = "created"
			case c.DesiredState == domain.DesiredRemoved:
				return fmt.Errorf("services.%s: its container %s is still being removed; try again once it is gone: %w", nc.StackService, c.Name, domain.ErrConflict)
			case c.ID != nc.ID:
				return fmt.Errorf("%s changed meanwhile; try again: %w", stackName(project, name), domain.ErrConflict)
			case c.DefinitionHash != nc.DefinitionHash:
				err = redefine(ctx, tx, p, c, nc, actor)
				what = "replaced"
			default:
				err = keep(ctx, tx, p, c, nc, actor)
			}
			if err != nil {
				return serviceErr(nc.StackService, err)
			}
			summary[what] = append(summary[what], nc.StackService)
		}
		for _, c := range byService { // services gone from the file
			if c.DesiredState == domain.DesiredRemoved {
				continue
			}
			if err := removeForStack(ctx, tx, c, !u.RemoveVolumes, actor); err != nil {
				return err
			}
			summary["removed"] = append(summary["removed"], c.StackService)
		}
		if _, err := tx.Exec(ctx, `UPDATE stacks SET compose = $3, updated_at = now() WHERE project = $1 AND name = $2`, project, name, u.Compose); err != nil {
			return mapErr(err, stackName(project, name))
		}
		for _, v := range summary {
			slices.Sort(v)
		}
		_, err = appendEvent(ctx, tx, "stack.updated", ref{project: project}, actor, map[string]any{"stack": name, "services": summary})
		return err
	})
	if err != nil {
		return domain.Stack{}, s.holder(ctx, err)
	}
	return s.GetStack(ctx, project, name)
}

// redefine records a service's new definition on its container: the
// replicas are replaced with it (config_version rises).
func redefine(ctx context.Context, tx pgx.Tx, p domain.Project, c domain.Container, nc domain.NewContainer, actor string) error {
	if err := fitQuota(ctx, tx, p, c.ID, nc.Spec, nc.Replicas); err != nil {
		return err
	}
	spec, err := json.Marshal(nc.Spec)
	if err != nil {
		return err
	}
	env, err := json.Marshal(nc.Env)
	if err != nil {
		return err
	}
	deps, err := json.Marshal(dependencies(nc.DependsOn))
	if err != nil {
		return err
	}
	what := fmt.Sprintf("container %q", c.Ref())
	if _, err := tx.Exec(ctx, `
		UPDATE containers SET image = $2, spec = $3, env = $4, secrets = $5, replicas = $6, definition_hash = $7, depends_on = $8,
			config_version = config_version + 1, generation = generation + 1, updated_at = now() WHERE id = $1`,
		c.ID, nc.Image, spec, env, nc.Secrets, nc.Replicas, nc.DefinitionHash, deps); err != nil {
		return mapErr(err, what)
	}
	for _, table := range []string{"container_ports", "container_published_ports"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE container_id = $1`, c.ID); err != nil {
			return mapErr(err, what)
		}
	}
	if err := insertPorts(ctx, tx, c.ID, nc.Spec.Ports); err != nil {
		return err
	}
	if err := insertPublished(ctx, tx, c.ID, nc.Published); err != nil {
		return err
	}
	return record(ctx, tx, refOf(c), "update_requested", actor, map[string]any{
		"stack": c.Stack, "service": c.StackService, "hash": map[string]string{"from": c.DefinitionHash, "to": nc.DefinitionHash},
		"image": nc.Image, "replicas": nc.Replicas, "env": slices.Sorted(maps.Keys(nc.Env)),
	})
}

// keep leaves an unchanged service's container as it is, but for its
// replica count (a scale) and dependencies.
func keep(ctx context.Context, tx pgx.Tx, p domain.Project, c domain.Container, nc domain.NewContainer, actor string) error {
	if !slices.Equal(c.DependsOn, nc.DependsOn) {
		deps, err := json.Marshal(dependencies(nc.DependsOn))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE containers SET depends_on = $2 WHERE id = $1`, c.ID, deps); err != nil {
			return mapErr(err, fmt.Sprintf("container %q", c.Ref()))
		}
	}
	if c.Replicas == nc.Replicas {
		return nil
	}
	if err := fitQuota(ctx, tx, p, c.ID, c.Spec, nc.Replicas); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE containers SET replicas = $2, generation = generation + 1, updated_at = now() WHERE id = $1`,
		c.ID, nc.Replicas); err != nil {
		return mapErr(err, fmt.Sprintf("container %q", c.Ref()))
	}
	return record(ctx, tx, refOf(c), string(domain.ActionScale)+"_requested", actor, map[string]any{"from": c.Replicas, "to": nc.Replicas, "stack": c.Stack})
}

// removeForStack asks for a stack's container to go.
func removeForStack(ctx context.Context, tx pgx.Tx, c domain.Container, keepVolumes bool, actor string) error {
	if _, err := tx.Exec(ctx, `UPDATE containers SET desired_state = 'removed', status = 'removing', keep_volumes = $2,
		generation = generation + 1, updated_at = now() WHERE id = $1`, c.ID, keepVolumes); err != nil {
		return mapErr(err, fmt.Sprintf("container %q", c.Ref()))
	}
	return record(ctx, tx, refOf(c), string(domain.ActionRemove)+"_requested", actor, map[string]any{"keep_volumes": keepVolumes, "stack": c.Stack})
}

// DeleteStack asks for every container of a stack to go (their volumes
// too unless keepVolumes); the stack's row goes with the last of them (a
// trigger deletes it in the transaction that deletes that container's
// row), at once when it has none. Asking again is harmless.
func (s *Store) DeleteStack(ctx context.Context, project, name string, keepVolumes bool, actor string) (domain.Stack, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		st, cs, err := lockStack(ctx, tx, project, name)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.DesiredState == domain.DesiredRemoved {
				continue
			}
			if err := removeForStack(ctx, tx, c, keepVolumes, actor); err != nil {
				return err
			}
		}
		if len(cs) == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM stacks WHERE project = $1 AND name = $2`, project, name)
		} else {
			_, err = tx.Exec(ctx, `UPDATE stacks SET removing = true, updated_at = now() WHERE project = $1 AND name = $2`, project, name)
		}
		if err != nil {
			return mapErr(err, stackName(project, name))
		}
		if st.Removing {
			return nil
		}
		_, err = appendEvent(ctx, tx, "stack.removing", ref{project: project}, actor, map[string]any{"stack": name, "keep_volumes": keepVolumes})
		return err
	})
	if err != nil {
		return domain.Stack{}, err
	}
	st, err := s.GetStack(ctx, project, name)
	if err == nil || !errors.Is(err, domain.ErrNotFound) {
		return st, err
	}
	// Gone at once (it had no containers).
	return domain.Stack{Project: project, Name: name, Removing: true, Services: []domain.StackService{}, Containers: []domain.Container{}}, nil
}
