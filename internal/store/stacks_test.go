package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// stackOf is stack name's containers, one per service, hashed "h1".
func stackOf(n int, project, name string, services ...string) domain.NewStack {
	ns := domain.NewStack{Project: project, Name: name, Compose: "services: {}"}
	for i, svc := range services {
		nc := inProject(n+i, project, domain.StackContainer(name, svc))
		nc.Stack, nc.StackService, nc.DefinitionHash = name, svc, "h1"
		ns.Containers = append(ns.Containers, nc)
	}
	return ns
}

func services(st domain.Stack) string {
	var out []string
	for _, s := range st.Services {
		out = append(out, fmt.Sprintf("%s:%s:%s:%d", s.Name, s.DesiredState, s.Hash, s.Replicas))
	}
	return strings.Join(out, " ")
}

// TestStacks: a stack and its containers are recorded all or none; an
// update replaces changed services only, adds and removes; a delete marks
// every container removed and the stack goes with the last one.
func TestStacks(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "p"}, "t"); err != nil {
		t.Fatal(err)
	}
	// A name clash in the middle rolls everything back.
	if _, err := s.CreateContainer(ctx, inProject(100, "p", "shop-web"), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateStack(ctx, stackOf(1, "p", "shop", "db", "web"), "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a stack whose container's name is taken: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM containers WHERE stack IS NOT NULL`) + count(t, s, `SELECT count(*) FROM stacks`); n != 0 {
		t.Fatalf("a refused stack left %d rows", n)
	}
	// A host name clash too.
	ns := stackOf(1, "p", "shop", "db", "api")
	ns.Containers[1].Hosts = []string{"taken.moor.localhost"}
	if _, err := s.CreateContainer(ctx, inProject(101, "p", "other", "taken.moor.localhost"), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateStack(ctx, ns, "t"); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "other") {
		t.Fatalf("a stack with a taken host name: %v", err)
	}
	// A host port clash too.
	if _, err := s.CreateContainer(ctx, publishing(102, "pub", bind("127.0.0.1", 18080, "tcp")), "t"); err != nil {
		t.Fatal(err)
	}
	ns = stackOf(1, "p", "shop", "db", "api")
	ns.Containers[1].Published = []domain.PublishedPort{bind("127.0.0.1", 18080, "tcp")}
	if _, err := s.CreateStack(ctx, ns, "t"); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "pub") {
		t.Fatalf("a stack with a taken host port: %v", err)
	}
	if n := count(t, s, `SELECT count(*) FROM containers WHERE stack IS NOT NULL`) + count(t, s, `SELECT count(*) FROM stacks`); n != 0 {
		t.Fatalf("a refused stack left %d rows", n)
	}
	// A quota: the project holds three containers at most, two taken.
	three := 3
	if _, err := s.UpdateProject(ctx, "p", domain.ProjectPatch{MaxContainers: domain.Quota[int]{Set: true, Value: &three}}, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateStack(ctx, stackOf(1, "p", "shop", "db", "api"), "t"); !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "services.api") || !strings.Contains(err.Error(), "max_containers") {
		t.Fatalf("a stack over the project's quota: %v", err)
	}
	if _, err := s.UpdateProject(ctx, "p", domain.ProjectPatch{MaxContainers: domain.Quota[int]{Set: true}}, "t"); err != nil {
		t.Fatal(err)
	}
	st, err := s.CreateStack(ctx, stackOf(1, "p", "shop", "db", "api"), "user:ann")
	if err != nil || services(st) != "api:running:h1:1 db:running:h1:1" || st.CreatedBy != "user:ann" || len(st.Containers) != 2 {
		t.Fatalf("create: %s %+v %v", services(st), st, err)
	}
	c := st.Containers[1]
	if c.Stack != "shop" || c.StackService != "db" || c.DefinitionHash != "h1" {
		t.Fatalf("a stack's container: %+v", c)
	}
	if _, err := s.CreateStack(ctx, stackOf(10, "p", "shop", "x"), "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stack shop twice: %v", err)
	}
	// A service name is held once per project.
	if _, err := s.CreateStack(ctx, stackOf(10, "p", "blog", "db"), "t"); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "services.db") {
		t.Fatalf("a second stack with service db: %v", err)
	}
	if _, err := s.CreateStack(ctx, stackOf(10, domain.DefaultProject, "blog", "db"), "t"); err != nil {
		t.Fatalf("service db in another project: %v", err)
	}

	// Update: db changed, api unchanged but scaled, cache new, nothing gone.
	u := stackOf(20, "p", "shop", "api", "db", "cache")
	u.Containers[0].ID, u.Containers[0].Replicas = st.Containers[0].ID, 2
	u.Containers[1].ID, u.Containers[1].DefinitionHash, u.Containers[1].Image = st.Containers[1].ID, "h2", "i:2"
	u.Containers[1].DependsOn = []domain.Dependency{{Service: "cache", Condition: domain.DependsHealthy}}
	st2, err := s.UpdateStack(ctx, "p", "shop", domain.StackUpdate{Compose: "new", Containers: u.Containers}, "t")
	if err != nil || services(st2) != "api:running:h1:2 cache:running:h1:1 db:running:h2:1" {
		t.Fatalf("update: %s %v", services(st2), err)
	}
	db, _ := s.GetContainer(ctx, domain.ContainerRef{Project: "p", Name: "shop-db"})
	api, _ := s.GetContainer(ctx, domain.ContainerRef{Project: "p", Name: "shop-api"})
	if db.ConfigVersion != c.ConfigVersion+1 || db.Image != "i:2" || len(db.DependsOn) != 1 || db.DependsOn[0].Service != "cache" {
		t.Errorf("db after a new definition: %+v", db)
	}
	if api.ConfigVersion != st.Containers[0].ConfigVersion || api.Generation != st.Containers[0].Generation+1 {
		t.Errorf("api, unchanged but scaled: config %d generation %d", api.ConfigVersion, api.Generation)
	}
	if st2.Compose != "new" {
		t.Errorf("compose %q", st2.Compose)
	}
	// An id that is not the service's container's: changed meanwhile.
	u2 := stackOf(30, "p", "shop", "api")
	if _, err := s.UpdateStack(ctx, "p", "shop", domain.StackUpdate{Compose: "x", Containers: u2.Containers}, "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("an update made on stale ids: %v", err)
	}
	// Services gone from the file are removed, volumes kept unless asked.
	u3 := stackOf(40, "p", "shop", "api")
	u3.Containers[0].ID, u3.Containers[0].Replicas = api.ID, 2
	st3, err := s.UpdateStack(ctx, "p", "shop", domain.StackUpdate{Compose: "x", Containers: u3.Containers, RemoveVolumes: true}, "t")
	if err != nil || services(st3) != "api:running:h1:2 cache:removed:h1:1 db:removed:h2:1" {
		t.Fatalf("update removing: %s %v", services(st3), err)
	}
	if db, _ := s.GetContainer(ctx, domain.ContainerRef{Project: "p", Name: "shop-db"}); db.KeepVolumes {
		t.Error("remove_volumes kept db's volumes")
	}

	// Delete: every container removed; the stack goes with the last.
	st4, err := s.DeleteStack(ctx, "p", "shop", true, "t")
	if err != nil || !st4.Removing || services(st4) != "api:removed:h1:2 cache:removed:h1:1 db:removed:h2:1" {
		t.Fatalf("delete: %s %v", services(st4), err)
	}
	if _, err := s.UpdateStack(ctx, "p", "shop", domain.StackUpdate{Compose: "x"}, "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("update of a stack being removed: %v", err)
	}
	for i, c := range st4.Containers {
		if err := s.FinishRemoval(ctx, c.ID, c.Name, nil); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetStack(ctx, "p", "shop")
		if last := i == len(st4.Containers)-1; last != errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("after %d of %d removals: %v", i+1, len(st4.Containers), err)
		}
	}
	// A stack without containers goes at once.
	if _, err := s.pool.Exec(ctx, `INSERT INTO stacks (project, name, compose, created_by) VALUES ('p', 'empty', '', 't')`); err != nil {
		t.Fatal(err)
	}
	if st, err := s.DeleteStack(ctx, "p", "empty", false, "t"); err != nil || !st.Removing {
		t.Fatalf("delete an empty stack: %+v %v", st, err)
	}
	if sts, err := s.ListStacks(ctx, "p"); err != nil || len(sts) != 0 {
		t.Fatalf("p's stacks: %+v %v", sts, err)
	}
	if sts, err := s.ListStacks(ctx, domain.DefaultProject); err != nil || len(sts) != 1 || services(sts[0]) != "db:running:h1:1" {
		t.Fatalf("default's stacks: %+v %v", sts, err)
	}
}

