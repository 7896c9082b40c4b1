package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// TestServingLock: uninstall is refused while a server holds its lock
// session, naming where it connects from; a server cannot take it while an
// uninstall runs; a server gone (its session closed) no longer counts.
func TestServingLock(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	l := s.NewLocker()
	if err := l.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.LockOut(ctx)
	if !errors.Is(err, ErrServing) || !strings.Contains(err.Error(), "connected from 127.0.0.1") {
		t.Fatalf("LockOut with a server = %v", err)
	}
	l.Close()
	release, err := s.LockOut(ctx)
	if err != nil {
		t.Fatalf("LockOut once the server is gone: %v", err)
	}
	l2 := s.NewLocker()
	defer l2.Close()
	if err := l2.Hold(ctx); !errors.Is(err, ErrUninstalling) {
		t.Fatalf("Hold during an uninstall = %v", err)
	}
	if _, ok, err := l2.TryLock(ctx, "x"); ok || !errors.Is(err, ErrUninstalling) {
		t.Fatalf("TryLock during an uninstall = %v, %v", ok, err)
	}
	release()
	if _, ok, err := l2.TryLock(ctx, "x"); !ok || err != nil {
		t.Fatalf("TryLock after the uninstall = %v, %v", ok, err)
	}
}

// TestForgetContainers: every container row goes with its details, each
// recorded as removed by the uninstall; history stays.
func TestForgetContainers(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"b", "a"} {
		id := "6f1c1b8e-0000-4000-8000-0000000000c" + string(rune('1'+i))
		if _, err := s.CreateContainer(ctx, domain.NewContainer{ID: id, Name: name, Type: "t", Image: "i", Replicas: 2,
			DNS: []domain.DNSEntry{{Zone: domain.ZoneHost, Name: name + ".moor.localhost", Type: "A", Value: "127.0.0.1", TTL: 5}}}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	names, err := s.ForgetContainers(ctx, "system:uninstall", map[string]any{"uninstall": true})
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Fatalf("ForgetContainers = %v, %v", names, err)
	}
	var left int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM containers) + (SELECT count(*) FROM container_instances) +
		(SELECT count(*) FROM dns_entries)`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left (%v)", left, err)
	}
	h, err := s.History(ctx, domain.Ref("a"), false)
	if err != nil || len(h) != 2 || h[len(h)-1].Action != "removed" || h[len(h)-1].Actor != "system:uninstall" {
		t.Fatalf("history of a: %+v, %v", h, err)
	}
	if n, err := s.ContainerNames(ctx); err != nil || len(n) != 0 {
		t.Fatalf("ContainerNames = %v, %v", n, err)
	}
}

// TestDropSchema: no moor table is left.
func TestDropSchema(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tables(t, s); len(got) != 0 {
		t.Fatalf("tables left: %v", got)
	}
}

// TestRedeployRecorded: a redeploy raises config_version and the
// generation, is pending until the reconciler says it is done (once), and
// a redeploy without pull drops a pending pull; migration 0010 reverts and
// applies again.
func TestRedeployRecorded(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	id := "6f1c1b8e-0000-4000-8000-0000000000d1"
	if _, err := s.CreateContainer(ctx, domain.NewContainer{ID: id, Name: "r", Type: "t", Image: "i", Replicas: 1}, "t"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetContainer(ctx, domain.Ref("r"))
	c, err := s.ChangeContainer(ctx, domain.Ref("r"), domain.Change{Action: domain.ActionRedeploy, Pull: true}, "apikey:ops")
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfigVersion != before.ConfigVersion+1 || c.Generation != before.Generation+1 || c.RedeployAt.IsZero() || c.PullAt.IsZero() {
		t.Fatalf("after redeploy: %+v", c)
	}
	// The pull done; then the redeploy, recorded once.
	if err := s.RecordObservation(ctx, domain.Observation{ID: id, Name: "r", Status: domain.StatusCreating, PullDone: c.PullAt}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.RecordObservation(ctx, domain.Observation{ID: id, Name: "r", Status: domain.StatusRunning,
			ObservedGeneration: c.Generation, RedeployDone: c.RedeployAt}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.GetContainer(ctx, domain.Ref("r"))
	if !got.RedeployAt.IsZero() || !got.PullAt.IsZero() {
		t.Fatalf("still pending: redeploy %v, pull %v", got.RedeployAt, got.PullAt)
	}
	h, _ := s.History(ctx, domain.Ref("r"), false)
	var actions []string
	for _, e := range h {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "created,redeploy_requested,redeployed" {
		t.Fatalf("history %v", actions)
	}
	// A redeploy without pull drops a pull still pending.
	c, _ = s.ChangeContainer(ctx, domain.Ref("r"), domain.Change{Action: domain.ActionRedeploy, Pull: true}, "t")
	c, _ = s.ChangeContainer(ctx, domain.Ref("r"), domain.Change{Action: domain.ActionRedeploy}, "t")
	if c.PullAt != (time.Time{}) || c.RedeployAt.IsZero() {
		t.Fatalf("plain redeploy after a pull: pull %v, redeploy %v", c.PullAt, c.RedeployAt)
	}
	if _, err := s.MigrateDown(ctx, migrationsSince(t, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetContainer(ctx, domain.Ref("r")); err != nil || !got.RedeployAt.IsZero() {
		t.Fatalf("after 0010 down and up: %+v, %v", got, err)
	}
}
