package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moorhq/moor/internal/domain"
)

// closePruned is moor's close code for a stream asked to resume from
// events retention has deleted (api/ws.go).
const closePruned = 4410

// ErrPruned says events after the cursor were pruned: some are lost for
// good, so the caller must reload the state rather than resume.
var ErrPruned = errors.New("events were pruned")

// Stream is a websocket of events (GET /api/v1/ws).
type Stream struct {
	conn *websocket.Conn
	done chan struct{}
	// Last is the seq of the last event read (the cursor to resume from).
	Last int64
}

// Watch opens the event websocket: after >= 0 resumes after that seq,
// after < 0 starts with the next event committed.
func (c *Client) Watch(ctx context.Context, after int64) (*Stream, error) {
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = c.base.Path + "/api/v1/ws"
	if after >= 0 {
		u.RawQuery = url.Values{"after": {strconv.FormatInt(after, 10)}}.Encode()
	}
	h := http.Header{}
	if c.key != "" {
		h.Set("Authorization", "Bearer "+c.key)
	}
	h.Set("User-Agent", c.UserAgent)
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 30 * time.Second,
		Subprotocols:     []string{"moor.v1"},
	}
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, readError(resp)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{URL: c.base.String(), Err: err}
	}
	// moor sends events; it reads only control frames. Reading notices a
	// close at once.
	conn.SetReadLimit(16 << 20)
	s := &Stream{conn: conn, Last: after, done: make(chan struct{})}
	// Ending ctx ends a blocked Next.
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// Next returns the next event. A stream that ends returns an error:
// ErrPruned when events after its cursor were pruned, the context's error
// when ctx ended, an *UnreachableError otherwise (resume from Last).
func (s *Stream) Next(ctx context.Context) (domain.Event, error) {
	_, data, err := s.conn.ReadMessage()
	if err != nil {
		if ctx.Err() != nil {
			return domain.Event{}, ctx.Err()
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == closePruned {
			return domain.Event{}, fmt.Errorf("%w: %s", ErrPruned, ce.Text)
		}
		return domain.Event{}, &UnreachableError{URL: s.conn.RemoteAddr().String(), Err: fmt.Errorf("event stream: %w", err)}
	}
	var ev domain.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return domain.Event{}, &ProtocolError{URL: s.conn.RemoteAddr().String(), Err: fmt.Errorf("event stream: %v", err)}
	}
	s.Last = ev.Seq
	return ev, nil
}

// Close ends the stream.
func (s *Stream) Close() error {
	select {
	case <-s.done:
		return nil
	default:
		close(s.done)
	}
	s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return s.conn.Close()
}

// Follow calls fn with every event after after (< 0: from the next one),
// reconnecting with the last seq seen when the stream drops (moor
// restarted, a proxy timed out), until fn returns an error or ctx ends.
// It gives up when moor stays unreachable for patience (0: a minute), or
// at once on an API error (401, 403) or pruned events.
func (c *Client) Follow(ctx context.Context, after int64, patience time.Duration, fn func(domain.Event) error) error {
	if patience == 0 {
		patience = time.Minute
	}
	cursor := after
	var downSince time.Time
	backoff := 250 * time.Millisecond
	for {
		s, err := c.Watch(ctx, cursor)
		if err == nil {
			downSince, backoff = time.Time{}, 250*time.Millisecond
			for {
				var ev domain.Event
				ev, err = s.Next(ctx)
				if err != nil {
					break
				}
				cursor = ev.Seq
				if err = fn(ev); err != nil {
					s.Close()
					return err
				}
			}
			s.Close()
		}
		// Resume after the last event seen (with none seen from "now",
		// from the next one again).
		var ue *UnreachableError
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.As(err, &ue) {
			return err
		}
		if downSince.IsZero() {
			downSince = time.Now()
		} else if time.Since(downSince) > patience {
			return err
		}
		if err := c.sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
