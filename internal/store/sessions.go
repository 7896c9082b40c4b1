package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// UserByName returns a user as an actor, and the user's password hash.
func (s *Store) UserByName(ctx context.Context, username string) (domain.Actor, string, error) {
	a := domain.Actor{Kind: "user"}
	var hash string
	var projects []byte
	err := s.pool.QueryRow(ctx, `SELECT id::text, username, role, password_hash, `+userProjects+` FROM users u WHERE username = $1`, username).
		Scan(&a.ID, &a.Name, &a.Role, &hash, &projects)
	if err == nil {
		err = withProjects(&a, projects)
	}
	return a, hash, mapErr(err, fmt.Sprintf("user %q", username))
}

// CreateSession stores a session's hash for a user until expires, and
// drops expired sessions on the way.
func (s *Store) CreateSession(ctx context.Context, hash []byte, userID string, expires time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at < now()`); err != nil {
			return mapErr(err, "sessions")
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (hash, user_id, expires_at) VALUES ($1, $2, $3)`, hash, userID, expires)
		return mapErr(err, "session")
	})
}

// ActorBySessionHash finds the user of a live session.
func (s *Store) ActorBySessionHash(ctx context.Context, hash []byte) (domain.Actor, error) {
	a := domain.Actor{Kind: "user"}
	var projects []byte
	err := s.pool.QueryRow(ctx, `
		SELECT u.id::text, u.username, u.role, `+userProjects+` FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.hash = $1 AND s.expires_at > now()`, hash).Scan(&a.ID, &a.Name, &a.Role, &projects)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("session: %w", domain.ErrUnauthorized)
	}
	if err == nil {
		err = withProjects(&a, projects)
	}
	return a, mapErr(err, "session")
}

// DeleteSession ends a session; ending one that is gone is no error.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash)
	return mapErr(err, "session")
}
