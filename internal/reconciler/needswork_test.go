package reconciler

import (
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

func st(id string, replica string, running bool) domain.InstanceState {
	return domain.InstanceState{RuntimeID: id, Running: running, Labels: map[string]string{domain.LabelReplica: replica}}
}

func TestNeedsWork(t *testing.T) {
	settled := func(mut func(*domain.Container)) domain.Container {
		c := domain.Container{
			Status: domain.StatusRunning, DesiredState: domain.DesiredRunning, Replicas: 2,
			Generation: 3, ObservedGeneration: 3,
			Instances: []domain.Instance{{Index: 0, RuntimeID: "a", Status: domain.StatusRunning}, {Index: 1, RuntimeID: "b", Status: domain.StatusRunning}},
		}
		if mut != nil {
			mut(&c)
		}
		return c
	}
	both := []domain.InstanceState{st("a", "0", true), st("b", "1", true)}
	cases := []struct {
		name   string
		c      domain.Container
		states []domain.InstanceState
		timer  bool
		want   bool
	}{
		{"settled", settled(nil), both, false, false},
		{"settled on timer", settled(nil), both, true, false},
		{"new generation", settled(func(c *domain.Container) { c.Generation = 4 }), both, false, true},
		{"pending", settled(func(c *domain.Container) { c.Status = domain.StatusPending }), both, false, true},
		{"creating", settled(func(c *domain.Container) { c.Status = domain.StatusCreating }), both, false, true},
		{"replica stopped behind back", settled(nil), []domain.InstanceState{st("a", "0", true), st("b", "1", false)}, false, true},
		{"replica removed behind back", settled(nil), []domain.InstanceState{st("a", "0", true)}, false, true},
		{"replica replaced behind back", settled(nil), []domain.InstanceState{st("a", "0", true), st("x", "1", true)}, false, true},
		{"extra replica", settled(nil), append(both, st("c", "2", true)), false, true},
		{"duplicate replica", settled(nil), append(both, st("c", "1", true)), false, true},
		{"unlabelled", settled(nil), append(both, domain.InstanceState{RuntimeID: "z", Labels: map[string]string{}}), false, true},
		{"removal pending", settled(func(c *domain.Container) { c.DesiredState = domain.DesiredRemoved }), nil, false, true},
		{"stopped and stopped", settled(func(c *domain.Container) { c.DesiredState = domain.DesiredStopped; c.Status = domain.StatusStopped }),
			[]domain.InstanceState{st("a", "0", false), st("b", "1", false)}, false, false},
		{"stopped but running", settled(func(c *domain.Container) { c.DesiredState = domain.DesiredStopped; c.Status = domain.StatusStopped }),
			[]domain.InstanceState{st("a", "0", true), st("b", "1", false)}, false, true},
		{"failed waits for timer", settled(func(c *domain.Container) { c.Status = domain.StatusFailed }), nil, false, false},
		{"failed retried on timer", settled(func(c *domain.Container) { c.Status = domain.StatusFailed }), nil, true, true},
		{"scaled to zero", settled(func(c *domain.Container) { c.Replicas = 0; c.Instances = nil }), nil, false, false},
	}
	for _, tc := range cases {
		if got := NeedsWork(tc.c, tc.states, tc.timer); got != tc.want {
			t.Errorf("%s: NeedsWork = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSplitReplicas(t *testing.T) {
	by, extra := splitReplicas([]domain.InstanceState{st("a", "0", true), st("b", "1", true), st("c", "1", true), st("d", "5", true), st("e", "x", true)}, 2)
	if len(by) != 2 || by[0].RuntimeID != "a" || by[1].RuntimeID != "b" {
		t.Fatalf("byReplica %v", by)
	}
	if len(extra) != 3 {
		t.Fatalf("extra %v", extra)
	}
}
