package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// servingLock is an advisory lock every `moor serve` holds shared on its
// lock session (Locker) and `moor uninstall` takes exclusive: uninstall
// sees a server still running (whose reconciler would create again what
// it removes), and a server cannot start, nor its reconciler lock a
// container, while an uninstall runs. Held by a session, it goes with a
// crashed process: nothing stale to clean up, unlike a heartbeat.
const servingLock = 7_262_003

// ErrServing: a moor server holds the database (uninstall refuses).
var ErrServing = errors.New("a moor server is running on this database")

// ErrUninstalling: moor uninstall holds the database (serve refuses).
var ErrUninstalling = errors.New("moor uninstall is running on this database")

// Application names on the sessions that hold servingLock, so the other
// side can say who holds it (pg_stat_activity).
const (
	appServe     = "moor serve"
	appUninstall = "moor uninstall"
)

// connectAs opens a session of its own named app (unless the URL names
// one).
func connectAs(ctx context.Context, url, app string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = app
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// LockOut takes servingLock exclusively on a session of its own, for moor
// uninstall: it fails, wrapping ErrServing and naming where the servers
// connect from, while a moor server runs on this database. release ends
// the session and the lock with it.
func (s *Store) LockOut(ctx context.Context) (release func(), err error) {
	conn, err := connectAs(ctx, s.url, appUninstall)
	if err != nil {
		return nil, mapErr(err, "database")
	}
	// A server that has just stopped (Ctrl-C, then make distclean) still
	// holds the lock until its backend has exited: a moment later it is
	// free, so a held lock is asked again for up to two seconds.
	var ok bool
	for deadline := time.Now().Add(2 * time.Second); ; {
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, servingLock).Scan(&ok); err != nil {
			conn.Close(ctx)
			return nil, mapErr(err, "database")
		}
		if ok || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			conn.Close(context.WithoutCancel(ctx))
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if ok {
		return func() { conn.Close(context.WithoutCancel(ctx)) }, nil
	}
	defer conn.Close(ctx)
	// A one-key advisory lock shows as classid 0, objid the key.
	rows, err := conn.Query(ctx, `
		SELECT coalesce(host(a.client_addr), 'a local socket'), a.backend_start, coalesce(a.application_name, '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1 AND l.granted
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY a.backend_start`, servingLock)
	var who []string
	if err == nil {
		var addr, app string
		var since time.Time
		_, err = pgx.ForEachRow(rows, []any{&addr, &since, &app}, func() error {
			w := fmt.Sprintf("connected from %s since %s", addr, since.Local().Format(time.DateTime))
			if app != "" && app != appServe {
				w = app + ", " + w
			}
			who = append(who, w)
			return nil
		})
	}
	if err != nil || len(who) == 0 {
		return nil, ErrServing
	}
	return nil, fmt.Errorf("%w (%s)", ErrServing, strings.Join(who, "; "))
}

// ContainerNames lists the containers recorded, by name. It reads only
// what every schema version has, so it works before migrating.
func (s *Store) ContainerNames(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM containers ORDER BY name`)
	if err != nil {
		return nil, mapErr(err, "containers")
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, mapErr(err, "containers")
}

// ForgetContainers deletes every container's row (its ports, instances and
// DNS rows go with it), for moor uninstall once it has the runtime's
// objects to remove: the database never says a container exists that is
// gone. Each is recorded as removed (history and event, by actor, with
// data); history stays. It returns the names.
func (s *Store) ForgetContainers(ctx context.Context, actor string, data any) ([]string, error) {
	var names []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, project, name FROM containers ORDER BY project, name FOR UPDATE`)
		if err != nil {
			return err
		}
		var refs []ref
		var r ref
		if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.project, &r.name}, func() error {
			refs = append(refs, r)
			return nil
		}); err != nil {
			return err
		}
		for _, r := range refs {
			if err := appendHistory(ctx, tx, ref{"", r.project, r.name}, "removed", actor, data); err != nil {
				return err
			}
			if _, err := appendEvent(ctx, tx, "container.removed", r, actor, data); err != nil {
				return err
			}
			names = append(names, domain.ContainerRef{Project: r.project, Name: r.name}.String())
		}
		if _, err = tx.Exec(ctx, `DELETE FROM containers`); err != nil {
			return err
		}
		// Nothing is left of the stacks either (a schema from before 0012
		// has none).
		_, err = tx.Exec(ctx, `DO $$ BEGIN IF to_regclass('stacks') IS NOT NULL THEN DELETE FROM stacks; END IF; END $$`)
		return err
	})
	return names, mapErr(err, "containers")
}

// DropSchema reverts every migration and drops the migrations table: no
// moor table is left in the database.
func (s *Store) DropSchema(ctx context.Context) ([]string, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	reverted, err := s.MigrateDown(ctx, len(ms))
	if err != nil {
		return reverted, err
	}
	_, err = s.pool.Exec(ctx, `DROP TABLE IF EXISTS schema_migrations`)
	return reverted, mapErr(err, "schema_migrations")
}
