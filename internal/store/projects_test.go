package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

func inProject(n int, project, name string, hosts ...string) domain.NewContainer {
	return domain.NewContainer{ID: fmt.Sprintf("7a2c1b8e-0000-4000-8000-%012d", n), Project: project, Name: name, Type: "t", Image: "i",
		Replicas: 1, Spec: domain.Type{ID: "t"}, Hosts: hosts}
}

// TestProjects: names are unique within a project, not across; a project
// with containers cannot go, and the refusal names them; history and events
// keep each project's container apart.
func TestProjects(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := s.ListProjects(ctx)
	if err != nil || len(ps) != 1 || ps[0].Name != domain.DefaultProject {
		t.Fatalf("a new installation's projects: %+v %v", ps, err)
	}
	five := 5
	p, err := s.CreateProject(ctx, domain.NewProject{Name: "shop", Internal: true, MaxContainers: &five}, "user:ann")
	if err != nil || p.Name != "shop" || !p.Internal || *p.MaxContainers != 5 || p.CreatedBy != "user:ann" {
		t.Fatalf("create: %+v %v", p, err)
	}
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "shop"}, "x"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a second project shop: %v", err)
	}
	if _, err := s.CreateContainer(ctx, inProject(1, "", "web"), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, inProject(2, "shop", "web"), "t"); err != nil {
		t.Fatalf("the same name in another project: %v", err)
	}
	if _, err := s.CreateContainer(ctx, inProject(3, "shop", "web"), "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("the same name twice in a project: %v", err)
	}
	if _, err := s.CreateContainer(ctx, inProject(4, "nosuch", "web"), "t"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a container in no project: %v", err)
	}
	c, err := s.GetContainer(ctx, domain.ContainerRef{Project: "shop", Name: "web"})
	if err != nil || c.ID != inProject(2, "", "").ID || c.Project != "shop" || !c.ProjectInternal {
		t.Fatalf("get shop/web: %+v %v", c, err)
	}
	if cs, err := s.ProjectContainers(ctx, "shop"); err != nil || len(cs) != 1 || cs[0].Project != "shop" {
		t.Fatalf("shop's containers: %+v %v", cs, err)
	}
	if cs, err := s.ListContainers(ctx); err != nil || len(cs) != 2 {
		t.Fatalf("every container: %d %v", len(cs), err)
	}
	if _, err := s.ChangeContainer(ctx, domain.ContainerRef{Project: "shop", Name: "web"}, domain.Change{Action: domain.ActionStop}, "t"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetContainer(ctx, domain.Ref("web")); d.DesiredState != domain.DesiredRunning {
		t.Fatalf("stopping shop/web stopped default/web")
	}
	h, err := s.History(ctx, domain.ContainerRef{Project: "shop", Name: "web"}, true)
	if err != nil || len(h) != 2 || h[1].Action != "stop_requested" || h[0].Project != "shop" {
		t.Fatalf("shop/web's history: %+v %v", h, err)
	}
	if h, _ := s.History(ctx, domain.Ref("web"), true); len(h) != 1 {
		t.Fatalf("default/web's history mixes in shop/web's: %+v", h)
	}
	evs, err := s.QueryEvents(ctx, domain.EventQuery{Limit: 100, Project: "shop"})
	if err != nil || len(evs) != 3 || evs[0].Kind != "project.created" || evs[2].Container != "web" {
		t.Fatalf("shop's events: %+v %v", evs, err)
	}
	p, _ = s.GetProject(ctx, "shop")
	if p.Containers != 1 {
		t.Fatalf("shop counts %d containers", p.Containers)
	}

	err = s.DeleteProject(ctx, "shop", "t")
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("delete a project with containers: %v", err)
	}
	if err := s.DeleteProject(ctx, domain.DefaultProject, "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("delete the default project: %v", err)
	}
	if err := s.DeleteProject(ctx, "nosuch", "t"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("delete no project: %v", err)
	}
	// Being removed still counts: its network holds it until it is gone.
	if _, err := s.ChangeContainer(ctx, domain.ContainerRef{Project: "shop", Name: "web"}, domain.Change{Action: domain.ActionRemove}, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, "shop", "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("delete a project whose container is being removed: %v", err)
	}
	if err := s.FinishRemoval(ctx, c.ID, "web", nil); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.History(ctx, domain.ContainerRef{Project: "shop", Name: "web"}, false); len(h) != 4 || h[3].Action != "removed" || h[3].Project != "shop" {
		t.Fatalf("history after removal: %+v", h)
	}
	if err := s.DeleteProject(ctx, "shop", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetProject(ctx, "shop"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deleted project: %v", err)
	}
}

