package store

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// migrated is a store on a new database with every migration applied.
func migrated(t *testing.T) *Store {
	t.Helper()
	s := open(t)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDNSSerial(t *testing.T) {
	s := migrated(t)
	ctx := context.Background()
	steps := []struct {
		hash string
		want uint32
	}{
		{"a", 2}, // the stored hash is empty: new content
		{"a", 2}, // same content, same serial (any process)
		{"b", 3},
		{"a", 4}, // back to earlier content is still a change
	}
	for i, st := range steps {
		got, err := s.DNSSerial(ctx, []byte(st.hash))
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Fatalf("step %d (%s): serial %d, want %d", i, st.hash, got, st.want)
		}
	}
	// The serial wraps within 1..2^32-1 (RFC 1982 arithmetic).
	if _, err := s.pool.Exec(ctx, `UPDATE dns_serial SET serial = 4294967295`); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DNSSerial(ctx, []byte("c")); err != nil || got != 1 {
		t.Fatalf("after 2^32-1: serial %d (%v), want 1", got, err)
	}
}

func TestDNSStateOfUnknownContainer(t *testing.T) {
	s := migrated(t)
	st, err := s.DNSStateOf(context.Background(), []string{"00000000-0000-0000-0000-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Records)+len(st.Ports)+len(st.Aliases) != 0 {
		t.Fatalf("rows for an unknown container: %+v", st)
	}
}

// TestProjectSubnets: a project's subnets are recorded sorted, reach the
// DNS state (with each row's project, read whole or for a few containers)
// and the project's reads; a write of the same subnets changes nothing and
// wakes no DNS server, a change or the project's deletion wakes them (an
// empty payload: re-read everything).
func TestProjectSubnets(t *testing.T) {
	s := migrated(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woken := make(chan string, 100)
	go s.ListenDNS(ctx, func(id string) { woken <- id })
	if id := <-woken; id != "" { // the (re)connect
		t.Fatalf("first wake-up %q", id)
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case id := <-woken:
			t.Fatalf("%s woke the DNS servers (%q)", what, id)
		case <-time.After(300 * time.Millisecond):
		}
	}
	drain := func() { // what earlier writes woke, until quiet
		for {
			select {
			case <-woken:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	wokenAll := func(what string) {
		t.Helper()
		select {
		case id := <-woken:
			if id != "" {
				t.Fatalf("%s: wake-up %q, want everything", what, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s woke no DNS server", what)
		}
	}
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "shop"}, "t"); err != nil {
		t.Fatal(err)
	}
	quiet("a new project")
	c, err := s.CreateContainer(ctx, inProject(1, "shop", "web", "web-shop.moor.localhost"), "t")
	if err != nil {
		t.Fatal(err)
	}
	rep := 0
	if err := s.RecordObservation(ctx, domain.Observation{ID: c.ID, Name: "web", Status: domain.StatusRunning, ContainerDNS: []domain.DNSEntry{
		{Zone: "container", Name: "web.shop.moor.internal", Type: "A", Value: "172.21.0.2", Replica: &rep, TTL: 5}}}); err != nil {
		t.Fatal(err)
	}
	drain()

	v6, v4 := netip.MustParsePrefix("fd00:21::/64"), netip.MustParsePrefix("172.21.0.0/16")
	if err := s.RecordProjectSubnets(ctx, "shop", []netip.Prefix{v6, v4}); err != nil {
		t.Fatal(err)
	}
	wokenAll("new subnets")
	if err := s.RecordProjectSubnets(ctx, "shop", []netip.Prefix{v4, v6}); err != nil {
		t.Fatal(err)
	}
	quiet("the same subnets again")
	if err := s.RecordProjectSubnets(ctx, "nosuch", []netip.Prefix{v4}); err != nil {
		t.Errorf("a project gone meanwhile: %v", err)
	}
	p, err := s.GetProject(ctx, "shop")
	if err != nil || !slices.Equal(p.Subnets, []string{"172.21.0.0/16", "fd00:21::/64"}) {
		t.Fatalf("project: %+v %v", p, err)
	}
	for name, read := range map[string]func() (domain.DNSState, error){
		"all": func() (domain.DNSState, error) { return s.DNSState(ctx) },
		"of":  func() (domain.DNSState, error) { return s.DNSStateOf(ctx, []string{c.ID}) },
	} {
		st, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Networks) != 1 || !slices.Equal(st.Networks["shop"], []netip.Prefix{v4, v6}) {
			t.Errorf("%s: networks %v", name, st.Networks)
		}
		for _, r := range st.Records {
			if r.Project != "shop" || r.Container != "web.shop" {
				t.Errorf("%s: record %+v", name, r)
			}
		}
		if len(st.Records) != 1 {
			t.Errorf("%s: %d records", name, len(st.Records))
		}
	}
	if err := s.RecordProjectSubnets(ctx, "shop", []netip.Prefix{netip.MustParsePrefix("172.22.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	wokenAll("changed subnets")
	if _, err := s.pool.Exec(ctx, `DELETE FROM containers`); err != nil {
		t.Fatal(err)
	}
	drain()
	if err := s.DeleteProject(ctx, "shop", "t"); err != nil {
		t.Fatal(err)
	}
	wokenAll("a deleted project with subnets")
}

// TestMigration0013WithData: projects keep their rows through up and down;
// down drops the subnets and the trigger, up starts them empty.
func TestMigration0013WithData(t *testing.T) {
	ctx := context.Background()
	s := migrated(t)
	since13 := migrationsSince(t, 13)
	if _, err := s.CreateProject(ctx, domain.NewProject{Name: "shop"}, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordProjectSubnets(ctx, "shop", []netip.Prefix{netip.MustParsePrefix("172.21.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MigrateDown(ctx, since13); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'projects' AND column_name = 'subnets'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("subnets column after down: %d %v", n, err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM projects WHERE name IN ('default', 'shop')`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("projects after down: %d %v", n, err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.GetProject(ctx, "shop")
	if err != nil || len(p.Subnets) != 0 {
		t.Fatalf("after up again: %+v %v", p, err)
	}
	if err := s.RecordProjectSubnets(ctx, "shop", []netip.Prefix{netip.MustParsePrefix("172.21.0.0/16")}); err != nil {
		t.Fatal(err)
	}
}
