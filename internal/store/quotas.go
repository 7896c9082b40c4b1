package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// use is what a project's containers take: their number (those not being
// removed) and their memory and CPUs (each type's limits x replicas).
type use struct {
	containers int
	memoryMB   int64
	cpus       float64
	unlimited  string // a container without a memory limit, if any
}

// projectUse sums a project's use, leaving out the container except (a
// change replaces its use with the new one).
func projectUse(ctx context.Context, tx pgx.Tx, project, except string) (use, error) {
	var u use
	var unlimited *string
	err := tx.QueryRow(ctx, `
		SELECT count(*),
			coalesce(sum(replicas * coalesce((spec->'resources'->>'memory_mb')::bigint, 0)), 0),
			coalesce(sum(replicas * coalesce((spec->'resources'->>'cpus')::float8, 0)), 0),
			min(name) FILTER (WHERE coalesce((spec->'resources'->>'memory_mb')::bigint, 0) = 0 AND replicas > 0)
		FROM containers WHERE project = $1 AND desired_state <> 'removed' AND id::text <> $2`,
		project, except).Scan(&u.containers, &u.memoryMB, &u.cpus, &unlimited)
	if unlimited != nil {
		u.unlimited = *unlimited
	}
	return u, mapErr(err, fmt.Sprintf("project %q", project))
}

// fitQuota checks, under the project's row lock (lockProject), that the
// project's use with a container of spec and replicas (a new one, or
// container id changed so) stays within its quotas. The refusal names the
// quota, its limit and the current use.
func fitQuota(ctx context.Context, tx pgx.Tx, p domain.Project, id string, spec domain.Type, replicas int) error {
	if p.MaxContainers == nil && p.MaxMemoryMB == nil && p.MaxCPUs == nil {
		return nil
	}
	u, err := projectUse(ctx, tx, p.Name, id)
	if err != nil {
		return err
	}
	// A change of a container already counted (id set) adds none; a quota
	// lowered below the count holds new containers off, not changes.
	if p.MaxContainers != nil && id == "" && u.containers+1 > *p.MaxContainers {
		return quotaError(p.Name, "max_containers", strconv.Itoa(*p.MaxContainers), fmt.Sprintf("%d containers", u.containers), "1 more")
	}
	if p.MaxMemoryMB != nil {
		if spec.Resources.MemoryMB == 0 && replicas > 0 {
			return domain.Invalid("type", "%q sets no memory limit, and project %q has a memory quota (max_memory_mb %d): every container there needs one",
				spec.ID, p.Name, *p.MaxMemoryMB)
		}
		need := spec.Resources.MemoryMB * int64(replicas)
		if u.memoryMB+need > *p.MaxMemoryMB {
			return quotaError(p.Name, "max_memory_mb", strconv.FormatInt(*p.MaxMemoryMB, 10), fmt.Sprintf("%d MB", u.memoryMB), fmt.Sprintf("%d MB more", need))
		}
	}
	if p.MaxCPUs != nil {
		if spec.Resources.CPUs == 0 && replicas > 0 {
			return domain.Invalid("type", "%q sets no CPU limit, and project %q has a CPU quota (max_cpus %g): every container there needs one",
				spec.ID, p.Name, *p.MaxCPUs)
		}
		need := spec.Resources.CPUs * float64(replicas)
		if u.cpus+need > *p.MaxCPUs+1e-9 {
			return quotaError(p.Name, "max_cpus", strconv.FormatFloat(*p.MaxCPUs, 'g', -1, 64),
				strconv.FormatFloat(u.cpus, 'g', 4, 64)+" CPUs", strconv.FormatFloat(need, 'g', 4, 64)+" CPUs more")
		}
	}
	return nil
}

func quotaError(project, quota, limit, inUse, need string) error {
	return domain.Invalid("project", "over quota: %s of project %q is %s, %s in use, this needs %s; remove or scale down containers there, or ask an admin to raise the quota",
		quota, project, limit, inUse, need)
}

// fitContainer is fitQuota for container c scaled to replicas (the
// project's row is locked by lockForChange).
func fitContainer(ctx context.Context, tx pgx.Tx, c domain.Container, replicas int) error {
	p, err := scanProject(tx.QueryRow(ctx, `SELECT `+projectColumns+` FROM projects WHERE name = $1`, c.Project))
	if err != nil {
		return mapErr(err, fmt.Sprintf("project %q", c.Project))
	}
	return fitQuota(ctx, tx, p, c.ID, c.Spec, replicas)
}
