package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

const containerColumns = `id::text, name, type_id, image, spec, env, desired_state, status,
	status_cause, status_reason, replicas, keep_volumes, generation, observed_generation,
	restart_at, created_by, created_at, updated_at, config_version, redeploy_at, pull_at, project,
	(SELECT internal FROM projects WHERE projects.name = containers.project),
	coalesce(stack, ''), coalesce(stack_service, ''), coalesce(definition_hash, ''), depends_on`

func scanContainer(row pgx.Row) (domain.Container, error) {
	var c domain.Container
	var spec, env, dependsOn []byte
	var restartAt, redeployAt, pullAt *time.Time
	err := row.Scan(&c.ID, &c.Name, &c.Type, &c.Image, &spec, &env, &c.DesiredState, &c.Status,
		&c.StatusCause, &c.StatusReason, &c.Replicas, &c.KeepVolumes, &c.Generation, &c.ObservedGeneration,
		&restartAt, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt, &c.ConfigVersion, &redeployAt, &pullAt, &c.Project, &c.ProjectInternal,
		&c.Stack, &c.StackService, &c.DefinitionHash, &dependsOn)
	if err != nil {
		return c, err
	}
	for _, t := range []struct {
		from *time.Time
		to   *time.Time
	}{{restartAt, &c.RestartAt}, {redeployAt, &c.RedeployAt}, {pullAt, &c.PullAt}} {
		if t.from != nil {
			*t.to = *t.from
		}
	}
	if err := json.Unmarshal(spec, &c.Spec); err != nil {
		return c, fmt.Errorf("container %s spec: %w", c.Name, err)
	}
	if err := json.Unmarshal(env, &c.Env); err != nil {
		return c, fmt.Errorf("container %s env: %w", c.Name, err)
	}
	if err := json.Unmarshal(dependsOn, &c.DependsOn); err != nil {
		return c, fmt.Errorf("container %s depends_on: %w", c.Name, err)
	}
	return c, nil
}

// CreateContainer inserts a container with its ports, DNS rows, pending
// instances, a history row and an event, in one transaction.
func (s *Store) CreateContainer(ctx context.Context, nc domain.NewContainer, actor string) (domain.Container, error) {
	if nc.Project == "" {
		nc.Project = domain.DefaultProject
	}
	var c domain.Container
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The project's row lock orders creates in one project (quotas
		// are checked under it) and keeps it from being deleted meanwhile.
		p, err := lockProject(ctx, tx, nc.Project)
		if err != nil {
			return err
		}
		c, err = insertContainer(ctx, tx, p, nc, actor)
		return err
	})
	if err != nil {
		return domain.Container{}, s.holder(ctx, err)
	}
	return c, nil
}