// TestHostNamesClaimedOnce: a host name (a container's own or an alias) is
// held by one container; the second claim is a 409 naming the holder, also
// when many race, and a removal frees it.
func TestHostNamesClaimedOnce(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "b"}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, inProject(1, "", "a-b", "a-b.moor.localhost"), "t"); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateContainer(ctx, inProject(2, "b", "a", "a-b.moor.localhost"), "t")
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), `container "a-b"`) {
		t.Fatalf("a-b.moor.localhost claimed twice: %v", err)
	}
	if cs, _ := s.ProjectContainers(ctx, "b"); len(cs) != 0 {
		t.Fatalf("the refused container was recorded: %+v", cs)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.CreateContainer(ctx, inProject(10+i, "b", fmt.Sprintf("c%d", i), fmt.Sprintf("c%d-b.moor.localhost", i), "shared.example.com"), "t")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrConflict):
			t.Errorf("racing claim: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d containers hold shared.example.com", won)
	}
	c, _ := s.GetContainer(ctx, domain.Ref("a-b"))
	if _, err := s.ChangeContainer(ctx, domain.Ref("a-b"), domain.Change{Action: domain.ActionRemove}, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRemoval(ctx, c.ID, "a-b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, inProject(2, "b", "a", "a-b.moor.localhost"), "t"); err != nil {
		t.Fatalf("a host name freed by a removal: %v", err)
	}
}

