package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// dependencyPoll is how soon a container waiting for its dependencies is
// looked at again.
const dependencyPoll = time.Second

// waitForDependencies keeps a stack's container from starting before the
// services it depends on are started, healthy or completed (compose's
// depends_on conditions). It reports whether c waits: then c is recorded
// pending with what it waits for, and looked at again soon (level-
// triggered: each pass looks afresh). A container with a replica running
// already does not wait: a dependency's later state does not stop it.
func (r *Reconciler) waitForDependencies(ctx context.Context, c domain.Container, states []domain.InstanceState) (bool, error) {
	if len(c.DependsOn) == 0 || c.Stack == "" {
		return false, nil
	}
	for _, st := range states {
		if st.Running {
			return false, nil
		}
	}
	reason := ""
	for _, d := range c.DependsOn {
		dep, err := r.store.GetContainer(ctx, domain.ContainerRef{Project: c.Project, Name: domain.StackContainer(c.Stack, d.Service)})
		switch {
		case errors.Is(err, domain.ErrNotFound):
			reason = fmt.Sprintf("waiting for %s to be created", d.Service)
		case err != nil:
			return false, err
		default:
			reason = notReady(d, dep)
		}
		if reason != "" {
			break
		}
	}
	if reason == "" {
		return false, nil
	}
	if c.Status != domain.StatusPending || c.StatusReason != reason {
		if err := r.store.RecordObservation(ctx, domain.Observation{
			ID: c.ID, Name: c.Name, Status: domain.StatusPending, Reason: reason, Instances: c.Instances,
			Event: "waiting", Data: map[string]any{"reason": reason},
		}); err != nil {
			return true, err
		}
	}
	if _, dup := r.waiting.LoadOrStore(c.ID, struct{}{}); !dup {
		time.AfterFunc(dependencyPoll, func() {
			r.waiting.Delete(c.ID)
			r.after(c.ID, 0)
		})
	}
	return true, nil
}

// notReady says what a dependent waits for in dep, "" if nothing.
func notReady(d domain.Dependency, dep domain.Container) string {
	state := ""
	if dep.Status != domain.StatusRunning && dep.Status != "" {
		state = fmt.Sprintf(" (%s is %s)", d.Service, dep.Status)
	}
	switch d.Condition {
	case domain.DependsCompleted:
		// It ran and exited 0, and moor left it stopped (its restart
		// policy): exited with another code, it is failed.
		if dep.Status == domain.StatusStopped && dep.StatusCause == domain.CauseStoppedOutside {
			return ""
		}
		if dep.Status == domain.StatusRunning {
			state = ""
		}
		return fmt.Sprintf("waiting for %s to complete successfully%s", d.Service, state)
	case domain.DependsHealthy:
		if dep.Status == domain.StatusRunning && healthy(dep) {
			return ""
		}
		return fmt.Sprintf("waiting for %s to be healthy%s", d.Service, state)
	default:
		if dep.Status == domain.StatusRunning || dep.Replicas == 0 {
			return ""
		}
		return fmt.Sprintf("waiting for %s to be started%s", d.Service, state)
	}
}

// healthy reports whether every replica of c passes its health check:
// the one the container has, or its image's. One with no check at all is
// healthy once running (compose would refuse the condition; moor does not
// know the image's checks before it runs).
func healthy(c domain.Container) bool {
	checked := c.Spec.Health != nil && !(len(c.Spec.Health.Test) > 0 && c.Spec.Health.Test[0] == "NONE")
	for _, in := range c.Instances {
		if in.Health != "healthy" && (in.Health != "" || checked) {
			return false
		}
	}
	return true
}