// insertContainer writes nc (its ports, DNS rows, pending instances,
// history and event) in tx, under the lock of its project p (lockProject),
// once it fits p's quotas, and returns it as written.
func insertContainer(ctx context.Context, tx pgx.Tx, p domain.Project, nc domain.NewContainer, actor string) (domain.Container, error) {
	if err := fitQuota(ctx, tx, p, "", nc.Spec, nc.Replicas); err != nil {
		return domain.Container{}, err
	}
	spec, err := json.Marshal(nc.Spec)
	if err != nil {
		return domain.Container{}, err
	}
	env, err := json.Marshal(nc.Env)
	if err != nil {
		return domain.Container{}, err
	}
	deps, err := json.Marshal(dependencies(nc.DependsOn))
	if err != nil {
		return domain.Container{}, err
	}
	cr := domain.ContainerRef{Project: nc.Project, Name: nc.Name}
	c, err := scanContainer(tx.QueryRow(ctx, `
		INSERT INTO containers (id, project, name, type_id, image, spec, env, secrets, desired_state, status, replicas, created_by,
			stack, stack_service, definition_hash, depends_on)
		VALUES ($1, $10, $2, $3, $4, $5, $6, $7, 'running', 'pending', $8, $9, nullif($11, ''), nullif($12, ''), nullif($13, ''), $14)
		RETURNING `+containerColumns,
		nc.ID, nc.Name, nc.Type, nc.Image, spec, env, nc.Secrets, nc.Replicas, actor, nc.Project,
		nc.Stack, nc.StackService, nc.DefinitionHash, deps))
	if err != nil {
		return c, mapErr(err, fmt.Sprintf("container %q", cr))
	}
	if err := claimHosts(ctx, tx, nc.ID, nc.Hosts); err != nil {
		return c, err
	}
	if err := insertPorts(ctx, tx, nc.ID, nc.Spec.Ports); err != nil {
		return c, err
	}
	for i := 0; i < nc.Replicas; i++ {
		if _, err := tx.Exec(ctx, `
			INSERT INTO container_instances (container_id, replica, status) VALUES ($1, $2, 'pending')`,
			nc.ID, i); err != nil {
			return c, err
		}
	}
	if err := insertDNS(ctx, tx, nc.ID, nc.DNS); err != nil {
		return c, err
	}
	if err := insertPublished(ctx, tx, nc.ID, nc.Published); err != nil {
		return c, err
	}
	details := map[string]any{
		// Names only: history and events are for every viewer.
		"type": nc.Type, "image": nc.Image, "replicas": nc.Replicas, "env": slices.Sorted(maps.Keys(nc.Env)),
	}
	if len(nc.Published) > 0 {
		details["publish"] = domain.PublishedStrings(nc.Published)
	}
	if nc.Stack != "" {
		details["stack"], details["service"] = nc.Stack, nc.StackService
	}
	if err := record(ctx, tx, ref{nc.ID, nc.Project, nc.Name}, "created", actor, details); err != nil {
		return c, err
	}
	// What the transaction wrote, without reading it back.
	c.Ports = make([]domain.Port, 0, len(nc.Spec.Ports))
	for _, p := range nc.Spec.Ports {
		c.Ports = append(c.Ports, domain.Port{Name: p.Name, Port: p.Port, Protocol: p.Protocol, HTTP: p.HTTP})
	}
	sortPorts(c.Ports)
	c.Published = slices.Clone(nc.Published)
	if c.Published == nil {
		c.Published = []domain.PublishedPort{}
	}
	domain.SortPublished(c.Published)
	c.Instances = make([]domain.Instance, nc.Replicas)
	for i := range c.Instances {
		c.Instances[i] = domain.Instance{Index: i, Status: domain.StatusPending, UpdatedAt: c.CreatedAt}
	}
	return c, nil
}

// insertPorts records a container's declared ports.
func insertPorts(ctx context.Context, tx pgx.Tx, containerID string, ports []domain.PortSpec) error {
	for _, p := range ports {
		if _, err := tx.Exec(ctx, `
			INSERT INTO container_ports (container_id, name, container_port, protocol, http)
			VALUES ($1, $2, $3, $4, $5)`, containerID, p.Name, p.Port, p.Protocol, p.HTTP); err != nil {
			return mapErr(err, "port "+p.Name)
		}
	}
	return nil
}

// dependencies is ds, never null in JSON.
func dependencies(ds []domain.Dependency) []domain.Dependency {
	if ds == nil {
		return []domain.Dependency{}
	}
	return ds
}

// sortPorts orders ports as fillDetails reads them.
func sortPorts(ps []domain.Port) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Port != ps[j].Port {
			return ps[i].Port < ps[j].Port
		}
		return ps[i].Name < ps[j].Name
	})
}

func insertDNS(ctx context.Context, tx pgx.Tx, containerID string, entries []domain.DNSEntry) error {
	for _, e := range entries {
		if _, err := tx.Exec(ctx, `
			INSERT INTO dns_entries (container_id, zone, name, record_type, value, replica, ttl)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (zone, name, record_type, value) DO NOTHING`,
			containerID, e.Zone, e.Name, e.Type, e.Value, e.Replica, e.TTL); err != nil {
			return mapErr(err, "dns entry "+e.Name)
		}
	}
	return nil
}

