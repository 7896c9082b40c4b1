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

// publishing is a container of one replica publishing bindings.
func publishing(n int, name string, ps ...domain.PublishedPort) domain.NewContainer {
	return domain.NewContainer{ID: fmt.Sprintf("6f1c1b8e-0000-4000-8000-%012d", n), Name: name, Type: "t", Image: "i", Replicas: 1,
		Spec:      domain.Type{ID: "t", Ports: []domain.PortSpec{{Name: "pg", Port: 5432, Protocol: "tcp"}, {Name: "dns", Port: 53, Protocol: "udp"}}},
		Published: ps}
}

func bind(ip string, port int, proto string) domain.PublishedPort {
	name, cport := "pg", 5432
	if proto == "udp" {
		name, cport = "dns", 53
	}
	return domain.PublishedPort{Name: name, Port: cport, Protocol: proto, HostIP: ip, HostPort: port}
}

// TestPublishedPortsClaimed: a host address and port of one protocol is
// one container's: an overlapping claim (the same address, or the
// wildcard of its family) is a conflict naming the holder, whether it comes
// at create or in an update, and of two concurrent claims one wins. A
// publishing container has one replica at most. An update or a removal
// frees what it gives up.
func TestPublishedPortsClaimed(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, publishing(1, "a", bind("127.0.0.1", 15432, "tcp")), "t"); err != nil {
		t.Fatal(err)
	}
	for i, p := range []domain.PublishedPort{bind("127.0.0.1", 15432, "tcp"), bind("0.0.0.0", 15432, "tcp")} {
		_, err := s.CreateContainer(ctx, publishing(10+i, fmt.Sprintf("b%d", i), bind("127.0.0.1", 9, "tcp"), p), "t")
		if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), `publish[1]: host port `+p.HostAddr()+`/tcp is already published by container "a"`) {
			t.Errorf("claim of %s: %v", p, err)
		}
	}
	if n := s.countPublished(t, 9); n != 0 {
		t.Errorf("a refused create left %d bindings", n)
	}
	// Another address, another protocol, another family: no clash.
	for i, p := range []domain.PublishedPort{bind("127.0.0.2", 15432, "tcp"), bind("127.0.0.1", 15432, "udp"), bind("::", 15432, "tcp")} {
		if _, err := s.CreateContainer(ctx, publishing(20+i, fmt.Sprintf("c%d", i), p), "t"); err != nil {
			t.Errorf("claim of %s: %v", p, err)
		}
	}

	// Two at once: PostgreSQL lets one win.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.CreateContainer(ctx, publishing(30+i, fmt.Sprintf("race%d", i), bind("0.0.0.0", 16000, "tcp")), "t")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrConflict):
			t.Errorf("a racing claim: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent claims won", won, len(errs))
	}

	// One replica at most, checked under the row lock.
	if _, err := s.ChangeContainer(ctx, domain.Ref("a"), domain.Change{Action: domain.ActionScale, Replicas: 2}, "t"); !errors.Is(err, domain.ErrInvalid) ||
		!strings.Contains(err.Error(), "replicas: must be 0 or 1") {
		t.Errorf("scale to 2: %v", err)
	}
	if _, err := s.ChangeContainer(ctx, domain.Ref("a"), domain.Change{Action: domain.ActionScale, Replicas: 0}, "t"); err != nil {
		t.Errorf("scale to 0: %v", err)
	}

	// An update moves a's port: the old one is free, the new one held,
	// and a claim of another's port names it.
	a, err := s.GetContainer(ctx, domain.Ref("a"))
	if err != nil {
		t.Fatal(err)
	}
	u := domain.Update{Generation: a.Generation, Image: a.Image, Replicas: 1, Published: []domain.PublishedPort{bind("127.0.0.1", 15433, "tcp")}}
	if a, err = s.UpdateContainer(ctx, domain.Ref("a"), u, "t"); err != nil || len(a.Published) != 1 || a.Published[0].HostPort != 15433 {
		t.Fatalf("update: %+v %v", a.Published, err)
	}
	if _, err := s.CreateContainer(ctx, publishing(40, "d", bind("127.0.0.1", 15432, "tcp")), "t"); err != nil {
		t.Errorf("the port a gave up: %v", err)
	}
	u = domain.Update{Generation: a.Generation, Image: a.Image, Replicas: 1, Published: []domain.PublishedPort{bind("127.0.0.1", 15432, "tcp")}}
	if _, err := s.UpdateContainer(ctx, domain.Ref("a"), u, "t"); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), `by container "d"`) {
		t.Errorf("update onto d's port: %v", err)
	}
	if a, _ := s.GetContainer(ctx, domain.Ref("a")); len(a.Published) != 1 || a.Published[0].HostPort != 15433 {
		t.Errorf("a refused update changed a: %+v", a.Published)
	}

	// Removed: free again.
	if _, err := s.ChangeContainer(ctx, domain.Ref("d"), domain.Change{Action: domain.ActionRemove}, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRemoval(ctx, publishing(40, "d").ID, "d", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, publishing(41, "e", bind("127.0.0.1", 15432, "tcp")), "t"); err != nil {
		t.Errorf("the port of a removed container: %v", err)
	}
}

func (s *Store) countPublished(t *testing.T, hostPort int) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM container_published_ports WHERE host_port = $1`, hostPort).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigration0009WithData: the published ports table comes and goes with
// its function; containers stay, and up again works.
func TestMigration0009WithData(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, publishing(1, "a", bind("127.0.0.1", 15432, "tcp")), "t"); err != nil {
		t.Fatal(err)
	}
	since9 := migrationsSince(t, 9)
	if _, err := s.MigrateDown(ctx, since9); err != nil {
		t.Fatal(err)
	}
	var fn int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_proc WHERE proname = 'moor_bind_scope'`).Scan(&fn); err != nil || fn != 0 {
		t.Fatalf("after down: %d moor_bind_scope functions (%v)", fn, err)
	}
	if tables(t, s)["container_published_ports"] {
		t.Fatal("container_published_ports still there after down")
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM containers WHERE name = 'a'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("after down: %d containers (%v)", n, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetContainer(ctx, domain.Ref("a"))
	if err != nil || len(c.Published) != 0 {
		t.Fatalf("after up again: %+v %v", c.Published, err)
	}
	if _, err := s.CreateContainer(ctx, publishing(2, "b", bind("0.0.0.0", 15432, "tcp")), "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainer(ctx, publishing(3, "c", bind("127.0.0.1", 15432, "tcp")), "t"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("the constraint after up again: %v", err)
	}
}
