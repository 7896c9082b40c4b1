package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/moorhq/moor/internal/domain"
)

// ensureRunning makes every replica exist and run: the runtime's resources
// first, then each replica, then extras go, then the result is recorded.
func (r *Reconciler) ensureRunning(ctx context.Context, c domain.Container, states []domain.InstanceState) error {
	if wait, err := r.waitForDependencies(ctx, c, states); wait || err != nil {
		return err
	}
	if c.Status == domain.StatusPending {
		if err := r.store.RecordObservation(ctx, domain.Observation{
			ID: c.ID, Name: c.Name, Status: domain.StatusCreating, Instances: c.Instances, Event: "creating",
		}); err != nil {
			return err
		}
		c.Status = domain.StatusCreating
		r.step("creating")
	}
	byReplica, extra := splitReplicas(states, c.Replicas)
	cached, err := r.prepare(ctx, c, byReplica)
	if err != nil {
		return err
	}
	// Extras leave the routes first: a restart below rewrites the
	// instances without them.
	if ok, err := r.drainNow(ctx, c, extra); !ok {
		return err
	}
	prev := map[int]domain.Instance{}
	for _, in := range c.Instances {
		prev[in.Index] = in
	}
	var env map[string]string
	ids := make(map[int]string, c.Replicas) // runtime id of each replica, as this pass left it
	for i, st := range byReplica {
		ids[i] = st.RuntimeID // known before the loop reaches it: a replacement looks at the others
	}
	for i := 0; i < c.Replicas; i++ {
		st, exists := byReplica[i]
		ids[i] = st.RuntimeID
		switch {
		case !exists:
			if p := prev[i]; p.RuntimeID != "" && c.ObservedGeneration == c.Generation && c.Spec.Restart == domain.RestartNever {
				return r.stoppedOutside(ctx, c, domain.StatusFailed, fmt.Sprintf("replica %d was removed outside moor", i))
			}
			if env == nil {
				if env, err = r.env(ctx, c); err != nil {
					return err
				}
			}
			ids[i], err = r.createReplica(ctx, c, i, env)
			if cached && errors.Is(err, domain.ErrNotFound) {
				// The network or image this process had made sure of is
				// gone (removed behind moor's back): check again, at once.
				r.forgetPresent(c)
				return errVanished
			}
		case outdated(c, st):
			if env == nil {
				if env, err = r.env(ctx, c); err != nil {
					return err
				}
			}
			ids[i], err = r.replaceReplica(ctx, &c, i, st, env, ids)
		case !st.Running:
			var left bool
			if left, err = r.startStopped(ctx, c, i, st); left {
				return err
			}
		case !c.RestartAt.IsZero():
			err = r.restartReplica(ctx, &c, i, st)
		}
		if err != nil {
			return err
		}
	}
	if err := r.removeExtras(ctx, extra); err != nil {
		return err
	}
	return r.observe(ctx, c, domain.StatusRunning, ids)
}

