package store

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen calls fn with the sequence number of every event committed by any
// moor process, until ctx ends. It reconnects after errors and calls fn with
// 0 after each (re)connect, since events may have been missed meanwhile.
func (s *Store) Listen(ctx context.Context, fn func(seq int64)) error {
	return s.listen(ctx, Channel, "events", func(payload string) {
		seq, _ := strconv.ParseInt(payload, 10, 64)
		fn(seq)
	})
}

// listen calls fn with the payload of every notification on channel, and
// with "" after each (re)connect, until ctx ends; it reconnects with backoff.
func (s *Store) listen(ctx context.Context, channel, what string, fn func(payload string)) error {
	backoff := 100 * time.Millisecond
	for {
		err := s.listenOnce(ctx, channel, fn)
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("database listener lost, reconnecting", "listener", what, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, fn func(string)) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	fn("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
