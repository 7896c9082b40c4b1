package reconciler

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// drainNow drains the replicas of states and reports whether they may stop
// now; if not, the container is looked at again when they may.
func (r *Reconciler) drainNow(ctx context.Context, c domain.Container, states []domain.InstanceState) (bool, error) {
	wait, err := r.drain(ctx, c, states)
	if err != nil {
		return false, err
	}
	if wait > 0 {
		r.after(c.ID, wait)
		return false, nil
	}
	return true, nil
}

// drain takes the replicas that are about to be stopped or removed (those
// of states that run) out of the routes and the container zone, and reports
// how much longer they must stay out before they may stop: cfg.Drain from
// when this process first drained them, for Traefik to follow, so requests
// meet another replica or moor's status page, never a replica going away
// (a 502). After a crash, or in another moor process, the wait starts
// again: longer, never shorter.
func (r *Reconciler) drain(ctx context.Context, c domain.Container, states []domain.InstanceState) (time.Duration, error) {
	if r.cfg.Drain <= 0 {
		return 0, nil
	}
	leaving := map[string]bool{} // runtime ids
	for _, st := range states {
		if st.Running {
			leaving[st.RuntimeID] = true
		}
	}
	if len(leaving) == 0 {
		return 0, nil
	}
	ins := slices.Clone(c.Instances)
	dns := []domain.DNSEntry{}
	marked := map[string]bool{} // runtime ids drained by this call
	for k, in := range ins {
		if in.RuntimeID != "" && leaving[in.RuntimeID] && in.Status == domain.StatusRunning {
			ins[k].Status = domain.StatusStopping
			marked[in.RuntimeID] = true
		}
		if ins[k].Status == domain.StatusRunning {
			dns = append(dns, r.containerDNS(c, ins[k])...)
		}
	}
	// Only replicas that were in the routes need the wait.
	routed := map[string]bool{}
	for _, in := range ins {
		if in.Status == domain.StatusStopping && leaving[in.RuntimeID] {
			routed[in.RuntimeID] = true
		}
	}
	if len(marked) > 0 {
		if err := r.store.RecordObservation(ctx, domain.Observation{
			ID: c.ID, Name: c.Name, Status: c.Status, Cause: c.StatusCause, Reason: c.StatusReason, Instances: ins, ContainerDNS: dns,
		}); err != nil {
			return 0, err
		}
		r.step("drained")
	}
	now := time.Now()
	var remaining time.Duration
	r.mu.Lock()
	for id := range routed {
		// A replica drained before and back in the routes since (a stop
		// undone by a start) starts over.
		since, ok := r.drainSince[id]
		if !ok || marked[id] {
			since = now
			r.drainSince[id] = now
		}
		remaining = max(remaining, since.Add(r.cfg.Drain).Sub(now))
	}
	r.mu.Unlock()
	return remaining, nil
}

// drained forgets the drain of an instance that stopped or went.
func (r *Reconciler) drained(runtimeID string) {
	r.mu.Lock()
	delete(r.drainSince, runtimeID)
	r.mu.Unlock()
}

// waitReady waits until the restarted replica index (runtime id) would
// take traffic: running and, when its type has a health check, healthy. It
// gives up when the replica stops or crashes, or after cfg.ReadyTimeout.
func (r *Reconciler) waitReady(ctx context.Context, c domain.Container, index int, id string) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReadyTimeout)
	defer cancel()
	checked := c.Spec.Health != nil && len(c.Spec.Health.Test) > 0 && c.Spec.Health.Test[0] != "NONE"
	for {
		st, err := r.engine.Inspect(ctx, id)
		switch {
		case err != nil, !st.Running, st.Restarting, st.Health == "unhealthy":
			return
		case st.Health == "healthy", !checked && st.Health != "starting":
			return
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				r.logger.Warn("restart: replica not ready in time; going on", "container", c.Name, "replica", index, "waited", r.cfg.ReadyTimeout)
			}
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}
