package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// Notify tells the reconciler an event was committed (seq 0: events may have
// been missed, do a full pass).
func (r *Reconciler) Notify(seq int64) {
	if seq == 0 {
		r.Wake()
		return
	}
	select {
	case r.notify <- seq:
	default:
		r.Wake() // overflow: a full pass covers everything
	}
}

// Wake asks for a full pass.
func (r *Reconciler) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends, then waits for work in flight.
func (r *Reconciler) Run(ctx context.Context) error {
	// Changes before now are covered by the first full pass.
	seq, err := r.store.LastEventSeq(ctx)
	if err != nil {
		return err
	}
	r.lastSeq = seq
	go r.watchEngine(ctx)
	tick := time.NewTicker(r.cfg.Resync)
	defer tick.Stop()
	r.Wake()
	for {
		select {
		case <-ctx.Done():
			r.inflight.Wait()
			return nil
		case <-tick.C:
			r.fullPass(ctx, true)
		case <-r.wake:
			r.fullPass(ctx, false)
		case <-r.notify:
			// One read of the event log covers every notice queued so far.
			r.discardNotices()
			r.followEvents(ctx)
		case id := <-r.due:
			r.schedule(ctx, id)
		}
	}
}

// discardNotices empties the notice queue.
func (r *Reconciler) discardNotices() {
	for {
		select {
		case <-r.notify:
		default:
			return
		}
	}
}

// followEvents schedules the containers named by new user-requested changes.
func (r *Reconciler) followEvents(ctx context.Context) {
	const page = 500
	for {
		evs, err := r.store.EventsSince(ctx, r.lastSeq, page)
		if err != nil {
			r.logger.Warn("read events", "err", err)
			return
		}
		for _, e := range evs {
			r.lastSeq = e.Seq
			if e.ContainerID != "" && (e.Kind == "container.created" || strings.HasSuffix(e.Kind, "_requested")) {
				r.schedule(ctx, e.ContainerID)
			}
			if e.Kind == "project.created" || e.Kind == "project.deleted" {
				r.Wake() // the full pass makes and removes projects' networks
			}
		}
		if len(evs) < page {
			return
		}
	}
}

// fullPass compares every container with the runtime and schedules those
// that differ. The runtime is listed before the database so that a
// container created meanwhile is never taken for an orphan.
func (r *Reconciler) fullPass(ctx context.Context, timer bool) {
	if err := r.engine.Ping(ctx); err != nil {
		r.setEngine(false, err)
		return
	}
	r.setEngine(true, nil)
	r.syncNetworks(ctx)
	states, err := r.engine.List(ctx, map[string]string{domain.LabelOwner: r.cfg.InstallationID})
	if err != nil {
		r.logger.Warn("list instances", "err", err)
		return
	}
	cs, err := r.store.ListContainers(ctx)
	if err != nil {
		r.logger.Warn("list containers", "err", err)
		return
	}
	byID := map[string][]domain.InstanceState{}
	for _, st := range states {
		if st.Labels[domain.LabelHelper] != "" {
			// A volume copy's helper (a backup or restore under way), no
			// replica and no orphan: the engine adapter removes it.
			continue
		}
		byID[st.Labels[domain.LabelID]] = append(byID[st.Labels[domain.LabelID]], st)
	}
	known := map[string]bool{}
	for _, c := range cs {
		known[c.ID] = true
		if NeedsWork(c, byID[c.ID], timer) && !r.backingOff(c) {
			r.schedule(ctx, c.ID)
		}
	}
	for id, sts := range byID {
		if known[id] {
			continue
		}
		for _, st := range sts {
			r.logger.Info("removing orphan instance", "runtime_id", st.RuntimeID, "name", st.Name)
			if err := r.engine.Remove(ctx, st.RuntimeID); err != nil {
				r.logger.Warn("remove orphan", "runtime_id", st.RuntimeID, "err", err)
			}
		}
	}
}