// GetContainer returns the named container with its instances and ports.
func (s *Store) GetContainer(ctx context.Context, cr domain.ContainerRef) (domain.Container, error) {
	return s.getContainer(ctx, "project = $2 AND name = $1", fmt.Sprintf("container %q", cr), cr.Name, cr.Project)
}

// GetContainerByID is GetContainer by id.
func (s *Store) GetContainerByID(ctx context.Context, id string) (domain.Container, error) {
	return s.getContainer(ctx, "id = $1", "container "+id, id)
}

// getContainer loads one container by a unique key (where is a constant,
// never input).
func (s *Store) getContainer(ctx context.Context, where, what string, args ...any) (domain.Container, error) {
	c, err := scanContainer(s.pool.QueryRow(ctx, `SELECT `+containerColumns+` FROM containers WHERE `+where, args...))
	if err != nil {
		return c, mapErr(err, what)
	}
	cs := []domain.Container{c}
	if err := s.fillDetails(ctx, cs); err != nil {
		return c, err
	}
	return cs[0], nil
}

// ListContainers returns every container of every project, sorted by
// project and name.
func (s *Store) ListContainers(ctx context.Context) ([]domain.Container, error) {
	return s.listContainers(ctx, `true`)
}

// ProjectContainers returns the containers of one project, sorted by name.
func (s *Store) ProjectContainers(ctx context.Context, project string) ([]domain.Container, error) {
	return s.listContainers(ctx, `project = $1`, project)
}

// listContainers lists the containers where holds (a constant, never input).
func (s *Store) listContainers(ctx context.Context, where string, args ...any) ([]domain.Container, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+containerColumns+` FROM containers WHERE `+where+` ORDER BY project, name`, args...)
	if err != nil {
		return nil, mapErr(err, "containers")
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Container, error) { return scanContainer(r) })
	if err != nil {
		return nil, mapErr(err, "containers")
	}
	return cs, s.fillDetails(ctx, cs)
}

// fillDetails loads instances and ports of cs in two queries.
func (s *Store) fillDetails(ctx context.Context, cs []domain.Container) error {
	if len(cs) == 0 {
		return nil
	}
	idx := make(map[string]int, len(cs))
	ids := make([]string, len(cs))
	for i, c := range cs {
		idx[c.ID] = i
		ids[i] = c.ID
		cs[i].Instances = []domain.Instance{}
		cs[i].Ports = []domain.Port{}
		cs[i].Published = []domain.PublishedPort{}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT container_id::text, replica, runtime_id, node, coalesce(host(internal_ip), ''), status, health, updated_at
		FROM container_instances WHERE container_id = ANY($1::uuid[]) ORDER BY container_id, replica`, ids)
	if err != nil {
		return mapErr(err, "instances")
	}
	var id string
	var in domain.Instance
	_, err = pgx.ForEachRow(rows, []any{&id, &in.Index, &in.RuntimeID, &in.Node, &in.InternalIP, &in.Status, &in.Health, &in.UpdatedAt}, func() error {
		i := idx[id]
		cs[i].Instances = append(cs[i].Instances, in)
		return nil
	})
	if err != nil {
		return mapErr(err, "instances")
	}
	rows, err = s.pool.Query(ctx, `
		SELECT container_id::text, name, container_port, protocol, http
		FROM container_ports WHERE container_id = ANY($1::uuid[]) ORDER BY container_id, container_port, name`, ids)
	if err != nil {
		return mapErr(err, "ports")
	}
	var p domain.Port
	_, err = pgx.ForEachRow(rows, []any{&id, &p.Name, &p.Port, &p.Protocol, &p.HTTP}, func() error {
		i := idx[id]
		cs[i].Ports = append(cs[i].Ports, p)
		return nil
	})
	if err != nil {
		return mapErr(err, "ports")
	}
	err = eachPublished(ctx, s.pool, ids, func(id string, p domain.PublishedPort) {
		i := idx[id]
		cs[i].Published = append(cs[i].Published, p)
	})
	if err != nil {
		return err
	}
	for i := range cs {
		for _, in := range cs[i].Instances {
			if in.InternalIP != "" {
				cs[i].InternalIP = in.InternalIP
				break
			}
		}
	}
	return nil
}

// SealedSecrets returns a container's encrypted credentials (nil if none).
func (s *Store) SealedSecrets(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT secrets FROM containers WHERE id = $1`, id).Scan(&b)
	return b, mapErr(err, "container "+id)
}

