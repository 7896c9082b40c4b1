package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Locker hands out per-container advisory locks held on one dedicated
// session, so that of several moor processes only one acts on a container at
// a time, and a crashed process's locks vanish with its connection.
type Locker struct {
	url  string
	mu   sync.Mutex
	conn *pgx.Conn
}

// NewLocker returns a Locker on its own connection to the database.
func (s *Store) NewLocker() *Locker { return &Locker{url: s.url} }

func lockKey(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("moor.container:" + id))
	return int64(h.Sum64())
}

// TryLock takes the lock for id without waiting. After a connection loss
// every lock is gone, so callers treat an error as "not locked".
func (l *Locker) TryLock(ctx context.Context, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.conn.IsClosed() {
		c, err := pgx.Connect(ctx, l.url)
		if err != nil {
			return false, fmt.Errorf("lock connection: %w", err)
		}
		l.conn = c
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(id)).Scan(&ok); err != nil {
		l.conn.Close(context.WithoutCancel(ctx))
		l.conn = nil
		return false, err
	}
	return ok, nil
}

// Unlock releases the lock for id.
func (l *Locker) Unlock(ctx context.Context, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey(id)); err != nil {
		l.conn.Close(context.WithoutCancel(ctx))
		l.conn = nil
	}
}

// Close drops the session and with it every lock.
func (l *Locker) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
}