// schedule runs a worker for container id, or marks it to run again if one
// is already running.
func (r *Reconciler) schedule(ctx context.Context, id string) {
	r.mu.Lock()
	if r.active[id] {
		r.dirty[id] = true
		r.mu.Unlock()
		return
	}
	r.active[id] = true
	r.mu.Unlock()
	r.inflight.Add(1)
	go func() {
		defer r.inflight.Done()
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			r.mu.Lock()
			delete(r.active, id)
			delete(r.dirty, id)
			r.mu.Unlock()
			return
		}
		defer func() { <-r.sem }()
		for {
			r.reconcile(ctx, id)
			r.mu.Lock()
			if !r.dirty[id] || ctx.Err() != nil {
				delete(r.active, id)
				delete(r.dirty, id)
				r.mu.Unlock()
				return
			}
			delete(r.dirty, id)
			r.mu.Unlock()
		}
	}()
}

// again makes the worker of container id look at it once more when done.
func (r *Reconciler) again(id string) {
	r.mu.Lock()
	r.dirty[id] = true
	r.mu.Unlock()
}

// after looks at container id again in d, without holding a worker
// meanwhile (a drain of many containers at once takes one drain, not one
// per batch of workers).
func (r *Reconciler) after(id string, d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case r.due <- id:
		default:
			r.Wake() // full: a full pass finds it too
		}
	})
}

// reconcile brings container id to its desired state, under its lock.
func (r *Reconciler) reconcile(ctx context.Context, id string) {
	lockCtx, ok, err := r.locker.TryLock(ctx, id)
	if err != nil || !ok {
		// Another moor process is on it (or the database is away); its
		// result, or the next resync, will bring us back.
		return
	}
	defer r.locker.Unlock(context.WithoutCancel(ctx), id)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(lockCtx, cancel)()
	c, err := r.store.GetContainerByID(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return
	}
	if err != nil {
		r.logger.Warn("load container", "id", id, "err", err)
		return
	}
	states, err := r.engine.List(ctx, map[string]string{domain.LabelOwner: r.cfg.InstallationID, domain.LabelID: id})
	if err != nil {
		r.engineFailed(ctx, err)
		return
	}
	switch c.DesiredState {
	case domain.DesiredRemoved:
		err = r.ensureRemoved(ctx, c, states)
	case domain.DesiredStopped:
		err = r.ensureStopped(ctx, c, states)
	default:
		err = r.ensureRunning(ctx, c, states)
	}
	if err == nil {
		r.mu.Lock()
		delete(r.failures, id)
		r.mu.Unlock()
		return
	}
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, errVanished) {
		r.again(id) // look again at once
		return
	}
	if perr := r.engine.Ping(ctx); perr != nil {
		// The engine is away: not the container's fault. Catch up later.
		r.setEngine(false, perr)
		return
	}
	r.recordFailure(ctx, c, err)
}

// Retries of a failed container: 2 s, 4 s, 8 s ... up to retryMax, then
// every retryMax; a success starts over.
const (
	retryFirst = 2 * time.Second
	retryMax   = 5 * time.Minute
)

// recordFailure marks c failed with err as the reason, and when moor tries
// again: the reason says it, so nobody wonders whether it will.
func (r *Reconciler) recordFailure(ctx context.Context, c domain.Container, err error) {
	r.logger.Warn("reconcile failed", "container", c.Name, "err", err)
	r.mu.Lock()
	rs := r.failures[c.ID]
	if rs.gen != c.Generation {
		rs = retryState{gen: c.Generation} // the user changed it: start over
	}
	rs.n++
	attempt := rs.n
	delay := retryMax
	if attempt < 10 {
		delay = min(retryFirst<<(attempt-1), retryMax)
	}
	retryAt := time.Now().Add(delay).UTC()
	rs.at = retryAt
	r.failures[c.ID] = rs
	r.mu.Unlock()
	r.after(c.ID, delay)
	what := r.explain(c, err)
	reason := fmt.Sprintf("%s; moor tries again in %s, at %s UTC (attempt %d)", what, delay, retryAt.Format(time.TimeOnly), attempt+1)
	// The same failure again is a retry, not a new failure: its event says
	// so (the reason still moves on, with the next try's time).
	event := "failed"
	if c.Status == domain.StatusFailed && strings.HasPrefix(c.StatusReason, what+"; moor tries again") {
		event = "retrying"
	}
	status := domain.StatusFailed
	if c.DesiredState == domain.DesiredRemoved {
		status = domain.StatusRemoving
	}
	if rerr := r.store.RecordObservation(ctx, domain.Observation{
		ID: c.ID, Name: c.Name, Status: status, Cause: domain.CauseFailed, Reason: reason,
		ObservedGeneration: c.Generation, Event: event,
		Data: map[string]any{"reason": reason, "retry_at": retryAt, "attempt": attempt},
	}); rerr != nil {
		r.logger.Warn("record failure", "container", c.Name, "err", rerr)
	}
}

