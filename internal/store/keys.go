package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// CreateAPIKey stores a key's hash under a unique name.
func (s *Store) CreateAPIKey(ctx context.Context, name string, role domain.Role, hash []byte) (string, error) {
	id := uuid.NewString()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, name, role, hash) VALUES ($1, $2, $3, $4)`, id, name, role, hash); err != nil {
			return mapErr(err, fmt.Sprintf("api key %q", name))
		}
		_, err := appendEvent(ctx, tx, "apikey.created", ref{}, domain.ActorFrom(ctx).String(), map[string]any{"name": name, "role": role})
		return err
	})
	return id, err
}

// ActorByKeyHash finds the live API key with this hash. last_used_at is
// written at most once a minute, so reads do not all queue on the key's row.
func (s *Store) ActorByKeyHash(ctx context.Context, hash []byte) (domain.Actor, error) {
	a := domain.Actor{Kind: "apikey"}
	var stale bool
	err := s.pool.QueryRow(ctx, `
		SELECT id::text, name, role, last_used_at IS NULL OR last_used_at < now() - interval '1 minute'
		FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash).Scan(&a.ID, &a.Name, &a.Role, &stale)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("api key: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return a, mapErr(err, "api key")
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
