package reconciler

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// watchEngine follows the runtime's events for moor's instances and checks
// the engine's health, reconnecting with backoff.
func (r *Reconciler) watchEngine(ctx context.Context) {
	const first, most = 200 * time.Millisecond, 5 * time.Second
	backoff := first
	for ctx.Err() == nil {
		if err := r.engine.Ping(ctx); err != nil {
			r.setEngine(false, err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, most)
			continue
		}
		r.setEngine(true, nil)
		backoff = first
		evCtx, cancel := context.WithCancel(ctx)
		events, errs := r.engine.Events(evCtx, map[string]string{domain.LabelOwner: r.cfg.InstallationID})
		// Catch up on what happened while the engine was away or the stream
		// was down.
		r.Wake()
		r.consumeEvents(ctx, events, errs)
		cancel()
	}
}

// consumeEvents schedules the container of every instance whose state may
// have changed, until the stream ends.
func (r *Reconciler) consumeEvents(ctx context.Context, events <-chan domain.RuntimeEvent, errs <-chan error) {
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			if ctx.Err() == nil {
				r.logger.Warn("engine events stream ended", "err", err)
				if perr := r.engine.Ping(ctx); perr != nil {
					r.setEngine(false, perr)
				}
			}
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if id := ev.Labels[domain.LabelID]; id != "" && stateChanging(ev.Action) && !r.ownEvent(ev) {
				r.schedule(ctx, id)
			}
		}
	}
}

// stateChanging reports whether a runtime event can change what moor
// records. Health checks alone send exec_create/exec_start every interval.
func stateChanging(action string) bool {
	switch action {
	case "create", "start", "restart", "die", "stop", "kill", "destroy", "oom", "rename", "pause", "unpause":
		return true
	}
	return strings.HasPrefix(action, "health_status")
}

func (r *Reconciler) setEngine(up bool, err error) {
	if up {
		r.engineUp.Store(true)
		r.engineErr.Store("")
		return
	}
	if r.engineUp.Swap(false) {
		r.logger.Warn("engine unreachable", "err", err)
	}
	r.engineErr.Store(err.Error())
}

// engineFailed tells an engine that is away (recorded, not the container's
// fault) from a failed call.
func (r *Reconciler) engineFailed(ctx context.Context, err error) {
	if perr := r.engine.Ping(ctx); perr != nil {
		r.setEngine(false, perr)
		return
	}
	r.logger.Warn("engine", "err", err)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// The runtime events a stop and a removal cause.
var (
	stopActions   = []string{"kill", "die", "stop"}
	removeActions = []string{"kill", "die", "destroy"}
)

// ownActions are the events expected for one runtime id, and since when.
type ownActions struct {
	actions []string
	since   time.Time
}

// ownEventTTL bounds how long an expected event is waited for: one that
// never comes (the call failed) must not hide a later real one for long.
const ownEventTTL = 30 * time.Second

// expect records that this process is about to cause actions on the
// runtime instance id (called before the call where the id is known, so
// the event cannot come first).
func (r *Reconciler) expect(id string, actions ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for k, o := range r.own {
		if now.Sub(o.since) > ownEventTTL {
			delete(r.own, k)
		}
	}
	o := r.own[id]
	o.actions = append(o.actions, actions...)
	o.since = now
	r.own[id] = o
}

// ownEvent reports whether ev is one this process caused and expected
// (and forgets it): its pass observes the result, another is not needed.
func (r *Reconciler) ownEvent(ev domain.RuntimeEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.own[ev.RuntimeID]
	if !ok {
		return false
	}
	i := slices.Index(o.actions, ev.Action)
	if i < 0 || time.Since(o.since) > ownEventTTL {
		return false
	}
	o.actions = slices.Delete(o.actions, i, i+1)
	if len(o.actions) == 0 {
		delete(r.own, ev.RuntimeID)
	} else {
		r.own[ev.RuntimeID] = o
	}
	return true
}
