package engine

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
)

// Events streams the events of the containers that carry all labels (an
// empty value matches any value), from now on. The event channel is closed
// when the stream ends; then the error channel (buffered) yields one error
// and is closed: the context's error when ctx ends, an error wrapping
// domain.ErrUnavailable when the engine is unreachable or the connection
// drops. A consumer should resynchronise (List) after reconnecting, since
// events in between are lost.
func (d *Docker) Events(ctx context.Context, labels map[string]string) (<-chan domain.RuntimeEvent, <-chan error) {
	out := make(chan domain.RuntimeEvent)
	errc := make(chan error, 1)
	f := labelFilters(labels)
	f.Add("type", string(events.ContainerEventType))

	ctx, cancel := context.WithCancel(ctx)
	res := d.cli.Events(ctx, client.EventsListOptions{Filters: f})
	go func() {
		defer cancel()
		defer close(errc)
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case err, ok := <-res.Err:
				switch {
				case ctx.Err() != nil:
					errc <- ctx.Err()
				case !ok || err == nil:
					errc <- fmt.Errorf("docker events: stream ended: %w", domain.ErrUnavailable)
				default:
					errc <- fmt.Errorf("docker events: %w: %w", domain.ErrUnavailable, err)
				}
				return
			case m := <-res.Messages:
				if m.Type != "" && m.Type != events.ContainerEventType {
					continue
				}
				ev := eventFrom(m)
				if !hasLabels(ev.Labels, labels) {
					continue
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			}
		}
	}()
	return out, errc
}

func eventFrom(m events.Message) domain.RuntimeEvent {
	attrs := maps.Clone(m.Actor.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	ev := domain.RuntimeEvent{
		RuntimeID: m.Actor.ID,
		Action:    string(m.Action),
		Name:      attrs["name"],
		Image:     attrs["image"],
	}
	if code, ok := attrs["exitCode"]; ok {
		ev.ExitCode, _ = strconv.Atoi(code)
	}
	for _, k := range []string{"name", "image", "exitCode", "signal"} {
		delete(attrs, k)
	}
	ev.Labels = attrs
	switch {
	case m.TimeNano != 0:
		ev.Time = time.Unix(0, m.TimeNano)
	case m.Time != 0:
		ev.Time = time.Unix(m.Time, 0)
	}
	return ev
}
