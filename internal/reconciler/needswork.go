package reconciler

import "github.com/moorhq/moor/internal/domain"

// NeedsWork reports whether a container's record and its Docker containers
// disagree. timer passes also retry failed containers.
func NeedsWork(c domain.Container, states []domain.InstanceState, timer bool) bool {
	if c.ObservedGeneration < c.Generation || c.Status == domain.StatusPending || c.Status == domain.StatusCreating {
		return true
	}
	switch c.DesiredState {
	case domain.DesiredRemoved:
		return true
	case domain.DesiredStopped:
		for _, st := range states {
			if st.Running {
				return true
			}
		}
		return len(states) > c.Replicas
	}
	if c.Status == domain.StatusFailed {
		return timer
	}
	for _, st := range states {
		if outdated(c, st) {
			return true
		}
	}
	byReplica, extra := splitReplicas(states, c.Replicas)
	if len(extra) > 0 || len(byReplica) != c.Replicas {
		return true
	}
	for _, in := range c.Instances {
		st, ok := byReplica[in.Index]
		if !ok || !st.Running || st.RuntimeID != in.RuntimeID {
			return true
		}
	}
	return len(c.Instances) != c.Replicas
}
