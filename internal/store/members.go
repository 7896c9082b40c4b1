package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// principal finds the id of a user or of a live API key by name, in tx.
// A key limited to another project cannot be a member here: it reaches
// its own project only.
func principal(ctx context.Context, tx pgx.Tx, project, kind, name string) (column, id string, err error) {
	switch kind {
	case "user":
		err = tx.QueryRow(ctx, `SELECT id::text FROM users WHERE username = $1`, name).Scan(&id)
		return "user_id", id, mapErr(err, fmt.Sprintf("user %q", name))
	case "apikey":
		var limited *string
		err = tx.QueryRow(ctx, `SELECT id::text, project FROM api_keys WHERE name = $1 AND revoked_at IS NULL`, name).Scan(&id, &limited)
		if err != nil {
			return "", "", mapErr(err, fmt.Sprintf("api key %q", name))
		}
		if limited != nil && *limited != project {
			return "", "", domain.Invalid("name", "api key %q is limited to project %q and reaches nothing else", name, *limited)
		}
		return "apikey_id", id, nil
	}
	return "", "", domain.Invalid("kind", "must be user or apikey (got %q)", kind)
}

// SetMember gives a user or API key role in project (replacing its role
// there) and records a project.member_set event.
func (s *Store) SetMember(ctx context.Context, project string, m domain.MemberRequest, role domain.Role, actor string) (domain.Member, error) {
	out := domain.Member{Kind: m.Kind, Name: m.Name, Role: role, CreatedBy: actor}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockProject(ctx, tx, project); err != nil {
			return err
		}
		column, id, err := principal(ctx, tx, project, m.Kind, m.Name)
		if err != nil {
			return err
		}
		// column is one of two constants, never input.
		if _, err := tx.Exec(ctx, `DELETE FROM memberships WHERE project = $1 AND `+column+` = $2`, project, id); err != nil {
			return mapErr(err, "membership")
		}
		err = tx.QueryRow(ctx, `INSERT INTO memberships (project, `+column+`, role, created_by) VALUES ($1, $2, $3, $4)
			RETURNING created_at`, project, id, role, actor).Scan(&out.CreatedAt)
		if err != nil {
			return mapErr(err, "membership")
		}
		_, err = appendEvent(ctx, tx, "project.member_set", ref{project: project}, actor,
			map[string]any{"project": project, "kind": m.Kind, "name": m.Name, "role": role})
		return err
	})
	return out, err
}

// RemoveMember takes a user's or API key's role in project away.
func (s *Store) RemoveMember(ctx context.Context, project, kind, name, actor string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		column, id, err := principal(ctx, tx, project, kind, name)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM memberships WHERE project = $1 AND `+column+` = $2`, project, id)
		if err != nil {
			return mapErr(err, "membership")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s %q is no member of project %q: %w", kind, name, project, domain.ErrNotFound)
		}
		_, err = appendEvent(ctx, tx, "project.member_removed", ref{project: project}, actor,
			map[string]any{"project": project, "kind": kind, "name": name})
		return err
	})
}

// Members lists a project's members, users first, by name.
func (s *Store) Members(ctx context.Context, project string) ([]domain.Member, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT CASE WHEN m.user_id IS NOT NULL THEN 'user' ELSE 'apikey' END, coalesce(u.username, k.name), m.role, m.created_by, m.created_at
		FROM memberships m LEFT JOIN users u ON u.id = m.user_id LEFT JOIN api_keys k ON k.id = m.apikey_id
		WHERE m.project = $1 ORDER BY 1 DESC, 2`, project)
	if err != nil {
		return nil, mapErr(err, "members")
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Member, error) {
		var m domain.Member
		err := r.Scan(&m.Kind, &m.Name, &m.Role, &m.CreatedBy, &m.CreatedAt)
		return m, err
	})
	return ms, mapErr(err, "members")
}
