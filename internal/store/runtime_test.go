package store

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// TestCreateReturnsWhatGetReads: CreateContainer answers from what it
// wrote, without reading the row back; that answer is what a read sees.
func TestCreateReturnsWhatGetReads(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	nc := domain.NewContainer{ID: "6f1c1b8e-0000-4000-8000-0000000000a1", Name: "shop", Type: "t", Image: "i", Replicas: 3,
		Env: map[string]string{"A": "1"},
		Spec: domain.Type{ID: "t", Ports: []domain.PortSpec{
			{Name: "metrics", Port: 9100, Protocol: "tcp"}, {Name: "http", Port: 80, Protocol: "tcp", HTTP: true}, {Name: "dns", Port: 80, Protocol: "udp"}}},
		// Not in the order they are read back.
		Published: []domain.PublishedPort{
			{Name: "dns", Port: 80, Protocol: "udp", HostIP: "127.0.0.1", HostPort: 20080},
			{Name: "http", Port: 80, Protocol: "tcp", HostIP: "::1", HostPort: 20080},
			{Name: "http", Port: 80, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 20080},
			{Name: "metrics", Port: 9100, Protocol: "tcp", HostIP: "10.0.0.1", HostPort: 9100},
		}}
	created, err := s.CreateContainer(ctx, nc, "apikey:t")
	if err != nil {
		t.Fatal(err)
	}
	read, err := s.GetContainer(ctx, domain.Ref("shop"))
	if err != nil {
		t.Fatal(err)
	}
	// The JSON view is what clients see; compare every field of it.
	created.Spec, read.Spec = domain.Type{}, domain.Type{}
	if !reflect.DeepEqual(created, read) {
		t.Fatalf("create answered\n%+v\nread gives\n%+v", created, read)
	}
}

// TestInstanceNodeAndCause: where a replica runs and why a container has
// its status are recorded and read back.
func TestInstanceNodeAndCause(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	id := "6f1c1b8e-0000-4000-8000-0000000000b1"
	if _, err := s.CreateContainer(ctx, domain.NewContainer{ID: id, Name: "n", Type: "t", Image: "i", Replicas: 1}, "t"); err != nil {
		t.Fatal(err)
	}
	err := s.RecordObservation(ctx, domain.Observation{ID: id, Name: "n", Status: domain.StatusFailed,
		Cause: domain.CauseStoppedOutside, Reason: "replica 0 exited with code 1 outside moor",
		Instances: []domain.Instance{{Index: 0, RuntimeID: "abc", Node: "host-2", Status: domain.StatusFailed}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.GetContainerByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.StatusCause != domain.CauseStoppedOutside || c.Instances[0].Node != "host-2" || c.Instances[0].RuntimeID != "abc" {
		t.Fatalf("read %+v", c)
	}
	// An unknown cause is refused by the schema, not stored.
	if err := s.RecordObservation(ctx, domain.Observation{ID: id, Name: "n", Status: domain.StatusFailed, Cause: "whatever"}); err == nil {
		t.Fatal("stored an unknown cause")
	}
}

// TestMigration0005WithData: the runtime migration keeps instances' ids,
// derives the cause of existing rows, and reverts with the data intact.
func TestMigration0005WithData(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Back to just before 0005 (later migrations go first).
	since5 := migrationsSince(t, 5)
	if _, err := s.MigrateDown(ctx, since5); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	for i, row := range [][3]string{
		{"a", "stopped", "replica 0 exited with code 0 outside moor"},
		{"b", "failed", "image x: not found"},
		{"c", "running", ""},
	} {
		id := "6f1c1b8e-0000-4000-8000-00000000000" + string(rune('1'+i))
		exec(`INSERT INTO containers (id, name, type_id, image, spec, env, desired_state, status, status_reason, replicas, created_by)
			VALUES ($1, $2, 't', 'i', '{}', '{}', 'running', $3, $4, 1, 'test')`, id, row[0], row[1], row[2])
		exec(`INSERT INTO container_instances (container_id, replica, docker_id, status) VALUES ($1, 0, $2, 'running')`, id, "docker-"+row[0])
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]domain.Cause{"a": domain.CauseStoppedOutside, "b": domain.CauseFailed, "c": domain.CauseNone} {
		c, err := s.GetContainer(ctx, domain.Ref(name))
		if err != nil {
			t.Fatal(err)
		}
		if c.StatusCause != want || c.Instances[0].RuntimeID != "docker-"+name || c.Instances[0].Node != "" {
			t.Errorf("%s after up: cause %q, instance %+v", name, c.StatusCause, c.Instances[0])
		}
	}
	if _, err := s.MigrateDown(ctx, since5); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM container_instances WHERE docker_id LIKE 'docker-%'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("after down: %d instances keep their docker_id (%v)", n, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMigration0007WithData: history and events written with the values of
// a container's variables keep only their names; other details stay.
func TestMigration0007WithData(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	since7 := migrationsSince(t, 7)
	if _, err := s.MigrateDown(ctx, since7); err != nil {
		t.Fatal(err)
	}
	details := `{"type": "t", "replicas": 1, "env": {"MODE": "web", "API_TOKEN": "tok-value"}}`
	for _, sql := range []string{
		`INSERT INTO deployment_history (container_name, action, actor, details) VALUES ('a', 'created', 'test', $1)`,
		`INSERT INTO deployment_history (container_name, action, actor, details) VALUES ('b', 'created', 'test', '{"env": {}}')`,
		`INSERT INTO deployment_history (container_name, action, actor, details) VALUES ('c', 'stopped', 'test', '{"reason": "x"}')`,
		`INSERT INTO events (seq, kind, container_name, actor, data) VALUES (900001, 'container.created', 'a', 'test', $1)`,
	} {
		args := []any{}
		if strings.Contains(sql, "$1") {
			args = append(args, details)
		}
		if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := s.pool.Query(ctx, `SELECT details::text FROM deployment_history ORDER BY container_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		rows.Scan(&d)
		got = append(got, d)
	}
	var ev string
	if err := s.pool.QueryRow(ctx, `SELECT data::text FROM events WHERE seq = 900001`).Scan(&ev); err != nil {
		t.Fatal(err)
	}
	got = append(got, ev)
	want := []string{
		`{"env": ["API_TOKEN", "MODE"], "type": "t", "replicas": 1}`,
		`{"env": []}`,
		`{"reason": "x"}`,
		`{"env": ["API_TOKEN", "MODE"], "type": "t", "replicas": 1}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("after 0007:\n got %q\nwant %q", got, want)
	}
	if _, err := s.MigrateDown(ctx, since7); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// migrationsSince counts the migrations from version on: how many to go
// down to be just before it.
func migrationsSince(t *testing.T, version int) int {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.version >= version {
			n++
		}
	}
	return n
}
