package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func open(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, testenv.Postgres(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func tables(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out[n] = true
	}
	return out
}

// TestMigrateUpDown: migrate is idempotent, down reverts everything, up again works.
func TestMigrateUpDown(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	applied, err := s.Migrate(ctx)
	if err != nil || len(applied) == 0 {
		t.Fatalf("migrate: %v %v", applied, err)
	}
	want := []string{"containers", "dns_entries", "container_ports", "deployment_history", "events", "api_keys", "users", "container_instances"}
	got := tables(t, s)
	for _, w := range want {
		if !got[w] {
			t.Errorf("table %s missing after migrate", w)
		}
	}
	again, err := s.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, %v", again, err)
	}
	reverted, err := s.MigrateDown(ctx, len(applied))
	if err != nil || len(reverted) != len(applied) {
		t.Fatalf("down: %v %v", reverted, err)
	}
	got = tables(t, s)
	for _, w := range want {
		if got[w] {
			t.Errorf("table %s still there after down", w)
		}
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate after down: %v", err)
	}
}

// TestConcurrentMigrate: several processes starting at once migrate once.
func TestConcurrentMigrate(t *testing.T) {
	url := testenv.Postgres(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, url, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			_, err = s.Migrate(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestEventSequence: concurrent writers get a gap-free rising sequence, so a
// reader resuming after N misses nothing.
func TestEventSequence(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				if _, err := s.AppendEvent(ctx, "test", "", "x", map[string]int{"j": j}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	evs, err := s.EventsSince(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 200 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

// TestCreateConflictAndChange covers the sentinel errors of the store.
func TestCreateConflictAndChange(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	nc := domain.NewContainer{ID: "6f1c1b8e-0000-4000-8000-000000000001", Name: "a", Type: "t", Image: "i", Replicas: 2,
		Spec: domain.Type{ID: "t", Ports: []domain.PortSpec{{Name: "http", Port: 80, Protocol: "tcp", HTTP: true}}},
		DNS:  []domain.DNSEntry{{Zone: "host", Name: "a.moor.localhost", Type: "A", Value: "127.0.0.1", TTL: 5}}}
	c, err := s.CreateContainer(ctx, nc, "apikey:t")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != domain.StatusPending || c.DesiredState != domain.DesiredRunning || len(c.Instances) != 2 || len(c.Ports) != 1 {
		t.Fatalf("created %+v", c)
	}
	nc.ID = "6f1c1b8e-0000-4000-8000-000000000002"
	if _, err := s.CreateContainer(ctx, nc, "apikey:t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.ChangeContainer(ctx, domain.Ref("nosuch"), domain.Change{Action: domain.ActionStop}, "x"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := s.ChangeContainer(ctx, domain.Ref("a"), domain.Change{Action: domain.ActionRemove}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangeContainer(ctx, domain.Ref("a"), domain.Change{Action: domain.ActionStart}, "x"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("start while removing: %v", err)
	}
	// The failed duplicate left nothing behind.
	if st, _ := s.DNSState(ctx); len(st.Records) != 1 {
		t.Fatalf("dns rows: %v", st.Records)
	}
	if h, _ := s.History(ctx, domain.Ref("a"), false); len(h) != 2 {
		t.Fatalf("history: %v", h)
	}
}

// TestPruneEvents: retention deletes old events from the bottom, in batches,
// but never the newest keep, nor any a webhook has yet to deliver; the
// sequence goes on from where it was.
func TestPruneEvents(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// 100 events, 1-80 ten days old, 81-100 fresh.
	for i := 0; i < 100; i++ {
		if _, err := s.AppendEvent(ctx, "test", "", "x", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE events SET created_at = now() - interval '10 days' WHERE seq <= 80`); err != nil {
		t.Fatal(err)
	}
	oldest := func() int64 {
		t.Helper()
		evs, err := s.EventsSince(ctx, 0, 1)
		if err != nil || len(evs) != 1 {
			t.Fatalf("oldest event: %v %v", evs, err)
		}
		return evs[0].Seq
	}
	week := time.Now().Add(-7 * 24 * time.Hour)
	prune := func(before time.Time, keep int64, wantDeleted, wantOldest int64) {
		t.Helper()
		n, err := s.PruneEvents(ctx, before, keep, 7)
		if err != nil || n != wantDeleted {
			t.Fatalf("PruneEvents(keep %d) = %d, %v; want %d deleted", keep, n, err, wantDeleted)
		}
		if got := oldest(); got != wantOldest {
			t.Fatalf("oldest event after pruning: %d, want %d", got, wantOldest)
		}
	}

	// A webhook that has delivered up to 30 holds 31 on.
	hook, err := s.CreateWebhook(ctx, domain.Webhook{ID: "6f1c1b8e-0000-4000-8000-0000000000a1", Name: "h", URL: "http://127.0.0.1:1/",
		Events: []string{"*"}, SealedSecret: []byte("x")}) // event 101
	if err != nil {
		t.Fatal(err)
	}
	// (A cursor only moves forward through WebhookProgress.)
	if _, err := s.pool.Exec(ctx, `UPDATE webhooks SET cursor = 30 WHERE id = $1`, hook.ID); err != nil {
		t.Fatal(err)
	}
	prune(week, 10, 30, 31) // five batches of 7 at most
	// The newest keep stay whatever their age.
	if _, err := s.pool.Exec(ctx, `UPDATE events SET created_at = now() - interval '10 days'`); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebhook(ctx, "h"); err != nil { // event 102
		t.Fatal(err)
	}
	prune(week, 50, 22, 53) // 31-102 are left; the 50 newest stay
	prune(week, 50, 0, 53)
	// Nothing older than the cutoff: nothing goes, whatever keep says.
	prune(time.Now().Add(-30*24*time.Hour), 1, 0, 53)
	// keep 0 still keeps the newest event, which the next seq follows.
	prune(time.Now().Add(time.Minute), 0, 49, 102)
	seq, err := s.AppendEvent(ctx, "test", "", "x", nil)
	if err != nil || seq != 103 {
		t.Fatalf("next event after pruning: seq %d, %v; want 103", seq, err)
	}

	// The age cut is found through an index on created_at, not a scan.
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE '%(created_at)'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("indexes on events(created_at): %d, %v; want 1", n, err)
	}
}

// TestSpecKeepsTypeFields: the spec column holds every field of the type,
// so a container's host name, labels, devices and network survive a
// restart of moor (no column of their own, no migration).
func TestSpecKeepsTypeFields(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	spec := domain.Type{
		ID: "hub", Title: "Hub", Image: "hub:1", Restart: domain.RestartAlways,
		Ports:    []domain.PortSpec{{Name: "http", Port: 8123, Protocol: "tcp", HTTP: true}},
		Volumes:  []domain.VolumeSpec{{Name: "config", Path: "/config", ReadOnly: true}},
		Network:  domain.NetworkHost,
		Hostname: "homeassistant",
		Devices:  []domain.DeviceSpec{{HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/zigbee", Permissions: "rw"}},
		Labels:   map[string]string{"com.example.role": "hub"},
	}
	nc := domain.NewContainer{ID: "6f1c1b8e-0000-4000-8000-0000000000f1", Name: "hub", Type: "hub", Image: "hub:1", Replicas: 1, Spec: spec}
	if _, err := s.CreateContainer(ctx, nc, "apikey:t"); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetContainer(ctx, domain.Ref("hub"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Spec, spec) {
		t.Errorf("spec read back:\n got %+v\nwant %+v", c.Spec, spec)
	}
	all, err := s.ListContainers(ctx)
	if err != nil || len(all) != 1 || !reflect.DeepEqual(all[0].Spec, spec) {
		t.Errorf("listed: %+v, %v", all, err)
	}
}

// TestHistoryOfThisContainer: a container's history is its own, not that of
// an earlier container of the same name; the name's whole past stays
// readable, and after removal the history is still there.
func TestHistoryOfThisContainer(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	first := domain.NewContainer{ID: "6f1c1b8e-0000-4000-8000-0000000000c1", Name: "again", Type: "t", Image: "i", Replicas: 1,
		Spec: domain.Type{ID: "t"}}
	if _, err := s.CreateContainer(ctx, first, "user:old"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangeContainer(ctx, domain.Ref("again"), domain.Change{Action: domain.ActionRemove}, "user:old"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRemoval(ctx, first.ID, "again", nil); err != nil {
		t.Fatal(err)
	}
	removed, err := s.History(ctx, domain.Ref("again"), false)
	if err != nil || len(removed) != 3 || removed[2].Action != "removed" {
		t.Fatalf("history after removal: %+v %v", removed, err)
	}

	second := first
	second.ID = "6f1c1b8e-0000-4000-8000-0000000000c2"
	if _, err := s.CreateContainer(ctx, second, "user:new"); err != nil {
		t.Fatal(err)
	}
	own, err := s.History(ctx, domain.Ref("again"), false)
	if err != nil || len(own) != 1 || own[0].Actor != "user:new" || own[0].ContainerID != second.ID {
		t.Fatalf("history of the second container: %+v %v", own, err)
	}
	all, err := s.History(ctx, domain.Ref("again"), true)
	if err != nil || len(all) != 4 {
		t.Fatalf("the name's whole history: %+v %v", all, err)
	}
	if _, err := s.History(ctx, domain.Ref("never"), false); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("history of a name never used: %v", err)
	}
}

// TestQueryEvents: the newest events, by container and by kind prefix,
// oldest first; a prefix's LIKE wildcards match only themselves.
func TestQueryEvents(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	start, err := s.LastEventSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		name := []string{"qa", "qb"}[i%2]
		if _, err := s.AppendEvent(ctx, "image.pull", "", name, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendEvent(ctx, "imagexpull", "", "qa", nil); err != nil {
		t.Fatal(err)
	}
	seqs := func(evs []domain.Event) (out []int64) {
		for _, e := range evs {
			out = append(out, e.Seq-start)
		}
		return out
	}
	for _, tc := range []struct {
		q    domain.EventQuery
		want []int64
	}{
		{domain.EventQuery{After: start, Limit: 100}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{domain.EventQuery{After: start, Tail: 2}, []int64{6, 7}},
		{domain.EventQuery{After: start, Tail: 2, Container: "qa"}, []int64{5, 7}},
		{domain.EventQuery{After: start, Limit: 100, Container: "qa", Kind: "image.pull"}, []int64{1, 3, 5}},
		{domain.EventQuery{After: start, Limit: 100, Kind: "image_pull"}, nil},
		{domain.EventQuery{After: start + 4, Limit: 1}, []int64{5}},
	} {
		got, err := s.QueryEvents(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(seqs(got), tc.want) {
			t.Errorf("%+v: seqs %v, want %v", tc.q, seqs(got), tc.want)
		}
	}
}