// errVanished means an instance went away between listing and acting on
// it, e.g. removed with the docker CLI: the pass starts over.
var errVanished = errors.New("instance vanished")

func vanished(err error) error {
	if errors.Is(err, domain.ErrNotFound) {
		return errVanished
	}
	return err
}

// explain words c's failure for its status: what happened and, where moor
// knows, what to do. Pull failures word themselves (domain.PullError), and
// so do taken host ports (domain.PortInUseError), given the container's
// name for the change that frees them; a Docker name held by someone else
// says whose it is and the way out.
func (r *Reconciler) explain(c domain.Container, err error) string {
	var nt *domain.NameTakenError
	if errors.As(err, &nt) {
		switch nt.Owner {
		case "":
			return fmt.Sprintf("a Docker container named %s already exists and was not made by moor (made by hand or by another tool): "+
				"remove it (docker rm -f %s) or deploy under another name", nt.Name, nt.Name)
		case r.cfg.InstallationID:
			return fmt.Sprintf("the Docker container name %s is held by another container of this installation (moor.id %s), "+
				"being removed: moor tries again; if it stays, docker rm -f %s", nt.Name, nt.ID, nt.Name)
		}
		return fmt.Sprintf("the Docker container name %s is held by moor installation %s: "+
			"run `moor uninstall --owner %s` to remove what it left, or `docker rm -f %s`, or deploy under another name",
			nt.Name, nt.Owner, nt.Owner, nt.Name)
	}
	var vt *domain.VolumeTakenError
	if errors.As(err, &vt) {
		return fmt.Sprintf("the Docker volume %s is held by moor installation %s, with its data: "+
			"run `moor uninstall --owner %s` to remove what it left, or `docker volume rm %s` if its data is not needed, "+
			"or deploy under another name", vt.Name, vt.Owner, vt.Owner, vt.Name)
	}
	var ce *createError
	if errors.As(err, &ce) && errors.Is(err, domain.ErrConflict) {
		return fmt.Sprintf("a Docker container named %s already exists and is not this installation's: "+
			"remove it (docker rm -f %s) or deploy under another name (%v)", ce.name, ce.name, ce.err)
	}
	var pe *domain.PortInUseError
	if errors.As(err, &pe) {
		named := *pe
		named.Container = c.Name
		return named.Error()
	}
	return err.Error()
}

// createError is a replica's create that failed, with the Docker name.
type createError struct {
	name string
	err  error
}

func (e *createError) Error() string { return e.err.Error() }
func (e *createError) Unwrap() error { return e.err }

// retryState is a failing container's backoff: failed passes in a row at
// its generation, and when the next try is due.
type retryState struct {
	n   int
	gen int64
	at  time.Time
}

// backingOff reports whether a failed container waits for its next try:
// the periodic pass leaves it to the retry timer, so the time its
// status_reason gives holds. A user's change (a new generation) does not
// wait.
func (r *Reconciler) backingOff(c domain.Container) bool {
	if c.Status != domain.StatusFailed || c.ObservedGeneration < c.Generation {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.failures[c.ID]
	return ok && rs.gen == c.Generation && time.Now().Before(rs.at)
}