func count(t *testing.T, s *Store, q string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigration0012WithData: up keeps every container (deployed alone);
// down keeps a stack's containers as containers deployed alone.
func TestMigration0012WithData(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	since12 := migrationsSince(t, 12)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateDown(ctx, since12); err != nil {
		t.Fatal(err)
	}
	id := inProject(1, "", "").ID
	if _, err := s.pool.Exec(ctx, `INSERT INTO containers (id, name, type_id, image, spec, desired_state, status, created_by)
		VALUES ('`+id+`', 'blog', 't', 'i', '{}', 'running', 'running', 'u')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetContainer(ctx, domain.Ref("blog"))
	if err != nil || c.Stack != "" {
		t.Fatalf("after up: %+v %v", c, err)
	}
	if _, err := s.CreateStack(ctx, stackOf(2, domain.DefaultProject, "shop", "db"), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE containers SET stack = NULL WHERE name = 'shop-db'`); err == nil {
		t.Fatal("a container with a service and no stack")
	}
	if _, err := s.MigrateDown(ctx, since12); err != nil {
		t.Fatal(err)
	}
	var names []string
	rows, _ := s.pool.Query(ctx, `SELECT name FROM containers ORDER BY name`)
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	if strings.Join(names, ",") != "blog,shop-db" || tables(t, s)["stacks"] {
		t.Fatalf("after down: %v, stacks table %v", names, tables(t, s)["stacks"])
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}
