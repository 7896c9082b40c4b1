package reconciler

import (
	"slices"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// inStack makes c the container of service in stack shop, waiting for deps.
func inStack(service string, deps ...domain.Dependency) func(*domain.Container) {
	return func(c *domain.Container) {
		c.ID, c.Name, c.Stack, c.StackService, c.DependsOn = "id-shop-"+service, "shop-"+service, "shop", service, deps
	}
}

func withHealth(c *domain.Container) {
	c.Spec.Health = &domain.HealthSpec{Test: []string{"CMD", "/app", "-check"}}
}

// setHealth records every replica's health, as the watcher would.
func (h *harness) setHealth(id, health string) {
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	c := h.st.containers[id]
	for i := range c.Instances {
		c.Instances[i].Health = health
	}
	h.st.containers[id] = c
}

func (h *harness) expectWaiting(id, reason string) {
	h.t.Helper()
	c := h.container(id)
	if c.Status != domain.StatusPending || c.StatusReason != reason || h.eng.total(id) != 0 {
		h.t.Fatalf("%s: status %s (%s), %d instances; want pending (%s), none", c.Name, c.Status, c.StatusReason, h.eng.total(id), reason)
	}
}

// TestDependsOnHealthy: a service waits, pending with the reason, until the
// service it depends on exists, runs and passes its health check; each pass
// looks again (level-triggered), and a reason is an event once, not once a
// pass. Once started, a dependency's later state does not stop it.
func TestDependsOnHealthy(t *testing.T) {
	h := newHarness(t, nil)
	web := newContainer("web", inStack("web", domain.Dependency{Service: "db", Condition: domain.DependsHealthy}))
	h.st.put(web)
	h.reconcile(web.ID)
	h.expectWaiting(web.ID, "waiting for db to be created")
	h.reconcile(web.ID)
	h.expectWaiting(web.ID, "waiting for db to be created")

	db := h.deploy(newContainer("db", inStack("db"), withHealth))
	h.reconcile(web.ID)
	h.expectWaiting(web.ID, "waiting for db to be healthy")
	h.setHealth(db.ID, "starting")
	h.reconcile(web.ID)
	h.expectWaiting(web.ID, "waiting for db to be healthy")
	if _, ok := h.r.waiting.Load(web.ID); !ok {
		t.Error("no later look scheduled for a waiting container")
	}

	h.setHealth(db.ID, "healthy")
	h.settle(web.ID)
	checkRunning(t, h, web.ID, 1)
	waits := 0
	for _, k := range h.st.kinds(web.ID) {
		if k == "container.waiting" {
			waits++
		}
	}
	if waits != 2 {
		t.Errorf("%d waiting events (%v), want one per reason", waits, h.st.kinds(web.ID))
	}
	// Running: an unhealthy dependency does not stop it, nor its restart.
	h.setHealth(db.ID, "unhealthy")
	h.reconcile(web.ID)
	checkRunning(t, h, web.ID, 1)
}

// TestDependsOnConditions: service_started waits for running only;
// service_completed_successfully for a run that exited 0 (moor left it
// stopped); a failed run keeps its dependents waiting, saying so.
func TestDependsOnConditions(t *testing.T) {
	h := newHarness(t, nil)
	h.deploy(newContainer("cache", inStack("cache"), withHealth)) // not healthy yet: started is enough
	migrate := newContainer("migrate", inStack("migrate"), func(c *domain.Container) {
		c.Status, c.DesiredState, c.StatusCause = domain.StatusFailed, domain.DesiredStopped, domain.CauseStoppedOutside
	})
	h.st.put(migrate)
	web := newContainer("web", inStack("web",
		domain.Dependency{Service: "cache", Condition: domain.DependsStarted},
		domain.Dependency{Service: "migrate", Condition: domain.DependsCompleted}))
	h.st.put(web)
	h.reconcile(web.ID)
	h.expectWaiting(web.ID, "waiting for migrate to complete successfully (migrate is failed)")
	h.st.change(migrate.ID, func(c *domain.Container) { c.Status = domain.StatusStopped }, "container.stopped_outside")
	h.settle(web.ID)
	checkRunning(t, h, web.ID, 1)
}

// TestStackAliases: a stack's container answers to its bare service name on
// its project's network; a container deployed alone never gets a bare name.
func TestStackAliases(t *testing.T) {
	h := newHarness(t, nil)
	plain := newContainer("db", func(c *domain.Container) { c.Project = "p" })
	svc := newContainer("db", inStack("db"), func(c *domain.Container) { c.Project = "p" })
	if got := h.r.aliases(plain, 0); slices.ContainsFunc(got, func(a string) bool { return !strings.Contains(a, ".") }) {
		t.Errorf("a plain container's aliases %v hold a bare name", got)
	}
	if got := h.r.aliases(svc, 1); !slices.Contains(got, "db") || !slices.Contains(got, "shop-db.p.moor.internal") {
		t.Errorf("a stack container's aliases %v", got)
	}
}

// TestReplaceMakesNewVolumes: a new definition that mounts a new volume
// (a stack update) has it made before the replica is replaced.
func TestReplaceMakesNewVolumes(t *testing.T) {
	h := newHarness(t, nil)
	c := h.deploy(newContainer("web", inStack("web")))
	h.st.change(c.ID, func(c *domain.Container) {
		c.Spec.Volumes = append(c.Spec.Volumes, domain.VolumeSpec{Name: "logs", Path: "/logs"})
		c.ConfigVersion = max(c.ConfigVersion, 1) + 1
	}, "container.update_requested")
	h.settle(c.ID)
	checkRunning(t, h, c.ID, 1)
	if _, ok := h.eng.volumes[domain.VolumeName(c.Project, c.Name, "logs", 0)]; !ok {
		t.Errorf("volumes %v: the new one is missing", h.eng.volumes)
	}
}
