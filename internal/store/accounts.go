package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// ListAPIKeys returns every key, revoked ones too, by name.
func (s *Store) ListAPIKeys(ctx context.Context) ([]domain.APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, name, role, coalesce(project, ''), created_at, last_used_at, revoked_at FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, mapErr(err, "api keys")
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.APIKey, error) {
		var k domain.APIKey
		err := r.Scan(&k.ID, &k.Name, &k.Role, &k.Project, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
		return k, err
	})
	return keys, mapErr(err, "api keys")
}

// RevokeAPIKey revokes the named key at once (the next request with it is
// refused). Revoking a revoked key changes nothing.
func (s *Store) RevokeAPIKey(ctx context.Context, name string) (domain.APIKey, error) {
	var k domain.APIKey
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var was bool
		err := tx.QueryRow(ctx, `
			UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1
			RETURNING id::text, name, role, coalesce(project, ''), created_at, last_used_at, revoked_at, revoked_at < now()`, name).
			Scan(&k.ID, &k.Name, &k.Role, &k.Project, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt, &was)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("api key %q: %w", name, domain.ErrNotFound)
		}
		if err != nil || was {
			return mapErr(err, "api key")
		}
		_, err = appendEvent(ctx, tx, "apikey.revoked", ref{}, domain.ActorFrom(ctx).String(), map[string]any{"name": name, "role": k.Role})
		return err
	})
	return k, err
}

// ListUsers returns every user, by name, with the number of live sessions.
func (s *Store) ListUsers(ctx context.Context) ([]domain.User, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT u.id::text, u.username, u.role, u.created_at,
		       (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > now())
		FROM users u ORDER BY u.username`)
	if err != nil {
		return nil, mapErr(err, "users")
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.User, error) {
		var u domain.User
		err := r.Scan(&u.ID, &u.Username, &u.Role, &u.CreatedAt, &u.Sessions)
		return u, err
	})
	return users, mapErr(err, "users")
}

// RemoveUser removes a user and their sessions. The last admin cannot be
// removed: nobody could manage moor through the API any more.
func (s *Store) RemoveUser(ctx context.Context, username string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise removals, so two admins removing each other cannot
		// both pass the last-admin check.
		if _, err := tx.Exec(ctx, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return mapErr(err, "users")
		}
		var role domain.Role
		err := tx.QueryRow(ctx, `DELETE FROM users WHERE username = $1 RETURNING role`, username).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %q: %w", username, domain.ErrNotFound)
		}
		if err != nil {
			return mapErr(err, "user")
		}
		if role == domain.RoleAdmin {
			var admins int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
				return mapErr(err, "users")
			}
			if admins == 0 {
				return fmt.Errorf("user %q is the last admin: add another admin first: %w", username, domain.ErrConflict)
			}
		}
		_, err = appendEvent(ctx, tx, "user.removed", ref{}, domain.ActorFrom(ctx).String(), map[string]any{"username": username, "role": role})
		return err
	})
}

// SetPassword replaces a user's password hash and ends the user's sessions
// but keep (the one that made the change, if it is the user's own).
func (s *Store) SetPassword(ctx context.Context, username, passwordHash string, keep []byte) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `UPDATE users SET password_hash = $2 WHERE username = $1 RETURNING id::text`, username, passwordHash).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %q: %w", username, domain.ErrNotFound)
		}
		if err != nil {
			return mapErr(err, "user")
		}
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND hash IS DISTINCT FROM $2`, id, keep)
		if err != nil {
			return mapErr(err, "sessions")
		}
		_, err = appendEvent(ctx, tx, "user.password_changed", ref{}, domain.ActorFrom(ctx).String(),
			map[string]any{"username": username, "sessions_ended": tag.RowsAffected()})
		return err
	})
}

// HasUsers reports whether anyone can sign in yet.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var any bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&any)
	return any, mapErr(err, "users")
}

// AddFirstAdmin adds an admin only while there is no user at all: the
// first-run setup, which two browsers racing cannot both win.
func (s *Store) AddFirstAdmin(ctx context.Context, username, passwordHash string) (string, error) {
	id := uuid.NewString()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return mapErr(err, "users")
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO users (id, username, password_hash, role)
			SELECT $1, $2, $3, 'admin' WHERE NOT EXISTS (SELECT 1 FROM users)`, id, username, passwordHash)
		if err != nil {
			return mapErr(err, fmt.Sprintf("user %q", username))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("moor is set up already: sign in instead: %w", domain.ErrConflict)
		}
		_, err = appendEvent(ctx, tx, "user.created", ref{}, "setup:"+username, map[string]any{"username": username, "role": domain.RoleAdmin, "first_run": true})
		return err
	})
	return id, err
}
