package store

import (
	"context"
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
		_, err := appendEvent(ctx, tx, "apikey.created", ref{}, domain.System.String(), map[string]any{"name": name, "role": role})
		return err
	})
	return id, err
}

// ActorByKeyHash finds the live API key with this hash.
func (s *Store) ActorByKeyHash(ctx context.Context, hash []byte) (domain.Actor, error) {
	a := domain.Actor{Kind: "apikey"}
	err := s.pool.QueryRow(ctx, `
		UPDATE api_keys SET last_used_at = now()
		WHERE hash = $1 AND revoked_at IS NULL
		RETURNING id::text, name, role`, hash).Scan(&a.ID, &a.Name, &a.Role)
	if err != nil {
		if err == pgx.ErrNoRows {
			return a, fmt.Errorf("api key: %w", domain.ErrUnauthorized)
		}
		return a, mapErr(err, "api key")
	}
	return a, nil
}

// AddUser stores a user with a password hash.
func (s *Store) AddUser(ctx context.Context, username, passwordHash string, role domain.Role) (string, error) {
	id := uuid.NewString()
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, password_hash, role) VALUES ($1, $2, $3, $4)`,
		id, username, passwordHash, role)
	return id, mapErr(err, fmt.Sprintf("user %q", username))
}
