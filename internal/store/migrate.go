package store

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/migrations"
)

// migrationLock serialises migrations of concurrent moor processes.
const migrationLock = 7_262_001

type migration struct {
	version  int
	name     string
	up, down string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		name := e.Name()
		base, dir, ok := cutSuffixes(name)
		if !ok {
			continue
		}
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad number", name)
		}
		body, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &migration{version: v, name: label}
			byVersion[v] = m
		}
		if dir == "up" {
			m.up = string(body)
		} else {
			m.down = string(body)
		}
	}
	var out []migration
	for _, m := range byVersion {
		if m.up == "" || m.down == "" {
			return nil, fmt.Errorf("migration %04d_%s: needs both up and down", m.version, m.name)
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

func cutSuffixes(name string) (base, dir string, ok bool) {
	if b, found := strings.CutSuffix(name, ".up.sql"); found {
		return b, "up", true
	}
	if b, found := strings.CutSuffix(name, ".down.sql"); found {
		return b, "down", true
	}
	return "", "", false
}

// Migrate applies every pending up migration, each in its own transaction,
// and returns the names applied. Running it again applies nothing.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	var applied []string
	err = s.withMigrationLock(ctx, func(conn *pgx.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, m.up); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
				return err
			})
			if err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			applied = append(applied, fmt.Sprintf("%04d_%s", m.version, m.name))
		}
		return nil
	})
	return applied, err
}

// MigrateDown reverts the last steps migrations and returns their names,
// all in one transaction: a down that refuses (0011's, while another
// project holds containers) leaves the later ones applied too, so the
// schema always matches a version of the code.
func (s *Store) MigrateDown(ctx context.Context, steps int) ([]string, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	var reverted []string
	err = s.withMigrationLock(ctx, func(conn *pgx.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for i := len(ms) - 1; i >= 0 && steps > 0; i-- {
				m := ms[i]
				if !done[m.version] {
					continue
				}
				if _, err := tx.Exec(ctx, m.down); err != nil {
					return fmt.Errorf("migration %04d_%s down: %w", m.version, m.name, err)
				}
				if _, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, m.version); err != nil {
					return fmt.Errorf("migration %04d_%s down: %w", m.version, m.name, err)
				}
				reverted = append(reverted, fmt.Sprintf("%04d_%s", m.version, m.name))
				steps--
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return reverted, nil
}

func (s *Store) withMigrationLock(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err, "database")
	}
	defer c.Release()
	conn := c.Conn()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	return fn(conn)
}

func appliedVersions(ctx context.Context, conn *pgx.Conn) (map[int]bool, error) {
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	done := map[int]bool{}
	for _, v := range vs {
		done[v] = true
	}
	return done, err
}
