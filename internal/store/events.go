package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/moorhq/moor/internal/domain"
)

// eventLock serialises event inserts so that seq order is commit order.
const eventLock = 7_262_002

// ref names the container an event or history row is about.
type ref struct {
	id      string // "" when the row is gone
	project string // "": the container's (looked up by id), or none
	name    string
}

// refOf is the ref of a container.
func refOf(c domain.Container) ref { return ref{c.ID, c.Project, c.Name} }

func appendEvent(ctx context.Context, tx pgx.Tx, kind string, c ref, actor string, data any) (int64, error) {
	raw, err := marshalData(data)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, eventLock); err != nil {
		return 0, err
	}
	var seq int64
	err = tx.QueryRow(ctx, `
		INSERT INTO events (seq, kind, container_id, container_name, actor, data, project)
		SELECT coalesce(max(seq), 0) + 1, $1, $2, $3, $4, $5,
			coalesce(nullif($6, ''), (SELECT project FROM containers WHERE id = $2), '') FROM events
		RETURNING seq`, kind, nullUUID(c.id), c.name, actor, raw, c.project).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("append event: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, fmt.Sprint(seq)); err != nil {
		return 0, err
	}
	return seq, nil
}

func appendHistory(ctx context.Context, tx pgx.Tx, c ref, action, actor string, details any) error {
	raw, err := marshalData(details)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO deployment_history (container_id, container_name, action, actor, details, project)
		VALUES ($1, $2, $3, $4, $5, coalesce(nullif($6, ''), (SELECT project FROM containers WHERE id = $1), 'default'))`,
		nullUUID(c.id), c.name, action, actor, raw, c.project)
	return err
}

// record writes an event and a history row for one change, in tx.
func record(ctx context.Context, tx pgx.Tx, c ref, action, actor string, data any) error {
	if err := appendHistory(ctx, tx, c, action, actor, data); err != nil {
		return err
	}
	_, err := appendEvent(ctx, tx, "container."+action, c, actor, data)
	return err
}

func marshalData(v any) ([]byte, error) {
	if v == nil {
		return []byte("{}"), nil
	}
	if raw, ok := v.(json.RawMessage); ok && len(raw) > 0 {
		return raw, nil
	}
	return json.Marshal(v)
}

func nullUUID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// AppendEvent records an event that changes no state, such as image pull
// progress.
func (s *Store) AppendEvent(ctx context.Context, kind, containerID, name string, data any) (int64, error) {
	var seq int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		seq, err = appendEvent(ctx, tx, kind, ref{id: containerID, name: name}, domain.System.String(), data)
		return err
	})
	return seq, err
}

// LastEventSeq is the seq of the newest event, 0 when there is none.
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq)
	return seq, mapErr(err, "events")
}

// EventsSince returns up to limit events with seq > after, oldest first.
func (s *Store) EventsSince(ctx context.Context, after int64, limit int) ([]domain.Event, error) {
	return s.QueryEvents(ctx, domain.EventQuery{After: after, Limit: limit})
}

// PruneEvents deletes the events no one can still need, oldest first, at
// most batch rows per transaction so no lock or WAL burst is long. An event
// goes only when all of these hold:
//
//   - it is older than before (by created_at; the kept events stay a
//     contiguous run of seq, so the cut is at the newest event older than
//     before, and events committed seconds out of order go with it);
//   - it is not among the newest keep events, whatever their age, so a
//     websocket client can resume from anywhere in the hub's ring;
//   - every webhook's cursor is at or past it (a webhook still has to deliver
//     everything after its cursor, however long its receiver is down).
//
// keep below 1 counts as 1: the newest event always stays, because the next
// seq is the highest one plus one. It returns how many events it deleted.
func (s *Store) PruneEvents(ctx context.Context, before time.Time, keep int64, batch int) (int64, error) {
	keep, batch = max(keep, 1), max(batch, 1)
	var oldest, byAge, byCount, byWebhooks int64
	err := s.pool.QueryRow(ctx, `
		SELECT
			coalesce((SELECT min(seq) FROM events), 0),
			coalesce((SELECT seq FROM events WHERE created_at < $1 ORDER BY created_at DESC, seq DESC LIMIT 1), 0),
			coalesce((SELECT max(seq) FROM events), 0) - $2,
			coalesce((SELECT min(cursor) FROM webhooks), $3)`,
		before, keep, int64(math.MaxInt64)).Scan(&oldest, &byAge, &byCount, &byWebhooks)
	if err != nil {
		return 0, mapErr(err, "events")
	}
	through := min(byAge, byCount, byWebhooks)
	var deleted int64
	// By ranges of seq from the oldest: each an index range scan that
	// starts past the rows earlier batches left dead (an IN (... LIMIT)
	// subquery made PostgreSQL scan the whole table per batch).
	for lo := oldest; lo > 0 && lo <= through; lo += int64(batch) {
		tag, err := s.pool.Exec(ctx, `DELETE FROM events WHERE seq >= $1 AND seq <= $2`, lo, min(lo+int64(batch)-1, through))
		if err != nil {
			return deleted, mapErr(err, "events")
		}
		deleted += tag.RowsAffected()
	}
	return deleted, nil
}

// QueryEvents returns the events q selects, oldest first. Only the filters
// q sets are in the query, so the plain listing (the hub's and the
// webhooks' hot path) stays a range scan of the primary key.
func (s *Store) QueryEvents(ctx context.Context, q domain.EventQuery) ([]domain.Event, error) {
	n := q.Limit
	if q.Tail > 0 {
		n = q.Tail
	}
	args := []any{q.After, n}
	where := `seq > $1`
	if q.Project != "" {
		args = append(args, q.Project)
		where += fmt.Sprintf(` AND project = $%d`, len(args))
	}
	if q.Projects != nil {
		args = append(args, q.Projects)
		where += fmt.Sprintf(` AND project = ANY($%d)`, len(args))
	}
	if q.Container != "" {
		args = append(args, q.Container)
		where += fmt.Sprintf(` AND container_name = $%d`, len(args))
	}
	if q.Kind != "" {
		// The kind is a prefix: LIKE's own wildcards in it match themselves.
		args = append(args, strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Kind)+"%")
		where += fmt.Sprintf(` AND kind LIKE $%d`, len(args))
	}
	order := `seq`
	if q.Tail > 0 {
		order = `seq DESC` // the newest n, turned oldest first below
	}
	sql := `SELECT seq, created_at, kind, coalesce(container_id::text, ''), project, container_name, actor, data
		FROM events WHERE ` + where + ` ORDER BY ` + order + ` LIMIT $2`
	if q.Tail > 0 {
		sql = `SELECT * FROM (` + sql + `) t ORDER BY seq`
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, mapErr(err, "events")
	}
	return collectEvents(rows)
}

func collectEvents(rows pgx.Rows) ([]domain.Event, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Event, error) {
		var e domain.Event
		var data []byte
		err := r.Scan(&e.Seq, &e.Time, &e.Kind, &e.ContainerID, &e.Project, &e.Container, &e.Actor, &data)
		e.Data = data
		return e, err
	})
}

// History returns a container's deployment history, oldest first. It
// outlives the container. While a container of that name exists, only its
// own rows come, not those of earlier containers of the same name, unless
// all is set.
func (s *Store) History(ctx context.Context, cr domain.ContainerRef, all bool) ([]domain.HistoryEntry, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, created_at, project, container_name, coalesce(container_id::text, ''), action, actor, details
		FROM deployment_history
		WHERE project = $3 AND container_name = $1 AND ($2
			OR NOT EXISTS (SELECT 1 FROM containers WHERE project = $3 AND name = $1)
			OR container_id = (SELECT id FROM containers WHERE project = $3 AND name = $1))
		ORDER BY id`, cr.Name, all, cr.Project)
	if err != nil {
		return nil, mapErr(err, "history")
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.HistoryEntry, error) {
		var h domain.HistoryEntry
		var details []byte
		err := r.Scan(&h.ID, &h.Time, &h.Project, &h.Container, &h.ContainerID, &h.Action, &h.Actor, &details)
		h.Details = details
		return h, err
	})
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("container %q: %w", cr, domain.ErrNotFound)
	}
	return hs, nil
}