// TestMigration0011WithData: an installation from before projects keeps
// its containers, history and events in the default project (names and
// ids unchanged); down folds back while only the default project has
// containers, and refuses, naming them, while others have.
func TestMigration0011WithData(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	since11 := migrationsSince(t, 11)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateDown(ctx, since11); err != nil {
		t.Fatal(err)
	}
	// Rows as 0010 wrote them.
	id := inProject(1, "", "").ID
	for _, q := range []string{
		`INSERT INTO containers (id, name, type_id, image, spec, desired_state, status, created_by) VALUES ('` + id + `', 'blog', 't', 'i', '{}', 'running', 'running', 'u')`,
		`INSERT INTO deployment_history (container_id, container_name, action, actor) VALUES ('` + id + `', 'blog', 'created', 'u')`,
		`INSERT INTO events (seq, kind, container_id, container_name, actor) VALUES (1, 'container.created', '` + id + `', 'blog', 'u'), (2, 'apikey.created', NULL, '', 'u')`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetContainer(ctx, domain.Ref("blog"))
	if err != nil || c.ID != id || c.Project != domain.DefaultProject {
		t.Fatalf("after up: %+v %v", c, err)
	}
	if h, err := s.History(ctx, domain.Ref("blog"), false); err != nil || len(h) != 1 || h[0].Project != domain.DefaultProject {
		t.Fatalf("history after up: %+v %v", h, err)
	}
	evs, _ := s.QueryEvents(ctx, domain.EventQuery{Limit: 10})
	if len(evs) != 2 || evs[0].Project != domain.DefaultProject || evs[1].Project != "" {
		t.Fatalf("events after up: %+v", evs)
	}
	// Host names of containers from before are claimed at start.
	lost, err := s.ClaimMissingHosts(ctx, func(c domain.Container) []string { return []string{c.Name + ".moor.localhost"} })
	if err != nil || len(lost) != 0 {
		t.Fatalf("claim: %v %v", lost, err)
	}
	if _, err := s.CreateContainer(ctx, inProject(2, "", "other", "blog.moor.localhost"), "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("blog's host name after the claim: %v", err)
	}

	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "shop"}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, inProject(3, "shop", "blog"), "t"); err != nil {
		t.Fatal(err)
	}
	_, err = s.MigrateDown(ctx, since11)
	if err == nil || !strings.Contains(err.Error(), "shop/blog") {
		t.Fatalf("down with a container in another project: %v", err)
	}
	if c, err := s.GetContainer(ctx, domain.ContainerRef{Project: "shop", Name: "blog"}); err != nil || c.Project != "shop" {
		t.Fatalf("a refused down changed something: %+v %v", c, err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM containers WHERE project = 'shop'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateDown(ctx, since11); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := s.pool.QueryRow(ctx, `SELECT name FROM containers WHERE id = $1`, id).Scan(&name); err != nil || name != "blog" {
		t.Fatalf("after down: %q %v", name, err)
	}
	// shop/blog's history stays, under a name that mixes with no one's.
	var names []string
	rows, _ := s.pool.Query(ctx, `SELECT container_name FROM deployment_history ORDER BY id`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	if strings.Join(names, ",") != "blog,blog.shop" {
		t.Fatalf("history after down: %v", names)
	}
	if tables(t, s)["projects"] || tables(t, s)["host_names"] {
		t.Fatal("projects or host_names after down")
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

func sized(n int, project, name string, memoryMB int64, cpus float64, replicas int) domain.NewContainer {
	nc := inProject(n, project, name)
	nc.Spec.Resources = domain.ResourceSpec{MemoryMB: memoryMB, CPUs: cpus}
	nc.Replicas = replicas
	return nc
}

// TestQuotas: creates, scales and updates beyond a project's quotas are
// refused naming the quota and the use; 20 creates at once against a quota
// of 5 leave exactly 5.
func TestQuotas(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	five := 5
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "q", MaxContainers: &five}, "t"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.CreateContainer(ctx, inProject(100+i, "q", fmt.Sprintf("c%d", i)), "t") })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "max_containers") || !strings.Contains(err.Error(), "5 containers in use"):
			t.Errorf("refusal: %v", err)
		}
	}
	if cs, _ := s.ProjectContainers(ctx, "q"); created != 5 || len(cs) != 5 {
		t.Fatalf("20 creates against a quota of 5: %d created, %d recorded", created, len(cs))
	}
	// Other projects are not held by q's quota.
	if _, err := s.CreateContainer(ctx, inProject(200, "", "free"), "t"); err != nil {
		t.Fatal(err)
	}
	// A container being removed frees its place.
	if _, err := s.ChangeContainer(ctx, domain.ContainerRef{Project: "q", Name: "c0"}, domain.Change{Action: domain.ActionRemove}, "t"); err != nil && !errors.Is(err, domain.ErrNotFound) {
		t.Fatal(err)
	}

	mem, cpus := int64(1024), 2.0
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "m", MaxMemoryMB: &mem, MaxCPUs: &cpus}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, sized(1, "m", "a", 256, 0.5, 2), "t"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.GetProject(ctx, "m"); err != nil || p.MemoryMB != 512 || p.CPUs != 1 || p.Containers != 1 {
		t.Fatalf("m's use: %+v %v", p, err)
	}
	_, err := s.CreateContainer(ctx, sized(2, "m", "b", 256, 0.25, 3), "t")
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "max_memory_mb of project \"m\" is 1024, 512 MB in use, this needs 768 MB more") {
		t.Fatalf("over the memory quota: %v", err)
	}
	if _, err := s.CreateContainer(ctx, sized(3, "m", "c", 0, 0.25, 1), "t"); !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "no memory limit") {
		t.Fatalf("no memory limit under a memory quota: %v", err)
	}
	if _, err := s.CreateContainer(ctx, sized(4, "m", "d", 1, 1.5, 1), "t"); !errors.Is(err, domain.ErrInvalid) ||
		!strings.Contains(err.Error(), "max_cpus of project \"m\" is 2, 1 CPUs in use, this needs 1.5 CPUs more") {
		t.Fatalf("over the CPU quota: %v", err)
	}
	// A scale counts the container's new size in place of its old one.
	if _, err := s.ChangeContainer(ctx, domain.ContainerRef{Project: "m", Name: "a"}, domain.Change{Action: domain.ActionScale, Replicas: 5}, "t"); !errors.Is(err, domain.ErrInvalid) ||
		!strings.Contains(err.Error(), "0 MB in use, this needs 1280 MB more") {
		t.Fatalf("scale over the memory quota: %v", err)
	}
	if _, err := s.ChangeContainer(ctx, domain.ContainerRef{Project: "m", Name: "a"}, domain.Change{Action: domain.ActionScale, Replicas: 4}, "t"); err != nil {
		t.Fatalf("scale within the quotas (4 x 256 MB, 4 x 0.5 CPUs): %v", err)
	}
	// Lowered below the use: nothing goes, growth is held off, shrinking
	// is not.
	low := int64(512)
	p, err := s.UpdateProject(ctx, "m", domain.ProjectPatch{MaxMemoryMB: domain.Quota[int64]{Set: true, Value: &low}}, "t")
	if err != nil || *p.MaxMemoryMB != 512 || *p.MaxCPUs != 2 {
		t.Fatalf("update: %+v %v", p, err)
	}
	if _, err := s.ChangeContainer(ctx, domain.ContainerRef{Project: "m", Name: "a"}, domain.Change{Action: domain.ActionScale, Replicas: 1}, "t"); err != nil {
		t.Fatalf("scale down under a lowered quota: %v", err)
	}
	if p, err = s.UpdateProject(ctx, "m", domain.ProjectPatch{MaxMemoryMB: domain.Quota[int64]{Set: true}}, "t"); err != nil || p.MaxMemoryMB != nil {
		t.Fatalf("remove the memory quota: %+v %v", p, err)
	}
}

