// Package store keeps moor's state in PostgreSQL. It is the only package
// that imports pgx.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/moorhq/moor/internal/domain"
)

// Channel is the NOTIFY channel every state change is announced on; the
// payload is the event's sequence number.
const Channel = "moor_events"

// Store is a PostgreSQL-backed state store.
type Store struct {
	pool   *pgxpool.Pool
	url    string
	logger *slog.Logger
}

// Open connects to the database at url. It does not migrate.
func Open(ctx context.Context, url string, logger *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	return &Store{pool: pool, url: url, logger: logger}, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w: %v", domain.ErrUnavailable, err)
	}
	return nil
}

// InstallationID is this installation's identity, created by the first
// migration.
func (s *Store) InstallationID(ctx context.Context) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id::text FROM installation`).Scan(&id)
	return id, err
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// mapErr turns database errors into domain sentinels.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, domain.ErrNotFound)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%s: database: %w: %v", what, domain.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s already exists: %w", what, domain.ErrConflict)
		case "23514", "22P02": // check_violation, invalid_text_representation
			return fmt.Errorf("%s: %w: %s", what, domain.ErrInvalid, pgErr.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
