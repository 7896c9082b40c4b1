package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// What moor backup and moor restore (cmd/moor) ask of a database besides
// pg_dump and pg_restore: its schema version, what it already holds, and
// the dropping of it for restore --force.

// LatestMigration is the highest migration this binary knows.
func LatestMigration() (int, error) {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0, err
	}
	return ms[len(ms)-1].version, nil
}

// SchemaVersion is the highest migration applied to the database; 0
// without a schema_migrations table.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, mapErr(err, "schema_migrations")
	}
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr(err, "schema_migrations")
}

// DBObject is something a database holds in a schema of its own (not the
// system's, not an extension's member).
type DBObject struct {
	Kind   string // table, view, sequence, function, type, schema
	Schema string
	Name   string
}

func (o DBObject) String() string {
	if o.Kind == "schema" || o.Schema == "public" {
		return o.Name
	}
	return o.Schema + "." + o.Name
}

// userObjects lists the objects of the database's own schemas: relations,
// functions, standalone types, and the schemas other than public.
const userObjects = `
WITH ns AS (
	SELECT oid, nspname FROM pg_namespace
	WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
		AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'
), ext AS (
	SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
)
SELECT 'schema', nspname, nspname FROM ns
	WHERE nspname <> 'public'
		AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_namespace'::regclass AND objid = ns.oid)
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END, ns.nspname, c.relname
	FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
	WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_class'::regclass AND objid = c.oid)
		-- a sequence owned by a column goes with its table
		AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
			AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT 'function', ns.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
	FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
	WHERE NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_proc'::regclass AND objid = p.oid)
UNION ALL
SELECT 'type', ns.nspname, t.typname
	FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
	WHERE t.typtype IN ('e', 'd', 'r', 'c', 'm')
		AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
		AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typarray = t.oid)
		AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_type'::regclass AND objid = t.oid)
ORDER BY 1, 2, 3`

// Objects lists what the database holds of its own: empty for a database
// fresh from CREATE DATABASE.
func (s *Store) Objects(ctx context.Context) ([]DBObject, error) {
	rows, err := s.pool.Query(ctx, userObjects)
	if err != nil {
		return nil, mapErr(err, "database objects")
	}
	var o DBObject
	var out []DBObject
	_, err = pgx.ForEachRow(rows, []any{&o.Kind, &o.Schema, &o.Name}, func() error {
		out = append(out, o)
		return nil
	})
	return out, mapErr(err, "database objects")
}

// DropObjects drops every object Objects lists, in one transaction: what
// moor restore --force clears before restoring. The public schema itself
// stays (with its owner and grants).
func (s *Store) DropObjects(ctx context.Context) error {
	return mapErr(s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, userObjects)
		if err != nil {
			return err
		}
		var o DBObject
		var objs []DBObject
		if _, err := pgx.ForEachRow(rows, []any{&o.Kind, &o.Schema, &o.Name}, func() error {
			objs = append(objs, o)
			return nil
		}); err != nil {
			return err
		}
		// Schemas first (with what they hold), then views and tables
		// (their indexes, triggers and owned sequences go with them), then
		// the rest; IF EXISTS: a CASCADE may have taken it already.
		for _, kind := range []string{"schema", "view", "table", "sequence", "function", "type"} {
			for _, o := range objs {
				if o.Kind != kind {
					continue
				}
				var stmt string
				switch kind {
				case "schema":
					stmt = "DROP SCHEMA IF EXISTS " + pgx.Identifier{o.Name}.Sanitize() + " CASCADE"
				case "function":
					// The name carries its argument types, as PostgreSQL wrote them.
					name, args, _ := strings.Cut(o.Name, "(")
					stmt = "DROP FUNCTION IF EXISTS " + pgx.Identifier{o.Schema, name}.Sanitize() + "(" + args + " CASCADE"
				case "view":
					stmt = "DROP VIEW IF EXISTS " + pgx.Identifier{o.Schema, o.Name}.Sanitize() + " CASCADE"
				default:
					stmt = "DROP " + strings.ToUpper(kind) + " IF EXISTS " + pgx.Identifier{o.Schema, o.Name}.Sanitize() + " CASCADE"
				}
				if o.Schema != "public" && kind != "schema" {
					continue // gone with its schema
				}
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", stmt, err)
				}
			}
		}
		return nil
	}), "dropping the database's objects")
}

// Counts counts the rows of the named tables that exist (a table of a
// later schema version is left out).
func (s *Store) Counts(ctx context.Context, tables ...string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range tables {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&exists); err != nil {
			return nil, mapErr(err, t)
		}
		if !exists {
			continue
		}
		var n int64
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return nil, mapErr(err, t)
		}
		out[t] = n
	}
	return out, nil
}