// prepare makes the network, the image and the volumes of the replicas
// about to be created (those not in existing) present; cached reports
// whether it took the network's or image's presence from what this process
// saw before. A pass that creates nothing (a health change, a resync) asks
// the engine nothing here.
func (r *Reconciler) prepare(ctx context.Context, c domain.Container, existing map[int]domain.InstanceState) (cached bool, err error) {
	if cached, err = r.ensureNetwork(ctx, c.Project, c.ProjectInternal); err != nil {
		return false, err
	}
	r.step("network")
	if !c.PullAt.IsZero() {
		if err := r.pullAgain(ctx, c); err != nil {
			return false, err
		}
	} else if _, ok := r.present.Load("image:" + c.Image); ok {
		cached = true
	} else {
		progress, stop := r.pullProgress(ctx, c)
		err := r.engine.EnsureImage(ctx, c.Image, progress)
		stop()
		if err != nil {
			return false, fmt.Errorf("image %s: %w", c.Image, err)
		}
		r.present.Store("image:"+c.Image, struct{}{})
	}
	r.step("image")
	for i := 0; i < c.Replicas; i++ {
		if st, ok := existing[i]; ok && !outdated(c, st) {
			continue // its volumes exist: an instance holds them (one to replace may need a new one)
		}
		for _, v := range c.Spec.Volumes {
			if v.HostPath != "" {
				continue
			}
			if err := r.engine.EnsureVolume(ctx, domain.VolumeName(c.Project, c.Name, v.Name, i), r.replicaLabels(c, i)); err != nil {
				return false, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	r.step("volumes")
	return cached, nil
}

// pullAgain pulls c's image again for a redeploy that asked for it (a tag
// such as :latest may have moved), then records the pull done, so a later
// pass of the same redeploy does not pull again (a crash before that
// record pulls once more: harmless). An image local to the engine is not
// pulled, and an image.pull event says so where the pull's progress would
// be: the redeploy goes on with the local image.
func (r *Reconciler) pullAgain(ctx context.Context, c domain.Container) error {
	progress, stop := r.pullProgress(ctx, c)
	err := r.engine.PullImage(ctx, c.Image, progress)
	stop()
	switch {
	case errors.Is(err, domain.ErrLocalImage):
		if _, err := r.store.AppendEvent(ctx, "image.pull", c.ID, c.Name, map[string]any{
			"image": c.Image, "local": true,
			"status": "Not pulled: " + c.Image + " was built or loaded on this engine and comes from no registry; the replicas are replaced with the local image",
		}); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("image %s: %w", c.Image, err)
	}
	r.present.Store("image:"+c.Image, struct{}{})
	return r.store.RecordObservation(ctx, domain.Observation{
		ID: c.ID, Name: c.Name, Status: c.Status, Cause: c.StatusCause, Reason: c.StatusReason, PullDone: c.PullAt,
	})
}

// network is the Docker network of c's project.
func (r *Reconciler) network(c domain.Container) string {
	return domain.ProjectNetwork(r.cfg.Network, c.Project)
}

// ensureNetwork makes a project's network present (with the router
// attached), unless this process saw to it before (cached).
//
// A router that cannot be attached (not started yet, or recreated and not
// running) does not fail the deploy: the replicas run, the failure is
// logged, and every full pass tries again (syncNetworks asks the engine
// whatever this process saw before, so a recreated router is attached
// again within a pass).
func (r *Reconciler) ensureNetwork(ctx context.Context, project string, internal bool) (cached bool, err error) {
	name := domain.ProjectNetwork(r.cfg.Network, project)
	if _, ok := r.present.Load("network:" + name); ok {
		return true, nil
	}
	labels := map[string]string{domain.LabelOwner: r.cfg.InstallationID}
	if project != domain.DefaultProject && project != "" {
		labels[domain.LabelProject] = project
	}
	err = r.engine.EnsureNetwork(ctx, domain.NetworkSpec{Name: name, Labels: labels, Internal: internal, Attach: r.cfg.Attach})
	var attach *domain.AttachError
	if err != nil && !errors.As(err, &attach) {
		return false, fmt.Errorf("network %s: %w", name, err)
	}
	r.recordSubnets(ctx, project, nil)
	if attach != nil {
		// Not remembered: the next pass tries to attach it again.
		r.logger.Warn("router not attached to a project's network; routes to it fail until it is", "network", name, "err", err)
		return false, nil
	}
	r.present.Store("network:"+name, struct{}{})
	return false, nil
}

// recordSubnets records the subnets of a project's network, by which the
// DNS server tells a client's project, unless they are those stored (the
// project's row as read; nil: not read, the store compares). A failure is
// logged only: the next full pass tries again.
func (r *Reconciler) recordSubnets(ctx context.Context, project string, stored []string) {
	name := domain.ProjectNetwork(r.cfg.Network, project)
	subnets, err := r.engine.NetworkSubnets(ctx, name)
	if errors.Is(err, domain.ErrNotFound) {
		return // the default project's, before its first container makes it
	}
	if err != nil {
		r.logger.Warn("network subnets", "network", name, "err", err)
		return
	}
	if stored != nil && slices.Equal(stored, prefixStrings(subnets)) {
		return
	}
	if err := r.store.RecordProjectSubnets(ctx, project, subnets); err != nil {
		r.logger.Warn("record network subnets", "project", project, "err", err)
		return
	}
	r.logger.Debug("network subnets recorded", "project", project, "subnets", subnets)
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// syncNetworks makes every project's network present and removes those of
// deleted projects, and keeps every project's subnets recorded (the
// default project's too). The networks are listed before the projects, so one
// made for a project created meanwhile is never taken for a leftover.
func (r *Reconciler) syncNetworks(ctx context.Context) {
	nets, err := r.engine.ListNetworks(ctx, map[string]string{domain.LabelOwner: r.cfg.InstallationID, domain.LabelProject: ""})
	if err != nil {
		r.logger.Warn("list networks", "err", err)
		return
	}
	ps, err := r.store.ListProjects(ctx)
	if err != nil {
		r.logger.Warn("list projects", "err", err)
		return
	}
	want := map[string]bool{}
	for _, p := range ps {
		n := domain.ProjectNetwork(r.cfg.Network, p.Name)
		want[n] = true
		if p.Name == domain.DefaultProject && len(r.cfg.Attach) == 0 {
			// Made with its first container, as ever; its subnets heal here.
			stored := p.Subnets
			if stored == nil {
				stored = []string{}
			}
			r.recordSubnets(ctx, p.Name, stored)
			continue
		}
		// Asked afresh each pass: the router may have been recreated, the
		// subnets changed behind moor's back (ensureNetwork records them).
		r.present.Delete("network:" + n)
		if _, err := r.ensureNetwork(ctx, p.Name, p.Internal); err != nil {
			r.logger.Warn("project network", "project", p.Name, "err", err)
		}
	}
	for _, n := range nets {
		if want[n] {
			continue
		}
		r.present.Delete("network:" + n)
		r.present.Delete("gateway:" + n)
		if err := r.engine.RemoveNetwork(ctx, n); err != nil {
			r.logger.Warn("remove network of a deleted project", "network", n, "err", err)
			continue
		}
		r.logger.Info("network of a deleted project removed", "network", n)
	}
}

// forgetPresent makes the next pass check c's network and image again.
func (r *Reconciler) forgetPresent(c domain.Container) {
	r.present.Delete("network:" + r.network(c))
	r.present.Delete("gateway:" + r.network(c))
	r.present.Delete("image:" + c.Image)
}

// createReplica creates and starts replica i and returns its runtime id.
func (r *Reconciler) createReplica(ctx context.Context, c domain.Container, i int, env map[string]string) (string, error) {
	spec := r.instanceSpec(c, i, env)
	id, err := r.engine.Create(ctx, spec)
	if err != nil {
		return "", &createError{name: spec.Name, err: fmt.Errorf("create replica %d: %w", i, err)}
	}
	r.expect(id, "create")
	r.step("created")
	r.expect(id, "start")
	if err := r.engine.Start(ctx, id); err != nil {
		return id, fmt.Errorf("start replica %d: %w", i, err)
	}
	r.step("started")
	return id, nil
}

// startStopped starts replica i, found stopped, unless it stopped behind
// moor's back and the type's restart policy says to leave it: then the
// container is recorded as it is and left reports true.
func (r *Reconciler) startStopped(ctx context.Context, c domain.Container, i int, st domain.InstanceState) (left bool, err error) {
	full, err := r.engine.Inspect(ctx, st.RuntimeID)
	if err != nil {
		return false, vanished(err)
	}
	// It ran and stopped, and no user change is pending: it stopped behind
	// moor's back, and the type's restart policy decides.
	if !full.StartedAt.IsZero() && c.ObservedGeneration == c.Generation {
		policy := c.Spec.Restart
		r.logger.Info("replica stopped outside moor", "container", c.Name, "replica", i, "exit_code", full.ExitCode, "restart_policy", policy)
		if policy == domain.RestartNever || (policy == domain.RestartOnFailure && full.ExitCode == 0) {
			status := domain.StatusStopped
			if full.ExitCode != 0 {
				status = domain.StatusFailed
			}
			return true, r.stoppedOutside(ctx, c, status, fmt.Sprintf("replica %d exited with code %d outside moor", i, full.ExitCode))
		}
	}
	r.expect(st.RuntimeID, "start")
	if err := r.engine.Start(ctx, st.RuntimeID); err != nil {
		return false, fmt.Errorf("start replica %d: %w", i, err)
	}
	r.step("started")
	return false, nil
}

// restartReplica restarts replica i for a pending restart. A restart is
// pending until observe records it done, so a crash half-way restarts every
// replica again: repeatable. One replica at a time, each out of the routes
// while it restarts and back as soon as it is ready.
func (r *Reconciler) restartReplica(ctx context.Context, c *domain.Container, i int, st domain.InstanceState) error {
	wait, err := r.drain(ctx, *c, []domain.InstanceState{st})
	if err != nil {
		return err
	}
	if sleep(ctx, wait); ctx.Err() != nil {
		return ctx.Err()
	}
	r.expect(st.RuntimeID, stopActions...)
	if err := r.engine.Stop(ctx, st.RuntimeID, r.cfg.StopTimeout); err != nil {
		return fmt.Errorf("restart replica %d: %w", i, vanished(err))
	}
	r.drained(st.RuntimeID)
	r.expect(st.RuntimeID, "start")
	if err := r.engine.Start(ctx, st.RuntimeID); err != nil {
		return fmt.Errorf("restart replica %d: %w", i, err)
	}
	if i < c.Replicas-1 {
		// The next replica leaves the routes only once this one takes
		// traffic again.
		r.waitReady(ctx, *c, i, st.RuntimeID)
	}
	return r.recordInstances(ctx, c)
}

// replaceReplica replaces replica i, made with an older image or
// environment, by a new one: out of the routes first (when running), then
// stopped and removed, then created again, and the next replica waits until
// this one is ready, so a container of several replicas keeps serving. A
// crash half-way leaves some replicas outdated: the next pass goes on.
func (r *Reconciler) replaceReplica(ctx context.Context, c *domain.Container, i int, st domain.InstanceState, env map[string]string, ids map[int]string) (string, error) {
	if st.Running && c.Replicas > 1 {
		// Another replica takes the traffic meanwhile: one that is ready,
		// and recorded so (the routes follow the record), before this one
		// leaves them. A replica just deployed may still be starting.
		for j := range c.Replicas {
			if j != i && ids[j] != "" {
				r.waitReady(ctx, *c, j, ids[j])
				break
			}
		}
		if err := r.recordInstances(ctx, c); err != nil {
			return st.RuntimeID, err
		}
	}
	if st.Running {
		wait, err := r.drain(ctx, *c, []domain.InstanceState{st})
		if err != nil {
			return st.RuntimeID, err
		}
		if sleep(ctx, wait); ctx.Err() != nil {
			return st.RuntimeID, ctx.Err()
		}
	}
	r.expect(st.RuntimeID, removeActions...)
	if err := r.engine.Remove(ctx, st.RuntimeID); err != nil {
		return st.RuntimeID, fmt.Errorf("replace replica %d: %w", i, vanished(err))
	}
	r.drained(st.RuntimeID)
	r.step("replaced")
	id, err := r.createReplica(ctx, *c, i, env)
	if err != nil {
		return id, err
	}
	if i < c.Replicas-1 {
		r.waitReady(ctx, *c, i, id)
	}
	return id, r.recordInstances(ctx, c)
}

// removeExtras removes replicas beyond the wanted count (scale down) and
// duplicates.
func (r *Reconciler) removeExtras(ctx context.Context, extra []domain.InstanceState) error {
	for _, st := range extra {
		r.expect(st.RuntimeID, removeActions...)
		if err := r.engine.Remove(ctx, st.RuntimeID); err != nil {
			return fmt.Errorf("scale down: %w", err)
		}
		r.drained(st.RuntimeID)
	}
	return nil
}

// stoppedOutside records a container stopped behind moor's back whose
// restart policy says to leave it: desired state follows reality.
func (r *Reconciler) stoppedOutside(ctx context.Context, c domain.Container, status domain.Status, reason string) error {
	ins, _, _, err := r.instances(ctx, c, nil)
	if err != nil {
		return err
	}
	return r.store.RecordObservation(ctx, domain.Observation{
		ID: c.ID, Name: c.Name, Status: status, Cause: domain.CauseStoppedOutside, Reason: reason, Instances: ins,
		ObservedGeneration: c.Generation, StopAt: c.Generation, ContainerDNS: []domain.DNSEntry{},
		Event: "stopped_outside", Data: map[string]any{"reason": reason, "restart_policy": c.Spec.Restart},
	})
}

// ensureStopped stops every replica (extras go).
func (r *Reconciler) ensureStopped(ctx context.Context, c domain.Container, states []domain.InstanceState) error {
	if ok, err := r.drainNow(ctx, c, states); !ok {
		return err
	}
	byReplica, extra := splitReplicas(states, c.Replicas)
	for _, st := range byReplica {
		if st.Running {
			r.expect(st.RuntimeID, stopActions...)
			if err := r.engine.Stop(ctx, st.RuntimeID, r.cfg.StopTimeout); err != nil {
				return fmt.Errorf("stop: %w", err)
			}
			r.drained(st.RuntimeID)
		}
	}
	if err := r.removeExtras(ctx, extra); err != nil {
		return err
	}
	return r.observe(ctx, c, domain.StatusStopped, nil)
}

// ensureRemoved deletes the instances, then the volumes unless kept, then
// the record. Each step is repeatable, so a crash anywhere is finished
// later.
func (r *Reconciler) ensureRemoved(ctx context.Context, c domain.Container, states []domain.InstanceState) error {
	if ok, err := r.drainNow(ctx, c, states); !ok {
		return err
	}
	for _, st := range states {
		r.expect(st.RuntimeID, removeActions...)
		if err := r.engine.Remove(ctx, st.RuntimeID); err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		r.drained(st.RuntimeID)
	}
	r.step("removed-containers")
	if !c.KeepVolumes {
		// By label, so volumes of replicas scaled away go too.
		vols, err := r.engine.ListVolumes(ctx, map[string]string{domain.LabelOwner: r.cfg.InstallationID, domain.LabelID: c.ID})
		if err != nil {
			return fmt.Errorf("list volumes: %w", err)
		}
		for _, v := range vols {
			if err := r.engine.RemoveVolume(ctx, v); err != nil {
				return fmt.Errorf("remove volume %s: %w", v, err)
			}
		}
	}
	r.step("removed-volumes")
	return r.store.FinishRemoval(ctx, c.ID, c.Name, map[string]any{"kept_volumes": c.KeepVolumes})
}

// replicaLabels are the labels of replica i's runtime objects.
func (r *Reconciler) replicaLabels(c domain.Container, i int) map[string]string {
	return map[string]string{
		domain.LabelOwner: r.cfg.InstallationID, domain.LabelID: c.ID, domain.LabelName: c.Name, domain.LabelType: c.Type,
		domain.LabelReplica: strconv.Itoa(i), domain.LabelProject: c.Project,
	}
}