// lockForChange reads the named container under a row lock, for a change:
// one being removed takes none (ErrConflict).
//
// The project's row is locked first (as a create takes it), so a change of
// replicas is checked against the project's quotas with no create or other
// change in the project slipping in between.
func lockForChange(ctx context.Context, tx pgx.Tx, cr domain.ContainerRef) (domain.Container, error) {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM projects WHERE name = $1 FOR UPDATE`, cr.Project); err != nil {
		return domain.Container{}, mapErr(err, fmt.Sprintf("project %q", cr.Project))
	}
	c, err := scanContainer(tx.QueryRow(ctx, `SELECT `+containerColumns+` FROM containers WHERE project = $2 AND name = $1 FOR UPDATE`, cr.Name, cr.Project))
	if err != nil {
		return c, mapErr(err, fmt.Sprintf("container %q", cr))
	}
	if c.DesiredState == domain.DesiredRemoved {
		return c, fmt.Errorf("container %q is being removed: %w", cr, domain.ErrConflict)
	}
	return c, nil
}

// ChangeContainer applies ch to the named container under a row lock, bumps
// its generation and records history and an event, in one transaction.
func (s *Store) ChangeContainer(ctx context.Context, cr domain.ContainerRef, ch domain.Change, actor string) (domain.Container, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := lockForChange(ctx, tx, cr)
		if err != nil {
			return err
		}
		details := map[string]any{}
		switch ch.Action {
		case domain.ActionStart, domain.ActionStop:
			desired := domain.DesiredRunning
			if ch.Action == domain.ActionStop {
				desired = domain.DesiredStopped
			}
			_, err = tx.Exec(ctx, `UPDATE containers SET desired_state = $2, generation = generation + 1, updated_at = now() WHERE id = $1`,
				c.ID, desired)
		case domain.ActionRestart:
			_, err = tx.Exec(ctx, `UPDATE containers SET desired_state = 'running', restart_at = clock_timestamp(), generation = generation + 1, updated_at = now() WHERE id = $1`, c.ID)
		case domain.ActionScale:
			// Checked under the row lock a PATCH of the published ports
			// takes too, so neither slips in between check and change.
			var published []domain.PublishedPort
			if err := eachPublished(ctx, tx, []string{c.ID}, func(_ string, p domain.PublishedPort) { published = append(published, p) }); err != nil {
				return err
			}
			if err := domain.PublishFits("replicas", ch.Replicas, published); err != nil {
				return err
			}
			if ch.Replicas > c.Replicas {
				if err := fitContainer(ctx, tx, c, ch.Replicas); err != nil {
					return err
				}
			}
			details["from"], details["to"] = c.Replicas, ch.Replicas
			_, err = tx.Exec(ctx, `UPDATE containers SET replicas = $2, generation = generation + 1, updated_at = now() WHERE id = $1`, c.ID, ch.Replicas)
		case domain.ActionRedeploy:
			// A new config_version makes every replica outdated: the
			// reconciler replaces them one at a time. A redeploy without
			// pull drops a pull still pending (one that keeps failing).
			details["pull"] = ch.Pull
			_, err = tx.Exec(ctx, `UPDATE containers SET desired_state = 'running', config_version = config_version + 1,
				redeploy_at = clock_timestamp(), pull_at = CASE WHEN $2 THEN clock_timestamp() END,
				generation = generation + 1, updated_at = now() WHERE id = $1`, c.ID, ch.Pull)
		case domain.ActionRemove:
			details["keep_volumes"] = ch.KeepVolumes
			_, err = tx.Exec(ctx, `UPDATE containers SET desired_state = 'removed', status = 'removing', keep_volumes = $2, generation = generation + 1, updated_at = now() WHERE id = $1`, c.ID, ch.KeepVolumes)
		default:
			return fmt.Errorf("change %q: %w", ch.Action, domain.ErrInvalid)
		}
		if err != nil {
			return mapErr(err, fmt.Sprintf("container %q", cr))
		}
		return record(ctx, tx, refOf(c), string(ch.Action)+"_requested", actor, details)
	})
	if err != nil {
		return domain.Container{}, err
	}
	return s.GetContainer(ctx, cr)
}

// RecordObservation writes what the reconciler observed in one transaction.
func (s *Store) RecordObservation(ctx context.Context, o domain.Observation) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE containers SET status = $2, status_reason = $3, status_cause = $5,
				observed_generation = greatest(observed_generation, $4), updated_at = now()
			WHERE id = $1 AND desired_state <> 'removed' OR (id = $1 AND $2 = 'removing')`,
			o.ID, o.Status, o.Reason, o.ObservedGeneration, o.Cause)
		if err != nil {
			return mapErr(err, "container "+o.Name)
		}
		if tag.RowsAffected() == 0 {
			return nil // removed meanwhile: the removal owns the row now
		}
		if o.StopAt != 0 {
			if _, err := tx.Exec(ctx, `UPDATE containers SET desired_state = 'stopped', generation = generation + 1,
				observed_generation = generation + 1 WHERE id = $1 AND generation = $2`, o.ID, o.StopAt); err != nil {
				return err
			}
		}
		if !o.RestartDone.IsZero() {
			if _, err := tx.Exec(ctx, `UPDATE containers SET restart_at = NULL WHERE id = $1 AND restart_at = $2`, o.ID, o.RestartDone); err != nil {
				return err
			}
		}
		if !o.PullDone.IsZero() {
			if _, err := tx.Exec(ctx, `UPDATE containers SET pull_at = NULL WHERE id = $1 AND pull_at = $2`, o.ID, o.PullDone); err != nil {
				return err
			}
		}
		if !o.RedeployDone.IsZero() {
			var version int
			err := tx.QueryRow(ctx, `UPDATE containers SET redeploy_at = NULL WHERE id = $1 AND redeploy_at = $2
				RETURNING config_version`, o.ID, o.RedeployDone).Scan(&version)
			switch {
			case err == nil:
				if err := record(ctx, tx, ref{id: o.ID, name: o.Name}, "redeployed", domain.System.String(),
					map[string]any{"config_version": version, "replicas": len(o.Instances)}); err != nil {
					return err
				}
			case !errors.Is(err, pgx.ErrNoRows): // no rows: done already, or a newer request pending
				return err
			}
		}
		if o.Instances != nil {
			if err := replaceInstances(ctx, tx, o.ID, o.Instances); err != nil {
				return err
			}
		}
		if o.ContainerDNS != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM dns_entries WHERE container_id = $1 AND zone = 'container'`, o.ID); err != nil {
				return err
			}
			if err := insertDNS(ctx, tx, o.ID, o.ContainerDNS); err != nil {
				return err
			}
		}
		if o.Event != "" {
			return record(ctx, tx, ref{id: o.ID, name: o.Name}, o.Event, domain.System.String(), o.Data)
		}
		if o.ReplicasChanged {
			_, err := appendEvent(ctx, tx, "container.replicas", ref{id: o.ID, name: o.Name}, domain.System.String(), domain.ReplicaSummary(o.Instances))
			return err
		}
		return nil
	})
}

func replaceInstances(ctx context.Context, tx pgx.Tx, id string, ins []domain.Instance) error {
	sort.Slice(ins, func(i, j int) bool { return ins[i].Index < ins[j].Index })
	keep := make([]int, 0, len(ins))
	for _, in := range ins {
		var ip *netip.Addr
		if a, err := netip.ParseAddr(in.InternalIP); err == nil {
			ip = &a
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO container_instances (container_id, replica, runtime_id, internal_ip, status, health, node, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now())
			ON CONFLICT (container_id, replica) DO UPDATE SET runtime_id = $3, internal_ip = $4, status = $5, health = $6, node = $7,
				updated_at = CASE WHEN container_instances.status = $5 AND container_instances.runtime_id = $3
					THEN container_instances.updated_at ELSE now() END`,
			id, in.Index, in.RuntimeID, ip, in.Status, in.Health, in.Node); err != nil {
			return mapErr(err, "instance")
		}
		keep = append(keep, in.Index)
	}
	_, err := tx.Exec(ctx, `DELETE FROM container_instances WHERE container_id = $1 AND NOT (replica = ANY($2))`, id, keep)
	return err
}

