package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/testenv"
)

// Integration tests against the real engine. Every object they create is
// labelled moor.test=1, has a unique name, and is removed on t.Cleanup.
// Without Docker they skip, except under CI where they fail.

func newTestDocker(t *testing.T, host string) *Docker {
	t.Helper()
	testenv.RequireDocker(t)
	d, err := New(host, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "moor-t-" + prefix + "-" + hex.EncodeToString(b)
}

func testLabels(extra ...string) map[string]string {
	l := map[string]string{testenv.TestLabel: "1"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// removeLater removes the container (by ID or name) when the test ends.
func removeLater(t *testing.T, d *Docker, id string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		if err := d.Remove(ctx, id); err != nil {
			t.Errorf("cleanup: remove container %s: %v", id, err)
		}
	})
}

func ensureNetworkForTest(t *testing.T, d *Docker, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		nets, err := d.networksNamed(ctx, name)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, n := range nets {
			if _, err := d.cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				t.Errorf("cleanup: remove network %s: %v", name, err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.EnsureNetwork(ctx, domain.NetworkSpec{Name: name, Labels: testLabels()}); err != nil {
		t.Fatal(err)
	}
}

func ensureVolumeForTest(t *testing.T, d *Docker, name string, labels map[string]string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		if err := d.RemoveVolume(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.EnsureVolume(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls Inspect until cond holds.
func waitFor(t *testing.T, d *Docker, id, what string, timeout time.Duration, cond func(domain.InstanceState) bool) domain.InstanceState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last domain.InstanceState
	for {
		st, err := d.Inspect(ctx, id)
		if err == nil && cond(st) {
			return st
		}
		if err == nil {
			last = st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: timed out; last state %+v (err %v)", what, last, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// collectEvents gathers events from ch in the background until stop is
// called, which returns them.
func collectEvents(ch <-chan domain.RuntimeEvent) (stop func() []domain.RuntimeEvent, wait func(func([]domain.RuntimeEvent) bool, time.Duration) bool) {
	var mu sync.Mutex
	var got []domain.RuntimeEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	}()
	snapshot := func() []domain.RuntimeEvent {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	wait = func(cond func([]domain.RuntimeEvent) bool, timeout time.Duration) bool {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if cond(snapshot()) {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cond(snapshot())
	}
	return snapshot, wait
}

func hasEvent(evs []domain.RuntimeEvent, id, action string) (domain.RuntimeEvent, bool) {
	for _, ev := range evs {
		if ev.RuntimeID == id && ev.Action == action {
			return ev, true
		}
	}
	return domain.RuntimeEvent{}, false
}

func TestContainerLifecycle(t *testing.T) {
	t.Parallel()
	image := testenv.TestImage(t)
	d := newTestDocker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	name := uniqueName("life")
	netName := name + "-net"
	volName := name + "-data"
	ensureNetworkForTest(t, d, netName)
	if err := d.EnsureNetwork(ctx, domain.NetworkSpec{Name: netName, Labels: testLabels()}); err != nil {
		t.Fatalf("EnsureNetwork again: %v", err)
	}
	if nets, err := d.networksNamed(ctx, netName); err != nil || len(nets) != 1 {
		t.Fatalf("networks named %s: %d, %v; want 1", netName, len(nets), err)
	}

	volLabels := testLabels("moor.t.owner", name)
	ensureVolumeForTest(t, d, volName, volLabels)
	if err := d.EnsureVolume(ctx, volName, volLabels); err != nil {
		t.Fatalf("EnsureVolume again: %v", err)
	}
	vols, err := d.ListVolumes(ctx, volLabels)
	if err != nil || !slices.Equal(vols, []string{volName}) {
		t.Fatalf("ListVolumes = %v, %v; want [%s]", vols, err, volName)
	}
	if vols, err := d.ListVolumes(ctx, map[string]string{"moor.t.owner": ""}); err != nil || !slices.Contains(vols, volName) {
		t.Fatalf("ListVolumes(key only) = %v, %v; want it to hold %s", vols, err, volName)
	}

	// A volume of that name made by another installation is not taken over;
	// one without moor's labels (seeded by hand) is used as it is.
	theirs := name + "-theirs"
	ensureVolumeForTest(t, d, theirs, testLabels(domain.LabelOwner, "someone-else"))
	err = d.EnsureVolume(ctx, theirs, testLabels(domain.LabelOwner, "us"))
	var taken *domain.VolumeTakenError
	if !errors.As(err, &taken) || taken.Owner != "someone-else" || taken.Name != theirs || !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("EnsureVolume over another installation's volume = %v", err)
	}
	if err := d.EnsureVolume(ctx, volName, testLabels(domain.LabelOwner, "us")); err != nil {
		t.Fatalf("EnsureVolume over a volume without an owner = %v", err)
	}

	moorID := "id-" + name
	labels := testLabels(domain.LabelID, moorID)
	spec := domain.InstanceSpec{
		Name:        name,
		Image:       image,
		Env:         map[string]string{"MODE": "test", "TESTAPP_Z": "last", "A_FIRST": "first"},
		Labels:      labels,
		Network:     netName,
		Aliases:     []string{"tapp-alias"},
		Mounts:      []domain.Mount{{Source: volName, Target: "/data"}},
		MemoryBytes: 64 << 20,
		NanoCPUs:    500_000_000,
		Health: &domain.HealthSpec{
			Test:     []string{"CMD", "/testapp", "-check"},
			Interval: 300 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  3,
		},
		Restart:  domain.RestartOnFailure,
		DNS:      []string{"127.0.0.1"},
		Ports:    []domain.PortSpec{{Name: "http", Port: 8080, Protocol: "tcp", HTTP: true}, {Name: "stats", Port: 9090, Protocol: "udp"}},
		Hostname: "tapp",
	}

	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	evs, evErrs := d.Events(evCtx, map[string]string{domain.LabelID: moorID})
	events, waitEvents := collectEvents(evs)

	id, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	removeLater(t, d, id)

	t.Run("CreateIsIdempotent", func(t *testing.T) {
		again, err := d.Create(ctx, spec)
		if err != nil || again != id {
			t.Fatalf("Create again = %q, %v; want %q", again, err, id)
		}
	})
	t.Run("CreateConflict", func(t *testing.T) {
		other := spec
		other.Labels = maps.Clone(spec.Labels)
		other.Labels[domain.LabelID] = "someone-else"
		_, err := d.Create(ctx, other)
		if !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("Create with another %s = %v; want ErrConflict", domain.LabelID, err)
		}
		// The holder is named in domain terms: its owner and id labels.
		var nt *domain.NameTakenError
		if !errors.As(err, &nt) || nt.Name != name || nt.RuntimeID != id || nt.ID != moorID || nt.Owner != spec.Labels[domain.LabelOwner] {
			t.Fatalf("Create with another %s = %#v; want a NameTakenError naming %s", domain.LabelID, err, id)
		}
		noID := spec
		noID.Labels = testLabels()
		if _, err := d.Create(ctx, noID); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("Create without %s = %v; want ErrConflict", domain.LabelID, err)
		}
	})

	st, err := d.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "created" || st.Running || st.Name != name || st.Labels[domain.LabelID] != moorID || st.Image != image || !st.StartedAt.IsZero() {
		t.Fatalf("Inspect before start = %+v", st)
	}

	t.Run("AppliedConfig", func(t *testing.T) {
		res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Container
		hc := c.HostConfig
		if hc.Memory != 64<<20 || hc.NanoCPUs != 500_000_000 {
			t.Errorf("resources: memory %d nanocpus %d", hc.Memory, hc.NanoCPUs)
		}
		if hc.RestartPolicy.Name != "on-failure" {
			t.Errorf("restart policy %q", hc.RestartPolicy.Name)
		}
		if !slices.Equal(hc.DNS, []netip.Addr{netip.MustParseAddr("127.0.0.1")}) {
			t.Errorf("dns %v", hc.DNS)
		}
		if hc.Privileged || string(hc.NetworkMode) != netName {
			t.Errorf("privileged %v network mode %q", hc.Privileged, hc.NetworkMode)
		}
		if len(hc.Mounts) != 1 || hc.Mounts[0].Source != volName || hc.Mounts[0].Target != "/data" || hc.Mounts[0].Type != "volume" {
			t.Errorf("mounts %+v", hc.Mounts)
		}
		hcfg := c.Config.Healthcheck
		if hcfg == nil || !slices.Equal(hcfg.Test, spec.Health.Test) || hcfg.Interval != 300*time.Millisecond || hcfg.Timeout != 2*time.Second || hcfg.Retries != 3 {
			t.Errorf("healthcheck %+v", hcfg)
		}
		var env []string
		for _, e := range c.Config.Env {
			if !strings.HasPrefix(e, "PATH=") {
				env = append(env, e)
			}
		}
		if want := []string{"A_FIRST=first", "MODE=test", "TESTAPP_Z=last"}; !slices.Equal(env, want) {
			t.Errorf("env %v; want %v", env, want)
		}
		if _, ok := c.Config.ExposedPorts[network.MustParsePort("9090/udp")]; !ok || len(c.Config.ExposedPorts) != 2 {
			t.Errorf("exposed ports %v", c.Config.ExposedPorts)
		}
		if c.Config.Hostname != "tapp" {
			t.Errorf("hostname %q", c.Config.Hostname)
		}
		if ep := c.NetworkSettings.Networks[netName]; ep == nil || !slices.Contains(ep.Aliases, "tapp-alias") {
			t.Errorf("endpoint on %s: %+v", netName, ep)
		}
	})

	if err := d.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := d.Start(ctx, id); err != nil {
		t.Fatalf("Start when running: %v", err)
	}
	st = waitFor(t, d, id, "healthy", 30*time.Second, func(s domain.InstanceState) bool {
		if s.Status == "exited" {
			t.Fatalf("container exited: %+v", s)
		}
		return s.Health == "healthy"
	})
	if !st.Running || st.Status != "running" || st.StartedAt.IsZero() || !st.FinishedAt.IsZero() {
		t.Errorf("Inspect running = %+v", st)
	}
	ip, err := netip.ParseAddr(st.IP)
	if err != nil || !ip.Is4() || st.IPs[netName] != st.IP || len(st.IPs) != 1 {
		t.Errorf("IP %q IPs %v", st.IP, st.IPs)
	}

	t.Run("List", func(t *testing.T) {
		list, err := d.List(ctx, map[string]string{domain.LabelID: moorID})
		if err != nil || len(list) != 1 {
			t.Fatalf("List = %+v, %v; want one", list, err)
		}
		l := list[0]
		if l.RuntimeID != id || l.Name != name || !l.Running || l.Status != "running" || l.Image != image ||
			l.IP != st.IP || l.IPs[netName] != st.IP || l.Labels[domain.LabelID] != moorID || l.Health != "healthy" {
			t.Errorf("List entry = %+v; inspect said %+v", l, st)
		}
		all, err := d.List(ctx, map[string]string{domain.LabelID: "", testenv.TestLabel: "1"})
		if err != nil || !slices.ContainsFunc(all, func(s domain.InstanceState) bool { return s.RuntimeID == id }) {
			t.Errorf("List(key only) = %d entries, %v; want ours among them", len(all), err)
		}
		none, err := d.List(ctx, map[string]string{domain.LabelID: "no-such-" + moorID})
		if err != nil || len(none) != 0 {
			t.Errorf("List(no match) = %+v, %v", none, err)
		}
	})

	t.Run("Logs", func(t *testing.T) {
		var buf bytes.Buffer
		if err := d.Logs(ctx, id, domain.LogOptions{}, &buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, testenv.TestImageGreeting) || !strings.Contains(out, "mode=test") || !strings.Contains(out, "testapp: ready") {
			t.Errorf("logs lack the greeting (stdout) or the ready line (stderr):\n%s", out)
		}
		if strings.ContainsRune(out, 0) {
			t.Errorf("logs hold stream headers: %q", out)
		}
		buf.Reset()
		if err := d.Logs(ctx, id, domain.LogOptions{Tail: 1}, &buf); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 1 {
			t.Errorf("tail 1 gave %d lines: %q", n, buf.String())
		}
	})

	start := time.Now()
	if err := d.Stop(ctx, id, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Stop took %v: SIGTERM not handled?", took)
	}
	st, err = d.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.Status != "exited" || st.ExitCode != 0 || st.OOMKilled || st.Error != "" || st.IP != "" ||
		st.FinishedAt.Before(st.StartedAt) || st.StartedAt.IsZero() {
		t.Errorf("Inspect after stop = %+v", st)
	}
	if err := d.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop when stopped: %v", err)
	}

	t.Run("Events", func(t *testing.T) {
		want := []string{"create", "start", "health_status: healthy", "die", "stop"}
		ok := waitEvents(func(evs []domain.RuntimeEvent) bool {
			for _, a := range want {
				if _, ok := hasEvent(evs, id, a); !ok {
					return false
				}
			}
			return true
		}, 10*time.Second)
		got := events()
		if !ok {
			var actions []string
			for _, ev := range got {
				actions = append(actions, ev.Action)
			}
			t.Fatalf("events %v; want at least %v", actions, want)
		}
		die, _ := hasEvent(got, id, "die")
		if die.ExitCode != 0 || die.Name != name || die.Image != image || die.Labels[domain.LabelID] != moorID ||
			die.Time.IsZero() || time.Since(die.Time) > time.Minute {
			t.Errorf("die event = %+v", die)
		}
		if _, leaked := die.Labels["exitCode"]; leaked {
			t.Errorf("engine attributes left in labels: %v", die.Labels)
		}
	})

	if err := d.Remove(ctx, id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := d.Remove(ctx, id); err != nil {
		t.Errorf("Remove missing = %v; want nil", err)
	}
	if _, err := d.Inspect(ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Inspect missing = %v; want ErrNotFound", err)
	}
	if err := d.Stop(ctx, id, time.Second); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Stop missing = %v; want ErrNotFound", err)
	}
	if err := d.Start(ctx, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Start missing = %v; want ErrNotFound", err)
	}
	if err := d.Logs(ctx, id, domain.LogOptions{}, &bytes.Buffer{}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Logs missing = %v; want ErrNotFound", err)
	}
	if list, err := d.List(ctx, map[string]string{domain.LabelID: moorID}); err != nil || len(list) != 0 {
		t.Errorf("List after remove = %+v, %v", list, err)
	}
	if ok := waitEvents(func(evs []domain.RuntimeEvent) bool { _, ok := hasEvent(evs, id, "destroy"); return ok }, 10*time.Second); !ok {
		t.Errorf("no destroy event")
	}
	evCancel()
	if err := <-evErrs; !errors.Is(err, context.Canceled) {
		t.Errorf("events error after cancel = %v; want context.Canceled", err)
	}

	if err := d.RemoveVolume(ctx, volName); err != nil {
		t.Fatalf("RemoveVolume: %v", err)
	}
	if err := d.RemoveVolume(ctx, volName); err != nil {
		t.Errorf("RemoveVolume missing = %v; want nil", err)
	}
	if vols, err := d.ListVolumes(ctx, volLabels); err != nil || len(vols) != 0 {
		t.Errorf("ListVolumes after remove = %v, %v", vols, err)
	}
}

func TestCrashExitCode(t *testing.T) {
	t.Parallel()
	image := testenv.TestImage(t)
	d := newTestDocker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	name := uniqueName("crash")
	moorID := "id-" + name
	// A network of its own: Docker's default bridge (docker0) is not on
	// every host.
	ensureNetworkForTest(t, d, name)
	evs, _ := d.Events(ctx, map[string]string{domain.LabelID: moorID})
	events, waitEvents := collectEvents(evs)

	id, err := d.Create(ctx, domain.InstanceSpec{
		Name:    name,
		Image:   image,
		Env:     map[string]string{"TESTAPP_EXIT_AFTER": "300ms", "TESTAPP_EXIT_CODE": "3"},
		Labels:  testLabels(domain.LabelID, moorID),
		Network: name,
	})
	if err != nil {
		t.Fatal(err)
	}
	removeLater(t, d, id)
	if err := d.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, d, id, "exit", 20*time.Second, func(s domain.InstanceState) bool { return s.Status == "exited" })
	if st.ExitCode != 3 || st.Running || st.Health != "" {
		t.Errorf("Inspect after crash = %+v", st)
	}
	list, err := d.List(ctx, map[string]string{domain.LabelID: moorID})
	if err != nil || len(list) != 1 || list[0].ExitCode != 3 || list[0].Status != "exited" || list[0].Running {
		t.Errorf("List after crash = %+v, %v", list, err)
	}
	if !waitEvents(func(evs []domain.RuntimeEvent) bool {
		ev, ok := hasEvent(evs, id, "die")
		return ok && ev.ExitCode == 3
	}, 10*time.Second) {
		t.Errorf("no die event with exit code 3: %+v", events())
	}
}

func TestEnsureImage(t *testing.T) {
	t.Parallel()
	image := testenv.TestImage(t)
	d := newTestDocker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("Present", func(t *testing.T) {
		calls := 0
		if err := d.EnsureImage(ctx, image, func(domain.PullProgress) { calls++ }); err != nil || calls != 0 {
			t.Fatalf("EnsureImage(present) = %v with %d progress calls; want nil and none", err, calls)
		}
	})

	t.Run("Unreachable registry", func(t *testing.T) {
		start := time.Now()
		err := d.EnsureImage(ctx, "127.0.0.1:1/moor-missing:nope", nil)
		if err == nil || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("EnsureImage(unreachable registry) = %v; want a plain error", err)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("took %v", took)
		}
		t.Logf("error: %v", err)
	})

	t.Run("Invalid reference", func(t *testing.T) {
		if err := d.EnsureImage(ctx, "Not A Reference", nil); err == nil {
			t.Fatal("EnsureImage(invalid) = nil")
		}
	})

	t.Run("Pull", func(t *testing.T) {
		reg := testenv.StartRegistry(t)
		repo := uniqueName("pull")
		ref := reg.PushImage(t, image, repo+":v1")
		t.Cleanup(func() {
			ctx, cancel := cleanupCtx()
			defer cancel()
			if _, err := d.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such image") {
				t.Errorf("cleanup: remove image %s: %v", ref, err)
			}
		})

		var progress []domain.PullProgress
		if err := d.EnsureImage(ctx, ref, func(p domain.PullProgress) { progress = append(progress, p) }); err != nil {
			t.Fatalf("EnsureImage(%s) = %v", ref, err)
		}
		var sawBytes, sawComplete bool
		for _, p := range progress {
			sawBytes = sawBytes || (p.Total > 0 && p.Current > 0 && p.ID != "")
			sawComplete = sawComplete || p.Status == "Pull complete"
		}
		if !sawComplete {
			t.Errorf("progress without a 'Pull complete': %+v", progress)
		}
		t.Logf("%d progress messages (bytes shown: %v)", len(progress), sawBytes)

		before := reg.Requests()
		if err := d.EnsureImage(ctx, ref, func(p domain.PullProgress) { t.Errorf("progress for a present image: %+v", p) }); err != nil {
			t.Fatal(err)
		}
		if after := reg.Requests(); after != before {
			t.Errorf("EnsureImage of a present image made %d registry requests", after-before)
		}

		for _, missing := range []string{reg.Addr() + "/" + repo + ":missing", reg.Addr() + "/no-such-repo:v1"} {
			err := d.EnsureImage(ctx, missing, nil)
			if !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("EnsureImage(%s) = %v; want ErrNotFound", missing, err)
			}
			t.Logf("missing: %v", err)
		}
	})
}

func TestEnsureNetworkConcurrent(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	name := uniqueName("race")
	var clients []*Docker
	for range 4 {
		clients = append(clients, newTestDocker(t, ""))
	}
	ensureNetworkForTest(t, clients[0], name+"-warm") // warm up the clients' negotiation
	t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		nets, _ := clients[0].networksNamed(ctx, name)
		for _, n := range nets {
			clients[0].cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, d := range clients {
		wg.Go(func() { errs[i] = d.EnsureNetwork(ctx, domain.NetworkSpec{Name: name, Labels: testLabels()}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	nets, err := clients[0].networksNamed(ctx, name)
	if err != nil || len(nets) != 1 {
		t.Fatalf("networks named %s after a race: %d (%v); want 1", name, len(nets), err)
	}
	if nets[0].Driver != "bridge" || nets[0].Labels[testenv.TestLabel] != "1" {
		t.Errorf("network %+v", nets[0])
	}
}

func TestEngineUnreachable(t *testing.T) {
	t.Parallel()
	testenv.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("No socket", func(t *testing.T) {
		d := newTestDocker(t, "unix:///nonexistent/moor-test/docker.sock")
		if err := d.Ping(ctx); !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("Ping = %v; want ErrUnavailable", err)
		}
		if _, err := d.List(ctx, nil); !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("List = %v; want ErrUnavailable", err)
		}
		if _, err := d.Inspect(ctx, "x"); !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("Inspect = %v; want ErrUnavailable", err)
		}
	})

	t.Run("Proxy cut and restored", func(t *testing.T) {
		p := testenv.StartDockerProxy(t)
		p.Cut()
		// Created while the engine is unreachable: the API version is
		// negotiated later.
		d := newTestDocker(t, p.Host())
		if err := d.Ping(ctx); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("Ping while cut = %v; want ErrUnavailable", err)
		}
		if _, err := d.List(ctx, testLabels()); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("List while cut = %v; want ErrUnavailable", err)
		}
		p.Restore()
		if _, err := d.List(ctx, testLabels()); err != nil {
			t.Fatalf("List after restore = %v (API version %s)", err, d.cli.ClientVersion())
		}
		if err := d.Ping(ctx); err != nil {
			t.Fatalf("Ping after restore = %v", err)
		}

		evs, errc := d.Events(ctx, map[string]string{domain.LabelID: "nothing-" + uniqueName("ev")})
		p.Cut()
		select {
		case err := <-errc:
			if !errors.Is(err, domain.ErrUnavailable) {
				t.Errorf("events error on cut = %v; want ErrUnavailable", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("events stream survived the cut")
		}
		if _, open := <-evs; open {
			t.Error("event channel still open after the stream failed")
		}
		if err := d.Ping(ctx); !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("Ping after second cut = %v; want ErrUnavailable", err)
		}
		p.Restore()
		if err := d.Ping(ctx); err != nil {
			t.Errorf("Ping after second restore = %v", err)
		}
	})
}

// TestHostNetworkDevicesLabels creates instances with what a type can ask
// beyond the usual (host networking, a device, labels, a host name, a
// read-only named volume) and checks with the engine's own inspect that
// each reached the container.
func TestHostNetworkDevicesLabels(t *testing.T) {
	t.Parallel()
	image := testenv.TestImage(t)
	d := newTestDocker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	name := uniqueName("hostnet")
	netName := name + "-net"
	volName := name + "-ro"
	ensureNetworkForTest(t, d, netName)
	ensureVolumeForTest(t, d, volName, testLabels())
	gw, err := d.NetworkGateway(ctx, netName)
	if ip, perr := netip.ParseAddr(gw); err != nil || perr != nil || !ip.Is4() {
		t.Fatalf("NetworkGateway = %q, %v", gw, err)
	}
	if _, err := d.NetworkGateway(ctx, name+"-missing"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("NetworkGateway of a missing network = %v; want ErrNotFound", err)
	}

	spec := domain.InstanceSpec{
		Name:  name,
		Image: image,
		// Listens on a free loopback port of the host: the test shares the
		// host's network stack and must not take a port anyone uses.
		Cmd:         []string{"-forward", "127.0.0.1:0=127.0.0.1:9"},
		Labels:      testLabels(domain.LabelID, "id-"+name, "com.example.role", "hub"),
		Network:     netName, // ignored: HostNetwork
		Aliases:     []string{"ignored"},
		HostNetwork: true,
		Hostname:    "hub-box",
		DNS:         []string{gw},
		Devices:     []domain.DeviceSpec{{HostPath: "/dev/null", ContainerPath: "/dev/moor-null", Permissions: "r"}},
		Mounts:      []domain.Mount{{Source: volName, Target: "/config", ReadOnly: true}},
		Ports:       []domain.PortSpec{{Name: "http", Port: 8096, Protocol: "tcp", HTTP: true}},
		Restart:     domain.RestartNever,
		TTY:         true,
	}
	id, err := d.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	removeLater(t, d, id)
	if err := d.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := waitFor(t, d, id, "running", 30*time.Second, func(s domain.InstanceState) bool {
		if s.Status == "exited" {
			t.Fatalf("container exited: %+v", s)
		}
		return s.Running
	})
	if st.IP != "" || len(st.IPs) != 0 {
		t.Errorf("a host-network instance has an address of its own: %q %v", st.IP, st.IPs)
	}

	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Container
	if c.HostConfig.NetworkMode != "host" || c.NetworkSettings.Networks[netName] != nil {
		t.Errorf("network mode %q, networks %v", c.HostConfig.NetworkMode, c.NetworkSettings.Networks)
	}
	if c.Config.Hostname != "hub-box" || !c.Config.Tty || !c.Config.OpenStdin {
		t.Errorf("hostname %q tty %v open stdin %v", c.Config.Hostname, c.Config.Tty, c.Config.OpenStdin)
	}
	if c.Config.Labels["com.example.role"] != "hub" || c.Config.Labels[domain.LabelID] != "id-"+name {
		t.Errorf("labels %v", c.Config.Labels)
	}
	if want := []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/moor-null", CgroupPermissions: "r"}}; !slices.Equal(c.HostConfig.Devices, want) {
		t.Errorf("devices %+v", c.HostConfig.Devices)
	}
	if !slices.Equal(c.HostConfig.DNS, []netip.Addr{netip.MustParseAddr(gw)}) {
		t.Errorf("dns %v", c.HostConfig.DNS)
	}
	var mounted bool
	for _, m := range c.Mounts {
		if m.Name == volName && m.Destination == "/config" && !m.RW {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("mounts %+v: want %s read-only at /config", c.Mounts, volName)
	}
}

// TestNetworkSubnets reads a network's subnets as the engine's own inspect
// shows them (the gateway lies in one); a missing network is ErrNotFound.
func TestNetworkSubnets(t *testing.T) {
	t.Parallel()
	d := newTestDocker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := uniqueName("subnets")
	ensureNetworkForTest(t, d, name)
	got, err := d.NetworkSubnets(ctx, name)
	if err != nil || len(got) == 0 {
		t.Fatalf("NetworkSubnets = %v, %v", got, err)
	}
	res, err := d.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Prefix
	for _, c := range res.Network.IPAM.Config {
		want = append(want, c.Subnet)
	}
	if !slices.Equal(got, domain.SortedPrefixes(want)) {
		t.Errorf("NetworkSubnets = %v, inspect says %v", got, want)
	}
	gw, err := d.NetworkGateway(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr(gw)) }) {
		t.Errorf("gateway %s in none of %v", gw, got)
	}
	if _, err := d.NetworkSubnets(ctx, name+"-missing"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("NetworkSubnets of a missing network = %v; want ErrNotFound", err)
	}
}