// TestMigration0014WithData: roles per project come and go without anyone
// gaining access: down revokes keys limited to a project and refuses while
// a user has no instance-wide role, naming the user.
func TestMigration0014WithData(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "shop"}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProjectKey(ctx, "ci", domain.RoleOperator, "shop", []byte("hash-ci")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAPIKey(ctx, "ops", domain.RoleViewer, []byte("hash-ops")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMember(ctx, "shop", domain.MemberRequest{Kind: "apikey", Name: "ops"}, domain.RoleAdmin, "t"); err != nil {
		t.Fatal(err)
	}
	a, err := s.ActorByKeyHash(ctx, []byte("hash-ci"))
	if err != nil || a.Role != "" || a.Project != "shop" || a.RoleIn("shop") != domain.RoleOperator || a.RoleIn("default") != "" {
		t.Fatalf("the limited key: %+v %v", a, err)
	}
	a, err = s.ActorByKeyHash(ctx, []byte("hash-ops"))
	if err != nil || a.Role != domain.RoleViewer || a.RoleIn("shop") != domain.RoleAdmin || a.RoleIn("default") != domain.RoleViewer {
		t.Fatalf("the member key: %+v %v", a, err)
	}
	if _, err := s.AddUser(ctx, "ann", "x", domain.RoleNone); err != nil {
		t.Fatal(err)
	}
	since14 := migrationsSince(t, 14)
	if _, err := s.MigrateDown(ctx, since14); err == nil || !strings.Contains(err.Error(), "ann") {
		t.Fatalf("down with a user without an instance-wide role: %v", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM users WHERE username = 'ann'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateDown(ctx, since14); err != nil {
		t.Fatal(err)
	}
	if tables(t, s)["memberships"] {
		t.Fatal("memberships after down")
	}
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = NULL`); err != nil {
		t.Fatal(err)
	}
	// After down, the limited key would reach everything: it is revoked.
	var revoked bool
	if err := s.pool.QueryRow(ctx, `SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = 'ci'`).Scan(&revoked); err != nil || !revoked {
		t.Fatalf("the limited key after down: revoked %v (%v)", revoked, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if a, err := s.ActorByKeyHash(ctx, []byte("hash-ops")); err != nil || a.Role != domain.RoleViewer || len(a.Projects) != 0 {
		t.Fatalf("the member key after down and up: %+v %v", a, err)
	}
	if _, err := s.ActorByKeyHash(ctx, []byte("hash-ci")); !errors.Is(err, domain.ErrUnauthorized) {
		t.Fatalf("the revoked key after up: %v", err)
	}
}