// FinishRemoval deletes a removed container's row (its ports, instances and
// DNS rows go with it) and records the removal; history stays.
func (s *Store) FinishRemoval(ctx context.Context, id, name string, data any) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var project string
		err := tx.QueryRow(ctx, `DELETE FROM containers WHERE id = $1 AND desired_state = 'removed' RETURNING project`, id).Scan(&project)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// The row is gone, so history cannot point at it; the event keeps the id.
		if err := appendHistory(ctx, tx, ref{"", project, name}, "removed", domain.System.String(), data); err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, "container.removed", ref{id, project, name}, domain.System.String(), data)
		return err
	})
}

// ContainerCounts is the number of containers in each status.
func (s *Store) ContainerCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM containers GROUP BY status`)
	if err != nil {
		return nil, mapErr(err, "containers")
	}
	out := map[string]int{}
	var status string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		out[status] = n
		return nil
	})
	return out, mapErr(err, "containers")
}

// UpdateContainer applies a configuration change (PATCH): image, plain and
// sealed environment, replicas, in one transaction. A new image or
// environment raises config_version, so the reconciler replaces the
// replicas one at a time.
func (s *Store) UpdateContainer(ctx context.Context, cr domain.ContainerRef, u domain.Update, actor string) (domain.Container, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c, err := lockForChange(ctx, tx, cr)
		if err != nil {
			return err
		}
		if c.Generation != u.Generation {
			// Someone changed it since the caller read it: the merge of
			// the environment was made on stale values.
			return fmt.Errorf("container %q changed meanwhile; try again: %w", cr, domain.ErrConflict)
		}
		env, err := json.Marshal(u.Env)
		if err != nil {
			return err
		}
		if u.Replicas > c.Replicas {
			if err := fitContainer(ctx, tx, c, u.Replicas); err != nil {
				return err
			}
		}
		bump := 0
		if u.Reconfigure {
			bump = 1
		}
		if _, err := tx.Exec(ctx, `
			UPDATE containers SET image = $2, env = $3, secrets = $4, replicas = $5, config_version = config_version + $6,
				generation = generation + 1, updated_at = now() WHERE id = $1`,
			c.ID, u.Image, env, u.Secrets, u.Replicas, bump); err != nil {
			return mapErr(err, fmt.Sprintf("container %q", cr))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM container_published_ports WHERE container_id = $1`, c.ID); err != nil {
			return mapErr(err, fmt.Sprintf("container %q", cr))
		}
		if err := insertPublished(ctx, tx, c.ID, u.Published); err != nil {
			return err
		}
		return record(ctx, tx, refOf(c), "update_requested", actor, u.Details)
	})
	if err != nil {
		return domain.Container{}, s.holder(ctx, err)
	}
	return s.GetContainer(ctx, cr)
}
