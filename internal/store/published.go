package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/moorhq/moor/internal/domain"
)

// publishTaken is a binding the exclusion constraints of
// container_published_ports refused: another container holds an
// overlapping host address and port. The transaction is aborted by then,
// so holder looks the holder up afterwards.
type publishTaken struct {
	index       int // in the request's publish list
	containerID string
	p           domain.PublishedPort
	err         error
}

func (e *publishTaken) Error() string { return e.err.Error() }
func (e *publishTaken) Unwrap() error { return e.err }

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// eachPublished calls fn with the published ports of the containers ids,
// in the order domain.SortPublished gives.
func eachPublished(ctx context.Context, q querier, ids []string, fn func(id string, p domain.PublishedPort)) error {
	rows, err := q.Query(ctx, `
		SELECT container_id::text, port_name, container_port, protocol, host(host_ip), host_port
		FROM container_published_ports WHERE container_id = ANY($1::uuid[]) ORDER BY container_id, host_port, protocol, host_ip`, ids)
	if err != nil {
		return mapErr(err, "published ports")
	}
	var id string
	var p domain.PublishedPort
	_, err = pgx.ForEachRow(rows, []any{&id, &p.Name, &p.Port, &p.Protocol, &p.HostIP, &p.HostPort}, func() error {
		fn(id, p)
		return nil
	})
	return mapErr(err, "published ports")
}

// insertPublished records a container's host ports; a port another
// container holds is a *publishTaken.
func insertPublished(ctx context.Context, tx pgx.Tx, containerID string, ps []domain.PublishedPort) error {
	for i, p := range ps {
		_, err := tx.Exec(ctx, `
			INSERT INTO container_published_ports (container_id, port_name, container_port, protocol, host_ip, host_port)
			VALUES ($1, $2, $3, $4, $5, $6)`, containerID, p.Name, p.Port, p.Protocol, p.HostIP, p.HostPort)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23P01" { // exclusion_violation
			return &publishTaken{index: i, containerID: containerID, p: p, err: err}
		}
		if err != nil {
			return mapErr(err, fmt.Sprintf("publish[%d]", i))
		}
	}
	return nil
}

// holder turns a *publishTaken or *hostTaken into a conflict naming the
// container that holds the port or host name; other errors pass through.
func (s *Store) holder(ctx context.Context, err error) error {
	var host *hostTaken
	if errors.As(err, &host) {
		return s.hostHolder(ctx, host)
	}
	var taken *publishTaken
	if !errors.As(err, &taken) {
		return err
	}
	p := taken.p
	var holder domain.ContainerRef
	qerr := s.pool.QueryRow(ctx, `
		SELECT c.project, c.name FROM container_published_ports p JOIN containers c ON c.id = p.container_id
		WHERE p.protocol = $1 AND p.host_port = $2 AND moor_bind_scope(p.host_ip) && moor_bind_scope($3::inet)
			AND p.container_id <> $4 LIMIT 1`, p.Protocol, p.HostPort, p.HostIP, taken.containerID).Scan(&holder.Project, &holder.Name)
	what := fmt.Sprintf("publish[%d]: host port %s/%s", taken.index, p.HostAddr(), p.Protocol)
	if qerr != nil {
		// Gone meanwhile (or the database is away): say what we know.
		return fmt.Errorf("%s is already published by another moor container; try again: %w", what, domain.ErrConflict)
	}
	return fmt.Errorf("%s is already published by container %q: choose another host_port, or change or remove %s first: %w",
		what, holder, holder, domain.ErrConflict)
}
