package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// CreateAPIKey stores a key's hash under a unique name.
func (s *Store) CreateAPIKey(ctx context.Context, name string, role domain.Role, hash []byte) (string, error) {
	return s.CreateProjectKey(ctx, name, role, "", hash)
}

// CreateProjectKey stores a key limited to project ("": instance-wide),
// where it holds role.
func (s *Store) CreateProjectKey(ctx context.Context, name string, role domain.Role, project string, hash []byte) (string, error) {
	id := uuid.NewString()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if project != "" {
			if _, err := lockProject(ctx, tx, project); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, name, role, hash, project) VALUES ($1, $2, $3, $4, nullif($5, ''))`,
			id, name, role, hash, project); err != nil {
			return mapErr(err, fmt.Sprintf("api key %q", name))
		}
		data := map[string]any{"name": name, "role": role}
		if project != "" {
			data["project"] = project
		}
		_, err := appendEvent(ctx, tx, "apikey.created", ref{}, domain.ActorFrom(ctx).String(), data)
		return err
	})
	return id, err
}

// userProjects and keyProjects read a principal's roles per project as
// one JSON object, in the query that authenticates it (no second round
// trip per request).
const (
	userProjects = `(SELECT coalesce(jsonb_object_agg(m.project, m.role), '{}') FROM memberships m WHERE m.user_id = u.id)`
	keyProjects  = `(SELECT coalesce(jsonb_object_agg(m.project, m.role), '{}') FROM memberships m WHERE m.apikey_id = k.id)`
)

// withProjects fills a's roles per project from their JSON; an
// instance-wide role of "none" is none.
func withProjects(a *domain.Actor, projects []byte) error {
	if a.Role == domain.RoleNone {
		a.Role = ""
	}
	if len(projects) == 0 || string(projects) == "{}" {
		return nil
	}
	return json.Unmarshal(projects, &a.Projects)
}

// ActorByKeyHash finds the live API key with this hash. last_used_at is
// written at most once a minute, so reads do not all queue on the key's row.
func (s *Store) ActorByKeyHash(ctx context.Context, hash []byte) (domain.Actor, error) {
	a := domain.Actor{Kind: "apikey"}
	var stale bool
	var project *string
	var projects []byte
	err := s.pool.QueryRow(ctx, `
		SELECT k.id::text, k.name, k.role, k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute', k.project, `+keyProjects+`
		FROM api_keys k WHERE k.hash = $1 AND k.revoked_at IS NULL`, hash).Scan(&a.ID, &a.Name, &a.Role, &stale, &project, &projects)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("api key: %w", domain.ErrUnauthorized)
	}
	if err == nil {
		err = withProjects(&a, projects)
	}
	if err != nil {
		return a, mapErr(err, "api key")
	}
	if project != nil {
		// Its role holds in its project only: nothing instance-wide.
		a.Project, a.Projects, a.Role = *project, map[string]domain.Role{*project: a.Role}, ""
	}
	if stale {
		if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, a.ID); err != nil {
			s.logger.Warn("record api key use", "key", a.Name, "err", err)
		}
	}
	return a, nil
}

// AddUser stores a user with a password hash.
func (s *Store) AddUser(ctx context.Context, username, passwordHash string, role domain.Role) (string, error) {
	id := uuid.NewString()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, password_hash, role) VALUES ($1, $2, $3, $4)`,
			id, username, passwordHash, role); err != nil {
			return mapErr(err, fmt.Sprintf("user %q", username))
		}
		_, err := appendEvent(ctx, tx, "user.created", ref{}, domain.ActorFrom(ctx).String(), map[string]any{"username": username, "role": role})
		return err
	})
	return id, err
}
