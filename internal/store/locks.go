package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Locker hands out per-container advisory locks held on one dedicated
// session, so that of several moor processes only one acts on a container at
// a time, and a crashed process's locks vanish with its connection. When the
// session is lost, every lock is, so the contexts handed out with the locks
// end: work under a lost lock stops rather than race another process.
type Locker struct {
	url     string
	mu      sync.Mutex
	conn    *pgx.Conn
	session context.Context // ends when conn is lost
	lost    context.CancelFunc
	held    bool // Hold was called: Run reconnects a lost session
}

// NewLocker returns a Locker on its own connection to the database.
func (s *Store) NewLocker() *Locker { return &Locker{url: s.url} }

func lockKey(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("moor.container:" + id))
	return int64(h.Sum64())
}

// connect opens the session if needed, holding servingLock shared on it
// (moor uninstall looks for that); l.mu is held. While an uninstall holds
// it, it fails wrapping ErrUninstalling: no container is locked, so the
// reconciler does not act on what the uninstall removes.
func (l *Locker) connect(ctx context.Context) error {
	if l.conn != nil && !l.conn.IsClosed() {
		return nil
	}
	c, err := connectAs(ctx, l.url, appServe)
	if err != nil {
		return fmt.Errorf("lock connection: %w", err)
	}
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared($1)`, servingLock).Scan(&ok); err != nil || !ok {
		c.Close(context.WithoutCancel(ctx))
		if err == nil {
			err = ErrUninstalling
		}
		return fmt.Errorf("lock connection: %w", err)
	}
	l.conn = c
	l.session, l.lost = context.WithCancel(context.Background())
	return nil
}

// drop closes the session and ends every lock's context; l.mu is held.
func (l *Locker) drop() {
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
	if l.lost != nil {
		l.lost()
		l.lost = nil
	}
}

// Hold opens the lock session now rather than at the first lock, so a
// `moor uninstall` sees this process from its start; it fails wrapping
// ErrUninstalling while an uninstall runs.
func (l *Locker) Hold(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = true
	return l.connect(ctx)
}

// TryLock takes the lock for id without waiting. The context it returns ends
// when the lock is lost with the session.
func (l *Locker) TryLock(ctx context.Context, id string) (context.Context, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.connect(ctx); err != nil {
		return nil, false, err
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(id)).Scan(&ok); err != nil {
		l.drop()
		return nil, false, err
	}
	return l.session, ok, nil
}

// Unlock releases the lock for id.
func (l *Locker) Unlock(ctx context.Context, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey(id)); err != nil {
		l.drop()
	}
}

// Run checks the session every interval, so a lost one is noticed while
// work holds its locks, not only at the next TryLock.
func (l *Locker) Run(ctx context.Context) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		l.mu.Lock()
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if l.conn != nil {
			if err := l.conn.Ping(pingCtx); err != nil {
				l.drop()
			}
		} else if l.held {
			// Back as soon as the database is, so moor uninstall sees
			// this server again (not only at its next container lock).
			_ = l.connect(pingCtx)
		}
		cancel()
		l.mu.Unlock()
	}
}

// Close drops the session and with it every lock.
func (l *Locker) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop()
}
