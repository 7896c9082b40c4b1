package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

const installation = "inst-1"

// crash is what the hook panics with to stop a pass at a step, as a kill
// would: nothing after it runs, and a new Reconciler (a new process) goes on.
type crash struct{ step string }

type harness struct {
	t       *testing.T
	st      *memStore
	eng     *fakeEngine
	lk      *memLocker
	cfg     Config
	r       *Reconciler
	crashAt string
	steps   []string
}

func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, st: newMemStore(), eng: newFakeEngine(), lk: &memLocker{}}
	h.cfg = Config{InstallationID: installation, Network: "moor", ContainerZone: "moor.internal", TTL: 5,
		DNSServers: []string{"10.0.0.254"}, StopTimeout: time.Second, ReadyTimeout: 2 * time.Second}
	if edit != nil {
		edit(&h.cfg)
	}
	h.restart()
	return h
}

// restart replaces the Reconciler, as a new moor process would: what the
// old one kept in memory is gone.
func (h *harness) restart() {
	cfg := h.cfg
	cfg.Hook = func(step string) {
		h.steps = append(h.steps, step)
		if step == h.crashAt {
			panic(crash{step})
		}
	}
	h.r = New(h.st, h.eng, h.lk, plainOpener{}, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// reconcile runs one pass for container id and reports the step it crashed
// at ("" if none).
func (h *harness) reconcile(id string) (crashed string) {
	h.t.Helper()
	defer func() {
		if v := recover(); v != nil {
			c, ok := v.(crash)
			if !ok {
				panic(v)
			}
			crashed = c.step
		}
	}()
	h.r.reconcile(context.Background(), id)
	return ""
}

// settle runs passes until the container needs no more work, as events
// and resyncs would.
func (h *harness) settle(id string) domain.Container {
	h.t.Helper()
	for range 10 {
		h.reconcile(id)
		c, ok := h.st.get(id)
		if !ok {
			return c
		}
		states, _ := h.eng.List(context.Background(), map[string]string{domain.LabelID: id})
		if !NeedsWork(c, states, true) && c.Status != domain.StatusFailed {
			return c
		}
	}
	c, _ := h.st.get(id)
	return c
}

func (h *harness) container(id string) domain.Container {
	h.t.Helper()
	c, ok := h.st.get(id)
	if !ok {
		h.t.Fatalf("container %s is gone", id)
	}
	return c
}

// newContainer is a freshly created container of one replica with a
// volume and an HTTP port.
func newContainer(name string, edit ...func(*domain.Container)) domain.Container {
	c := domain.Container{
		ID: "id-" + name, Project: domain.DefaultProject, Name: name, Type: "app", Image: "app:1", Status: domain.StatusPending,
		DesiredState: domain.DesiredRunning, Replicas: 1, Generation: 1, Env: map[string]string{"A": "1"},
		Spec: domain.Type{ID: "app", Image: "app:1", Restart: domain.RestartAlways,
			Ports:   []domain.PortSpec{{Name: "http", Port: 8080, Protocol: "tcp", HTTP: true}},
			Volumes: []domain.VolumeSpec{{Name: "data", Path: "/data"}}},
		Instances: []domain.Instance{{Index: 0, Status: domain.StatusPending}},
	}
	for _, e := range edit {
		e(&c)
	}
	return c
}

// deploy records c and settles it: a running container to start from.
func (h *harness) deploy(c domain.Container) domain.Container {
	h.t.Helper()
	h.st.put(c)
	got := h.settle(c.ID)
	if got.Status != domain.StatusRunning {
		h.t.Fatalf("deploy %s: status %s (%s)", c.Name, got.Status, got.StatusReason)
	}
	return got
}

func policy(p domain.RestartPolicy) func(*domain.Container) {
	return func(c *domain.Container) { c.Spec.Restart = p }
}

func replicas(n int) func(*domain.Container) {
	return func(c *domain.Container) {
		c.Replicas = n
		c.Instances = nil
		for i := range n {
			c.Instances = append(c.Instances, domain.Instance{Index: i, Status: domain.StatusPending})
		}
	}
}

// checkRunning asserts the user's view of a healthy deploy: status
// running, every replica running in the runtime with its address and
// node recorded, a volume each, and container-zone names for each.
func checkRunning(t *testing.T, h *harness, id string, n int) domain.Container {
	t.Helper()
	c := h.container(id)
	if c.Status != domain.StatusRunning || c.StatusCause != domain.CauseNone || c.StatusReason != "" {
		t.Fatalf("status %s/%s (%s), want running", c.Status, c.StatusCause, c.StatusReason)
	}
	if got := h.eng.running(id); len(got) != n || h.eng.total(id) != n {
		t.Fatalf("runtime: %d running of %d instances, want %d", len(got), h.eng.total(id), n)
	}
	if len(c.Instances) != n {
		t.Fatalf("instances %+v, want %d", c.Instances, n)
	}
	for _, in := range c.Instances {
		if in.Status != domain.StatusRunning || in.RuntimeID == "" || in.InternalIP == "" || in.Node != "node-1" {
			t.Fatalf("instance %+v", in)
		}
	}
	// NAME and REPLICA.NAME, each as NAME.<zone> and NAME.default.<zone>
	if dns := h.st.dns[id]; len(dns) != 4*n {
		t.Fatalf("container-zone rows %v, want %d", dns, 4*n)
	}
	if len(h.eng.volumes) < n {
		t.Fatalf("volumes %v", h.eng.volumes)
	}
	return c
}

func TestDeploy(t *testing.T) {
	h := newHarness(t, nil)
	h.st.sealed["id-web"] = []byte("id-web:" + `{"SECRET":"s3"}`)
	h.st.put(newContainer("web"))
	h.reconcile("id-web")
	c := checkRunning(t, h, "id-web", 1)
	// The engine calls of a deploy: one list to find what exists; the
	// replica it created is read back by id, without a second list.
	if n := h.eng.count("List"); n != 1 {
		t.Errorf("a deploy listed instances %d times", n)
	}
	if c.ObservedGeneration != c.Generation {
		t.Errorf("observed generation %d of %d", c.ObservedGeneration, c.Generation)
	}
	want := []string{"container.created", "container.creating", "image.pull", "container.running"}
	if got := slices.Compact(h.st.kinds("id-web")); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if got := strings.Join(h.steps, ","); got != "creating,network,image,volumes,created,started,observed" {
		t.Errorf("steps %s", got)
	}
	st := h.eng.instances[c.Instances[0].RuntimeID]
	if st.Name != "moor-web-0" || st.Labels[domain.LabelOwner] != installation || st.Labels[domain.LabelReplica] != "0" ||
		st.Labels[domain.LabelName] != "web" || st.Labels[domain.LabelType] != "app" {
		t.Errorf("instance %+v", st)
	}
	if _, ok := h.eng.volumes["moor-web_data_0"]; !ok {
		t.Errorf("volumes %v", h.eng.volumes)
	}
	// A settled container costs no engine change on the next pass.
	before, events := len(h.eng.calls), len(h.st.kinds("id-web"))
	h.reconcile("id-web")
	for _, call := range h.eng.calls[before:] {
		if call != "List" && call != "Inspect" && call != "EnsureImage" && call != "EnsureVolume" {
			t.Errorf("settled pass called %s", call)
		}
	}
	if n := len(h.st.kinds("id-web")); n != events {
		t.Errorf("settled pass recorded events: %v", h.st.kinds("id-web"))
	}
}

func TestInstanceSpec(t *testing.T) {
	h := newHarness(t, nil)
	c := newContainer("db", func(c *domain.Container) {
		c.Spec.Command = []string{"serve"}
		c.Spec.Resources = domain.ResourceSpec{MemoryMB: 256, CPUs: 1.5}
		c.Spec.Volumes = append(c.Spec.Volumes, domain.VolumeSpec{Name: "conf", Path: "/etc/x", HostPath: "/srv/x", ReadOnly: true})
		c.Spec.Privileged = true
		c.Spec.Health = &domain.HealthSpec{Test: []string{"CMD", "/check"}}
	})
	s := h.r.instanceSpec(c, 2, map[string]string{"A": "1"})
	if s.Name != "moor-db-2" || s.Hostname != "db-2" || s.Network != "moor" || s.Image != "app:1" || s.Cmd[0] != "serve" ||
		s.MemoryBytes != 256<<20 || s.NanoCPUs != 1.5e9 || !s.Privileged || s.Health == nil || s.DNS[0] != "10.0.0.254" ||
		s.Restart != domain.RestartAlways || s.Labels[domain.LabelReplica] != "2" || s.Labels[domain.LabelID] != "id-db" {
		t.Errorf("spec %+v", s)
	}
	if !slices.Equal(s.Aliases, []string{"db.moor.internal", "2.db.moor.internal", "db.default.moor.internal", "2.db.default.moor.internal"}) {
		t.Errorf("aliases %v: want the zone names only (a bare name could capture moor's own services)", s.Aliases)
	}
	want := []domain.Mount{{Source: "moor-db_data_2", Target: "/data"}, {Source: "/srv/x", Target: "/etc/x", ReadOnly: true, Bind: true}}
	if !slices.Equal(s.Mounts, want) {
		t.Errorf("mounts %+v", s.Mounts)
	}
}

// TestProjectContainer: a container of another project gets its own
// engine names, its project's network (internal when the project is, with
// the router attached), and names within the project only; the network
// goes when the project does.
func TestProjectContainer(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Attach = []string{"traefik"} })
	h.st.projects = []domain.Project{{Name: "shop", Internal: true}}
	c := h.deploy(newContainer("web", func(c *domain.Container) { c.Project, c.ProjectInternal = "shop", true }))
	st := h.eng.instances[c.Instances[0].RuntimeID]
	if st.Name != "moor-web.shop-0" || st.Labels[domain.LabelProject] != "shop" {
		t.Errorf("instance %s labels %v", st.Name, st.Labels)
	}
	if _, ok := h.eng.volumes["moor-web.shop_data_0"]; !ok {
		t.Errorf("volumes %v", h.eng.volumes)
	}
	spec := h.eng.specs[c.Instances[0].RuntimeID]
	if spec.Network != "moor-p-shop" || !slices.Equal(spec.Aliases, []string{"web.shop.moor.internal", "0.web.shop.moor.internal"}) {
		t.Errorf("network %s aliases %v", spec.Network, spec.Aliases)
	}
	n := h.eng.networks["moor-p-shop"]
	if !n.Internal || !slices.Equal(n.Attach, []string{"traefik"}) || n.Labels[domain.LabelProject] != "shop" || n.Labels[domain.LabelOwner] != installation {
		t.Errorf("network %+v", n)
	}
	var names []string
	for _, e := range h.st.dns[c.ID] {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"web.shop.moor.internal", "0.web.shop.moor.internal"}) {
		t.Errorf("container zone %v", names)
	}
	// A project without containers still has its network; a deleted
	// project's goes at the next full pass, the default network stays.
	h.st.projects = append(h.st.projects, domain.Project{Name: "empty"})
	h.r.fullPass(context.Background(), true)
	if _, ok := h.eng.networks["moor-p-empty"]; !ok {
		t.Errorf("no network for an empty project: %v", h.eng.networks)
	}
	h.st.projects = h.st.projects[:1]
	h.r.fullPass(context.Background(), true)
	if _, ok := h.eng.networks["moor-p-empty"]; ok {
		t.Errorf("network of a deleted project kept")
	}
	if _, ok := h.eng.networks["moor-p-shop"]; !ok {
		t.Errorf("network of a project removed")
	}
}

// TestRouterNotAttached: a router that cannot be attached (not started
// yet) does not hold the deploy back; the network is asked again.
func TestRouterNotAttached(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Attach = []string{"missing"} })
	h.deploy(newContainer("web"))
	before := h.eng.count("EnsureNetwork")
	h.r.fullPass(context.Background(), true)
	if h.eng.count("EnsureNetwork") == before {
		t.Errorf("the full pass did not try to attach the router again")
	}
}

// TestInstanceSpecTypeFields: a type's host name, labels, devices and host
// networking reach the instance spec, and never moor's own labels.
func TestInstanceSpecTypeFields(t *testing.T) {
	h := newHarness(t, nil)
	c := newContainer("hub", func(c *domain.Container) {
		c.Spec.Hostname = "homeassistant"
		c.Spec.Labels = map[string]string{"com.example.role": "hub", domain.LabelID: "forged", domain.LabelReplica: "9"}
		c.Spec.Devices = []domain.DeviceSpec{{HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/zigbee", Permissions: "rw"}}
		c.Spec.Interactive = true
	})
	s0, s1 := h.r.instanceSpec(c, 0, nil), h.r.instanceSpec(c, 1, nil)
	if s0.Hostname != "homeassistant" || s1.Hostname != "homeassistant-1" {
		t.Errorf("hostnames %q, %q: want the type's for replica 0, suffixed for the others", s0.Hostname, s1.Hostname)
	}
	if s1.Labels["com.example.role"] != "hub" || s1.Labels[domain.LabelID] != "id-hub" || s1.Labels[domain.LabelReplica] != "1" {
		t.Errorf("labels %v: want the type's under moor's own", s1.Labels)
	}
	if c.Spec.Labels[domain.LabelID] != "forged" {
		t.Error("instanceSpec changed the type's labels")
	}
	if !slices.Equal(s0.Devices, c.Spec.Devices) || !s0.TTY {
		t.Errorf("devices %+v tty %v", s0.Devices, s0.TTY)
	}
	if s0.HostNetwork || s0.Network != "moor" || len(s0.Aliases) != 4 {
		t.Errorf("moor's network: host %v network %q aliases %v", s0.HostNetwork, s0.Network, s0.Aliases)
	}

	c.Published = []domain.PublishedPort{{Name: "http", Port: 8080, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 15432}}
	if s := h.r.instanceSpec(c, 0, nil); !slices.Equal(s.Published, c.Published) {
		t.Errorf("published %+v", s.Published)
	}
	c.Spec.Network = domain.NetworkHost
	s := h.r.instanceSpec(c, 0, nil)
	if !s.HostNetwork || s.Network != "" || s.Aliases != nil || !slices.Equal(s.DNS, []string{"10.0.0.254"}) || s.Published != nil {
		t.Errorf("host network: host %v network %q aliases %v dns %v published %v", s.HostNetwork, s.Network, s.Aliases, s.DNS, s.Published)
	}
}

// TestDeployHostNetwork: a replica on the host's network has no address of
// its own; it is recorded at the gateway of moor's network, where Traefik
// and the container zone reach the host, asked of the engine once.
func TestDeployHostNetwork(t *testing.T) {
	h := newHarness(t, nil)
	h.st.put(newContainer("media", func(c *domain.Container) {
		c.Spec.Network = domain.NetworkHost
		c.Spec.Ports = []domain.PortSpec{{Name: "http", Port: 8096, Protocol: "tcp", HTTP: true}}
	}))
	h.reconcile("id-media")
	c := checkRunning(t, h, "id-media", 1)
	if spec := h.eng.specs[c.Instances[0].RuntimeID]; !spec.HostNetwork {
		t.Errorf("created without host networking: %+v", spec)
	}
	if ip := c.Instances[0].InternalIP; ip != "10.0.0.1" {
		t.Errorf("address %q, want the network's gateway", ip)
	}
	for _, e := range h.st.dns["id-media"] {
		if e.Value != "10.0.0.1" {
			t.Errorf("container-zone record %+v", e)
		}
	}
	h.st.change("id-media", func(c *domain.Container) { c.RestartAt = time.Now() }, "container.restart_requested")
	h.reconcile("id-media")
	if n := h.eng.count("NetworkGateway"); n != 1 {
		t.Errorf("gateway asked %d times, want once", n)
	}
	if ip := h.container("id-media").Instances[0].InternalIP; ip != "10.0.0.1" {
		t.Errorf("address after a restart %q", ip)
	}

	// The gateway unknown: the replica runs, unrouted, and a later pass
	// finds the address.
	h2 := newHarness(t, nil)
	h2.eng.fail["NetworkGateway"] = errors.New("engine hiccup")
	h2.st.put(newContainer("media", func(c *domain.Container) { c.Spec.Network = domain.NetworkHost }))
	h2.reconcile("id-media")
	if c := h2.container("id-media"); c.Status != domain.StatusRunning || c.Instances[0].InternalIP != "" {
		t.Fatalf("without a gateway: %s %+v", c.Status, c.Instances)
	}
	h2.st.change("id-media", func(c *domain.Container) {}, "container.touched")
	h2.reconcile("id-media")
	if ip := h2.container("id-media").Instances[0].InternalIP; ip != "10.0.0.1" {
		t.Errorf("address after the hiccup %q", ip)
	}
}

func TestCredentials(t *testing.T) {
	h := newHarness(t, nil)
	h.st.sealed["id-a"] = []byte("id-a:" + `{"PASSWORD":"p"}`)
	env, err := h.r.env(context.Background(), newContainer("a"))
	if err != nil || env["PASSWORD"] != "p" || env["A"] != "1" {
		t.Fatalf("env %v, %v", env, err)
	}
	// Credentials sealed for another container do not open.
	h.st.sealed["id-b"] = []byte("id-a:" + `{"PASSWORD":"p"}`)
	h.st.put(newContainer("b"))
	h.reconcile("id-b")
	c := h.container("id-b")
	if c.Status != domain.StatusFailed || c.StatusCause != domain.CauseFailed || !strings.Contains(c.StatusReason, "open credentials") {
		t.Fatalf("status %s/%s %q", c.Status, c.StatusCause, c.StatusReason)
	}
	if h.eng.total("id-b") != 0 {
		t.Errorf("created an instance without its credentials")
	}
}

// TestBehindMoorsBack covers every restart policy against each way a
// replica can stop or go without moor asking.
func TestBehindMoorsBack(t *testing.T) {
	type outcome struct {
		status  domain.Status
		cause   domain.Cause
		desired domain.DesiredState
		running int
		reason  string
	}
	running := outcome{domain.StatusRunning, domain.CauseNone, domain.DesiredRunning, 1, ""}
	cases := []struct {
		policy domain.RestartPolicy
		act    string // exit0, exit1, removed
		want   outcome
	}{
		{domain.RestartAlways, "exit0", running},
		{domain.RestartAlways, "exit1", running},
		{domain.RestartAlways, "removed", running},
		{domain.RestartOnFailure, "exit0", outcome{domain.StatusStopped, domain.CauseStoppedOutside, domain.DesiredStopped, 0, "replica 0 exited with code 0 outside moor"}},
		{domain.RestartOnFailure, "exit1", running},
		{domain.RestartOnFailure, "removed", running},
		{domain.RestartNever, "exit0", outcome{domain.StatusStopped, domain.CauseStoppedOutside, domain.DesiredStopped, 0, "replica 0 exited with code 0 outside moor"}},
		{domain.RestartNever, "exit1", outcome{domain.StatusFailed, domain.CauseStoppedOutside, domain.DesiredStopped, 0, "replica 0 exited with code 1 outside moor"}},
		{domain.RestartNever, "removed", outcome{domain.StatusFailed, domain.CauseStoppedOutside, domain.DesiredStopped, 0, "replica 0 was removed outside moor"}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.policy, tc.act), func(t *testing.T) {
			h := newHarness(t, nil)
			c := h.deploy(newContainer("web", policy(tc.policy)))
			id := c.Instances[0].RuntimeID
			switch tc.act {
			case "exit0":
				h.eng.exit(id, 0)
			case "exit1":
				h.eng.exit(id, 1)
			case "removed":
				h.eng.Remove(context.Background(), id)
			}
			c = h.settle("id-web")
			got := outcome{c.Status, c.StatusCause, c.DesiredState, len(h.eng.running("id-web")), c.StatusReason}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.want.cause == domain.CauseStoppedOutside {
				if !slices.Contains(h.st.kinds("id-web"), "container.stopped_outside") {
					t.Errorf("events %v", h.st.kinds("id-web"))
				}
				if len(h.st.dns["id-web"]) != 0 {
					t.Errorf("a stopped container keeps container-zone names: %v", h.st.dns["id-web"])
				}
				// The reason stays through later passes (moor did not
				// stop it), until the user starts it again.
				h.reconcile("id-web")
				if c2 := h.container("id-web"); c2.StatusReason != tc.want.reason || c2.StatusCause != tc.want.cause {
					t.Errorf("after another pass: %s %q", c2.StatusCause, c2.StatusReason)
				}
				h.st.change("id-web", func(c *domain.Container) { c.DesiredState = domain.DesiredRunning }, "start_requested")
				h.settle("id-web")
				checkRunning(t, h, "id-web", 1)
			}
		})
	}
}

func TestDesiredAgainstObserved(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(h *harness) // from a deployed "web" with 2 replicas
		change  func(c *domain.Container)
		check   func(t *testing.T, h *harness)
	}{
		{"running/running", nil, nil, func(t *testing.T, h *harness) { checkRunning(t, h, "id-web", 2) }},
		{"running/created not started", func(h *harness) {
			// A crash between create and start leaves an instance that never ran.
			id := h.container("id-web").Instances[1].RuntimeID
			st := h.eng.instances[id]
			st.Running, st.Status, st.StartedAt = false, "created", time.Time{}
		}, nil, func(t *testing.T, h *harness) { checkRunning(t, h, "id-web", 2) }},
		{"running/extra replica", func(h *harness) {
			spec := h.r.instanceSpec(h.container("id-web"), 5, nil)
			id, _ := h.eng.Create(context.Background(), spec)
			h.eng.Start(context.Background(), id)
		}, nil, func(t *testing.T, h *harness) { checkRunning(t, h, "id-web", 2) }},
		{"running/duplicate replica", func(h *harness) {
			spec := h.r.instanceSpec(h.container("id-web"), 1, nil)
			spec.Name = "moor-web-1-copy"
			id, _ := h.eng.Create(context.Background(), spec)
			h.eng.Start(context.Background(), id)
		}, nil, func(t *testing.T, h *harness) { checkRunning(t, h, "id-web", 2) }},
		{"running/crash loop", func(h *harness) {
			st := h.eng.instances[h.container("id-web").Instances[0].RuntimeID]
			st.Restarting, st.ExitCode, st.RestartCount = true, 3, 7
		}, nil, func(t *testing.T, h *harness) {
			c := h.container("id-web")
			if c.Status != domain.StatusFailed || c.StatusCause != domain.CauseFailed || c.StatusReason != "replica 0 keeps crashing (exit code 3, 7 restarts)" {
				t.Fatalf("%s/%s %q", c.Status, c.StatusCause, c.StatusReason)
			}
			if c.Instances[0].InternalIP != "" || len(h.st.dns["id-web"]) != 4 {
				t.Errorf("a crashing replica keeps its names: %+v %v", c.Instances[0], h.st.dns["id-web"])
			}
		}},
		{"scale up", nil, func(c *domain.Container) { c.Replicas = 4 }, func(t *testing.T, h *harness) {
			checkRunning(t, h, "id-web", 4)
		}},
		{"scale down", nil, func(c *domain.Container) { c.Replicas = 1 }, func(t *testing.T, h *harness) {
			checkRunning(t, h, "id-web", 1)
		}},
		{"scale to zero", nil, func(c *domain.Container) { c.Replicas = 0 }, func(t *testing.T, h *harness) {
			if c := h.container("id-web"); c.Status != domain.StatusRunning || len(c.Instances) != 0 || h.eng.total("id-web") != 0 {
				t.Fatalf("%+v, %d instances", c, h.eng.total("id-web"))
			}
		}},
		{"stopped/running", nil, func(c *domain.Container) { c.DesiredState = domain.DesiredStopped }, func(t *testing.T, h *harness) {
			c := h.container("id-web")
			if c.Status != domain.StatusStopped || len(h.eng.running("id-web")) != 0 || h.eng.total("id-web") != 2 {
				t.Fatalf("status %s, %d running of %d", c.Status, len(h.eng.running("id-web")), h.eng.total("id-web"))
			}
			if len(h.st.dns["id-web"]) != 0 || c.InternalIP != "" {
				t.Errorf("a stopped container keeps its names: %v", h.st.dns["id-web"])
			}
		}},
		{"stopped/stopped and scaled down", func(h *harness) {
			for _, id := range h.eng.running("id-web") {
				h.eng.Stop(context.Background(), id, 0)
			}
		}, func(c *domain.Container) { c.DesiredState = domain.DesiredStopped; c.Replicas = 1 }, func(t *testing.T, h *harness) {
			if c := h.container("id-web"); c.Status != domain.StatusStopped || h.eng.total("id-web") != 1 || h.eng.count("Stop") != 2 {
				t.Fatalf("status %s, %d instances, %d stops", c.Status, h.eng.total("id-web"), h.eng.count("Stop"))
			}
		}},
		{"removed/running", nil, func(c *domain.Container) { c.DesiredState = domain.DesiredRemoved; c.Status = domain.StatusRemoving }, func(t *testing.T, h *harness) {
			if _, ok := h.st.get("id-web"); ok || h.eng.total("id-web") != 0 || len(h.eng.volumes) != 0 {
				t.Fatalf("left: record %v, %d instances, volumes %v", ok, h.eng.total("id-web"), h.eng.volumes)
			}
			if k := h.st.kinds("id-web"); k[len(k)-1] != "container.removed" {
				t.Errorf("events %v", k)
			}
		}},
		{"removed/gone already, volumes kept", func(h *harness) {
			for _, id := range h.eng.running("id-web") {
				h.eng.Remove(context.Background(), id)
			}
		}, func(c *domain.Container) {
			c.DesiredState, c.Status, c.KeepVolumes = domain.DesiredRemoved, domain.StatusRemoving, true
		}, func(t *testing.T, h *harness) {
			if _, ok := h.st.get("id-web"); ok || len(h.eng.volumes) != 2 {
				t.Fatalf("record %v, volumes %v", ok, h.eng.volumes)
			}
		}},
		{"restart", nil, func(c *domain.Container) { c.RestartAt = time.Now() }, func(t *testing.T, h *harness) {
			c := checkRunning(t, h, "id-web", 2)
			if !c.RestartAt.IsZero() || h.eng.count("Stop") != 2 || h.eng.count("Create") != 2 {
				t.Fatalf("restart pending %v, %d stops, %d creates", c.RestartAt, h.eng.count("Stop"), h.eng.count("Create"))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.deploy(newContainer("web", replicas(2)))
			if tc.prepare != nil {
				tc.prepare(h)
			}
			if tc.change != nil {
				h.st.change("id-web", tc.change, "change_requested")
			}
			h.settle("id-web")
			tc.check(t, h)
		})
	}
}

// TestEngineErrors fails each engine call once: the container is failed
// with a reason naming the step, and the next pass repairs it.
func TestEngineErrors(t *testing.T) {
	for _, method := range []string{"EnsureNetwork", "EnsureImage", "EnsureVolume", "Create", "Start"} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, nil)
			h.eng.fail[method] = errors.New("engine said no")
			h.st.put(newContainer("web"))
			h.reconcile("id-web")
			c := h.container("id-web")
			if c.Status != domain.StatusFailed || c.StatusCause != domain.CauseFailed || !strings.Contains(c.StatusReason, "engine said no") {
				t.Fatalf("status %s/%s %q", c.Status, c.StatusCause, c.StatusReason)
			}
			if !slices.Contains(h.st.kinds("id-web"), "container.failed") {
				t.Errorf("events %v", h.st.kinds("id-web"))
			}
			h.settle("id-web")
			checkRunning(t, h, "id-web", 1)
		})
	}
	t.Run("host port taken", func(t *testing.T) {
		h := newHarness(t, nil)
		h.eng.fail["Start"] = fmt.Errorf("start container x: %w", &domain.PortInUseError{HostIP: "127.0.0.1", HostPort: 15432,
			By: domain.PortHeldByProgram, Err: errors.New("listen tcp4 127.0.0.1:15432: bind: address already in use")})
		h.st.put(newContainer("db"))
		h.reconcile("id-db")
		c := h.container("id-db")
		want := "host port 15432 (127.0.0.1) is already in use on this host (by another program: ss -tulpn shows which): " +
			"choose another host_port with PATCH /api/v1/containers/db"
		if c.Status != domain.StatusFailed || !strings.HasPrefix(c.StatusReason, want) || !strings.Contains(c.StatusReason, "moor tries again in 2s") {
			t.Fatalf("status %s %q", c.Status, c.StatusReason)
		}
		h.settle("id-db")
		checkRunning(t, h, "id-db", 1)
	})
	t.Run("missing image, once recorded", func(t *testing.T) {
		h := newHarness(t, nil)
		h.st.put(newContainer("web", func(c *domain.Container) { c.Image = "nope:1" }))
		h.reconcile("id-web")
		h.reconcile("id-web")
		c := h.container("id-web")
		if c.Status != domain.StatusFailed || !strings.Contains(c.StatusReason, "image nope:1") {
			t.Fatalf("status %s %q", c.Status, c.StatusReason)
		}
		n := 0
		for _, k := range h.st.kinds("id-web") {
			if k == "container.failed" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the same failure recorded %d times", n)
		}
	})
	t.Run("stop", func(t *testing.T) {
		h := newHarness(t, nil)
		h.deploy(newContainer("web"))
		h.eng.fail["Stop"] = errors.New("engine said no")
		h.st.change("id-web", func(c *domain.Container) { c.DesiredState = domain.DesiredStopped }, "stop_requested")
		h.reconcile("id-web")
		if c := h.container("id-web"); c.Status != domain.StatusFailed || !strings.Contains(c.StatusReason, "stop: engine said no") {
			t.Fatalf("status %s %q", c.Status, c.StatusReason)
		}
		h.settle("id-web")
		if c := h.container("id-web"); c.Status != domain.StatusStopped {
			t.Fatalf("status %s", c.Status)
		}
	})
	t.Run("remove", func(t *testing.T) {
		for _, method := range []string{"Remove", "ListVolumes", "RemoveVolume"} {
			h := newHarness(t, nil)
			h.deploy(newContainer("web"))
			h.eng.fail[method] = errors.New("engine said no")
			h.st.change("id-web", func(c *domain.Container) { c.DesiredState, c.Status = domain.DesiredRemoved, domain.StatusRemoving }, "remove_requested")
			h.reconcile("id-web")
			// A failing removal stays "removing" (it is on its way), with why.
			if c := h.container("id-web"); c.Status != domain.StatusRemoving || !strings.Contains(c.StatusReason, "engine said no") {
				t.Fatalf("%s: status %s %q", method, c.Status, c.StatusReason)
			}
			h.settle("id-web")
			if _, ok := h.st.get("id-web"); ok || len(h.eng.volumes) != 0 {
				t.Fatalf("%s: not removed", method)
			}
		}
	})
	t.Run("engine away", func(t *testing.T) {
		h := newHarness(t, nil)
		h.st.put(newContainer("web"))
		h.eng.down = fmt.Errorf("dial: %w", domain.ErrUnavailable)
		h.reconcile("id-web")
		// Not the container's fault: nothing recorded against it.
		if c := h.container("id-web"); c.Status != domain.StatusPending {
			t.Fatalf("status %s %q", c.Status, c.StatusReason)
		}
		h.eng.down = nil
		h.settle("id-web")
		checkRunning(t, h, "id-web", 1)
	})
}

// TestVanishedInstance: an instance removed between the list and the
// inspect makes the pass start over instead of failing the container.
func TestVanishedInstance(t *testing.T) {
	h := newHarness(t, nil)
	c := h.deploy(newContainer("web"))
	h.eng.exit(c.Instances[0].RuntimeID, 0)
	h.eng.fail["Inspect"] = fmt.Errorf("no such container: %w", domain.ErrNotFound)
	h.reconcile("id-web")
	if c := h.container("id-web"); c.Status == domain.StatusFailed {
		t.Fatalf("failed on a vanished instance: %q", c.StatusReason)
	}
	h.r.mu.Lock()
	again := h.r.dirty["id-web"]
	h.r.mu.Unlock()
	if !again {
		t.Errorf("a vanished instance does not make the container be looked at again")
	}
	h.settle("id-web")
	checkRunning(t, h, "id-web", 1)
}

func TestStoreErrors(t *testing.T) {
	for _, method := range []string{"GetContainerByID", "RecordObservation", "SealedSecrets", "FinishRemoval"} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, nil)
			h.st.sealed["id-web"] = []byte(`id-web:{}`)
			h.st.fail[method] = errors.New("database away")
			h.st.put(newContainer("web"))
			h.reconcile("id-web")
			h.settle("id-web")
			checkRunning(t, h, "id-web", 1)
			h.st.fail[method] = errors.New("database away")
			h.st.change("id-web", func(c *domain.Container) { c.DesiredState, c.Status = domain.DesiredRemoved, domain.StatusRemoving }, "remove_requested")
			h.settle("id-web")
			if _, ok := h.st.get("id-web"); ok {
				t.Fatalf("not removed")
			}
		})
	}
}

// TestCrashAtEachStep kills the pass at each step of a deploy and of a
// removal; a new process finishes the work with nothing left over or
// done twice.
func TestCrashAtEachStep(t *testing.T) {
	for _, step := range []string{"creating", "network", "image", "volumes", "created", "started", "observed"} {
		t.Run("deploy/"+step, func(t *testing.T) {
			h := newHarness(t, nil)
			h.st.put(newContainer("web", replicas(2)))
			h.crashAt = step
			if got := h.reconcile("id-web"); got != step {
				t.Fatalf("crashed at %q, want %q", got, step)
			}
			h.crashAt = ""
			h.restart()
			h.settle("id-web")
			checkRunning(t, h, "id-web", 2)
			if n := h.eng.count("Create"); n > 3 {
				t.Errorf("%d creates for 2 replicas and one crash", n)
			}
		})
	}
	for _, step := range []string{"drained", "removed-containers", "removed-volumes"} {
		t.Run("remove/"+step, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Drain = time.Millisecond })
			h.deploy(newContainer("web", replicas(2)))
			h.st.change("id-web", func(c *domain.Container) { c.DesiredState, c.Status = domain.DesiredRemoved, domain.StatusRemoving }, "remove_requested")
			h.crashAt = step
			for range 50 {
				if h.reconcile("id-web") == step {
					break
				}
				time.Sleep(2 * time.Millisecond) // the drain
			}
			if !slices.Contains(h.steps, step) {
				t.Fatalf("never reached %s: %v", step, h.steps)
			}
			h.crashAt = ""
			h.restart()
			for range 50 {
				h.reconcile("id-web")
				if _, ok := h.st.get("id-web"); !ok {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			if _, ok := h.st.get("id-web"); ok || h.eng.total("id-web") != 0 || len(h.eng.volumes) != 0 {
				t.Fatalf("left over: %d instances, volumes %v", h.eng.total("id-web"), h.eng.volumes)
			}
		})
	}
}

// TestDrain: replicas about to stop leave the routes and the container
// zone first, and stop only after cfg.Drain.
func TestDrain(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Drain = 50 * time.Millisecond })
	h.deploy(newContainer("web", replicas(2)))
	h.st.change("id-web", func(c *domain.Container) { c.DesiredState = domain.DesiredStopped }, "stop_requested")
	start := time.Now()
	h.reconcile("id-web")
	c := h.container("id-web")
	if len(h.eng.running("id-web")) != 2 {
		t.Fatalf("stopped before the drain")
	}
	for _, in := range c.Instances {
		if in.Status != domain.StatusStopping {
			t.Fatalf("instance %+v not draining", in)
		}
	}
	if len(h.st.dns["id-web"]) != 0 {
		t.Fatalf("draining replicas keep names: %v", h.st.dns["id-web"])
	}
	// The drain ends on its own: the container comes back through r.due.
	select {
	case id := <-h.r.due:
		if id != "id-web" {
			t.Fatalf("due %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the drain never ended")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("drain ended after %v", d)
	}
	h.reconcile("id-web")
	if c := h.container("id-web"); c.Status != domain.StatusStopped || len(h.eng.running("id-web")) != 0 {
		t.Fatalf("status %s, %d running", c.Status, len(h.eng.running("id-web")))
	}

	// A rolling restart drains one replica at a time and waits for it.
	h.st.change("id-web", func(c *domain.Container) { c.DesiredState = domain.DesiredRunning }, "start_requested")
	h.settle("id-web")
	h.st.change("id-web", func(c *domain.Container) { c.RestartAt = time.Now() }, "restart_requested")
	h.reconcile("id-web")
	c = checkRunning(t, h, "id-web", 2)
	if !c.RestartAt.IsZero() || h.eng.count("Stop") != 4 {
		t.Fatalf("restart pending %v, %d stops", c.RestartAt, h.eng.count("Stop"))
	}
}

// TestWaitReady: a rolling restart waits for a restarted replica's health
// check, and gives up on one that fails or never gets ready.
func TestWaitReady(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ReadyTimeout = 100 * time.Millisecond })
	c := h.deploy(newContainer("web", func(c *domain.Container) { c.Spec.Health = &domain.HealthSpec{Test: []string{"CMD", "x"}} }))
	id := c.Instances[0].RuntimeID
	for _, tc := range []struct {
		health string
		min    time.Duration
	}{{"healthy", 0}, {"unhealthy", 0}, {"starting", 100 * time.Millisecond}} {
		h.eng.instances[id].Health = tc.health
		start := time.Now()
		h.r.waitReady(context.Background(), c, 0, id)
		if d := time.Since(start); d < tc.min || d > tc.min+2*time.Second {
			t.Errorf("%s: waited %v", tc.health, d)
		}
	}
}

// TestRun drives the loop: events wake it, a timed pass repairs drift and
// removes orphans, the engine's events schedule a container, and an engine
// that goes away is reported.
func TestRun(t *testing.T) {
	// No timed pass meanwhile: what happens is the events' doing.
	h := newHarness(t, func(c *Config) { c.Resync = time.Hour })
	h.eng.images["app:1"] = true
	// A long event log: starting reads none of it (it asks where it ends).
	for range 5000 {
		h.st.AppendEvent(context.Background(), "image.pull", "id-old", "old", nil)
	}
	orphan, _ := h.eng.Create(context.Background(), domain.InstanceSpec{Name: "moor-gone-0", Image: "app:1",
		Labels: map[string]string{domain.LabelOwner: installation, domain.LabelID: "id-gone"}})
	h.eng.Create(context.Background(), domain.InstanceSpec{Name: "other", Image: "app:1", Labels: map[string]string{domain.LabelOwner: "someone-else"}})
	// A backup's helper is no orphan.
	helper, _ := h.eng.Create(context.Background(), domain.InstanceSpec{Name: "moor-backup-v", Image: "app:1",
		Labels: map[string]string{domain.LabelOwner: installation, domain.LabelHelper: domain.HelperBackup}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eventually(t, "the orphan removed", func() bool {
		_, err := h.eng.Inspect(context.Background(), orphan)
		return errors.Is(err, domain.ErrNotFound)
	})
	if h.eng.total("") != 2 {
		t.Errorf("removed another installation's instance")
	}
	if _, err := h.eng.Inspect(context.Background(), helper); err != nil {
		t.Errorf("the helper of a volume copy was removed: %v", err)
	}
	eventually(t, "engine ready", func() bool { ok, _ := h.r.EngineReady(); return ok })
	h.st.mu.Lock()
	reads := h.st.reads
	h.st.mu.Unlock()
	if reads != 0 {
		t.Errorf("startup read the event log %d times", reads)
	}

	// A new container and its event.
	h.st.put(newContainer("web"))
	seq, _ := h.st.LastEventSeq(ctx)
	h.r.Notify(seq)
	eventually(t, "web running", func() bool { return h.container("id-web").Status == domain.StatusRunning })

	// An engine event for one of moor's instances.
	id := h.container("id-web").Instances[0].RuntimeID
	h.eng.exit(id, 1)
	var evs chan domain.RuntimeEvent
	eventually(t, "an event stream", func() bool {
		h.eng.mu.Lock()
		defer h.eng.mu.Unlock()
		evs = h.eng.events
		return evs != nil
	})
	evs <- domain.RuntimeEvent{RuntimeID: id, Action: "die", Labels: map[string]string{domain.LabelID: "id-web"}}
	eventually(t, "web restarted", func() bool { return len(h.eng.running("id-web")) == 1 })

	// The engine goes away and comes back.
	h.eng.mu.Lock()
	h.eng.down = fmt.Errorf("dial: %w", domain.ErrUnavailable)
	h.eng.mu.Unlock()
	h.eng.mu.Lock()
	errs := h.eng.errs
	h.eng.mu.Unlock()
	errs <- errors.New("stream broke")
	eventually(t, "engine reported away", func() bool { ok, why := h.r.EngineReady(); return !ok && strings.Contains(why, "dial") })
	h.eng.mu.Lock()
	h.eng.down = nil
	h.eng.mu.Unlock()
	eventually(t, "engine back", func() bool { ok, _ := h.r.EngineReady(); return ok })

	// Reconnected listeners ask for a full pass.
	h.st.put(newContainer("api"))
	h.r.Notify(0)
	eventually(t, "api running", func() bool { c, _ := h.st.get("id-api"); return c.Status == domain.StatusRunning })
}

func TestRunNeedsTheEventLog(t *testing.T) {
	h := newHarness(t, nil)
	h.st.fail["LastEventSeq"] = errors.New("database away")
	if err := h.r.Run(context.Background()); err == nil {
		t.Fatal("Run started without knowing where the event log ends")
	}
}

// TestLocking: a container locked by another process is left to it.
func TestLocking(t *testing.T) {
	h := newHarness(t, nil)
	h.st.put(newContainer("web"))
	h.lk.refuse = true
	h.reconcile("id-web")
	if c := h.container("id-web"); c.Status != domain.StatusPending || len(h.eng.calls) != 0 {
		t.Fatalf("worked on a container locked elsewhere: %s, %v", c.Status, h.eng.calls)
	}
	h.lk.refuse = false
	h.lk.failing = errors.New("database away")
	h.reconcile("id-web")
	if c := h.container("id-web"); c.Status != domain.StatusPending {
		t.Fatalf("worked without a lock: %s", c.Status)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOwnEventsScheduleNothing: the runtime events of moor's own calls do
// not schedule another pass (it would find what the first one recorded);
// an event moor did not cause does.
func TestOwnEventsScheduleNothing(t *testing.T) {
	h := newHarness(t, nil)
	c := h.deploy(newContainer("web"))
	id := c.Instances[0].RuntimeID
	labels := map[string]string{domain.LabelID: "id-web"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, errs := make(chan domain.RuntimeEvent, 8), make(chan error)
	done := make(chan struct{})
	go func() { h.r.consumeEvents(ctx, evs, errs); close(done) }()
	scheduled := func() bool {
		h.r.mu.Lock()
		defer h.r.mu.Unlock()
		return h.r.active["id-web"] || h.r.dirty["id-web"]
	}
	for _, action := range []string{"create", "start"} {
		evs <- domain.RuntimeEvent{RuntimeID: id, Action: action, Labels: labels}
	}
	// A health-check exec is no state change either.
	evs <- domain.RuntimeEvent{RuntimeID: id, Action: "exec_start: /check", Labels: labels}
	time.Sleep(50 * time.Millisecond)
	if scheduled() || h.eng.count("Create") != 1 || len(h.r.own) != 0 {
		t.Fatalf("own events scheduled a pass (own left: %v)", h.r.own)
	}
	passes := h.eng.count("List")
	h.eng.exit(id, 137)
	evs <- domain.RuntimeEvent{RuntimeID: id, Action: "die", Labels: labels}
	eventually(t, "a pass for the die event", func() bool { return h.eng.count("List") > passes })
	eventually(t, "the replica restarted", func() bool { return len(h.eng.running("id-web")) == 1 })
	cancel()
	<-done
}

// TestImageRemovedBehindBack: the image's presence is checked once per
// process; when a create finds it gone, it is pulled again at once, not
// failed.
func TestImageRemovedBehindBack(t *testing.T) {
	h := newHarness(t, nil)
	h.deploy(newContainer("a"))
	h.deploy(newContainer("b"))
	if n := h.eng.count("EnsureImage"); n != 1 {
		t.Errorf("image checked %d times for two deploys of one image", n)
	}
	delete(h.eng.images, "app:1")
	h.st.put(newContainer("c"))
	h.reconcile("id-c")
	if c := h.container("id-c"); c.Status == domain.StatusFailed {
		t.Fatalf("failed: %q", c.StatusReason)
	}
	h.settle("id-c")
	checkRunning(t, h, "id-c", 1)
	if !slices.Contains(h.st.kinds("id-c"), "image.pull") {
		t.Errorf("image not pulled again: %v", h.st.kinds("id-c"))
	}
	// A create that keeps failing is recorded, not retried in a loop.
	h.eng.fail["Create"] = fmt.Errorf("no such image: %w", domain.ErrNotFound)
	h.st.put(newContainer("d"))
	h.reconcile("id-d")
	h.eng.fail["Create"] = fmt.Errorf("no such image: %w", domain.ErrNotFound)
	h.reconcile("id-d")
	if c := h.container("id-d"); c.Status != domain.StatusFailed || !strings.Contains(c.StatusReason, "no such image") {
		t.Fatalf("status %s %q", c.Status, c.StatusReason)
	}
}

// TestReplaceOutdatedReplicas: a new image or environment (a higher
// ConfigVersion) replaces every replica, one at a time, with the new
// settings; a crash half-way is finished by the next pass.
func TestReplaceOutdatedReplicas(t *testing.T) {
	for _, crashAt := range []string{"", "replaced", "created"} {
		t.Run("crash at "+crashAt, func(t *testing.T) {
			h := newHarness(t, nil)
			h.deploy(newContainer("web", replicas(2)))
			h.eng.images["app:2"] = true
			before := h.eng.running("id-web")
			h.st.change("id-web", func(c *domain.Container) {
				c.Image, c.Env, c.ConfigVersion = "app:2", map[string]string{"A": "2"}, 2
				c.Generation++
			}, "update_requested")
			h.crashAt = crashAt
			h.reconcile("id-web")
			h.crashAt = ""
			h.restart()
			c := h.settle("id-web")
			after := h.eng.running("id-web")
			if c.Status != domain.StatusRunning || len(after) != 2 || h.eng.total("id-web") != 2 {
				t.Fatalf("status %s (%s), running %v, total %d", c.Status, c.StatusReason, after, h.eng.total("id-web"))
			}
			for _, id := range after {
				if slices.Contains(before, id) {
					t.Errorf("replica %s was kept", id)
				}
				spec := h.eng.specs[id]
				if spec.Image != "app:2" || spec.Env["A"] != "2" || spec.Labels[domain.LabelConfig] != "2" {
					t.Errorf("replica %s: image %s env %v labels %v", id, spec.Image, spec.Env, spec.Labels)
				}
			}
			states, _ := h.eng.List(context.Background(), map[string]string{domain.LabelID: "id-web"})
			if NeedsWork(c, states, false) {
				t.Error("still needs work")
			}
		})
	}
}

// TestProjectSubnetsRecorded: each project's network subnets reach the
// store when the network is ensured (the default project's with its first
// container) and are healed by the full pass when the engine's change;
// nothing is written while they stay the same.
func TestProjectSubnetsRecorded(t *testing.T) {
	h := newHarness(t, nil)
	h.st.projects = []domain.Project{{Name: "shop"}}
	ctx := context.Background()
	h.r.fullPass(ctx, true)
	if got := h.st.subnets["shop"]; !slices.Equal(got, []string{"10.1.0.0/16"}) {
		t.Fatalf("shop's subnets after the full pass: %v", got)
	}
	if _, ok := h.st.subnets[domain.DefaultProject]; ok {
		t.Fatalf("the default project's subnets before its network exists: %v", h.st.subnets)
	}
	h.deploy(newContainer("web"))
	if got := h.st.subnets[domain.DefaultProject]; !slices.Equal(got, []string{"10.2.0.0/16"}) {
		t.Fatalf("default's subnets after its first container: %v", got)
	}
	writes := h.st.subnetWrites
	h.r.fullPass(ctx, true)
	if h.st.subnetWrites != writes {
		t.Errorf("%d writes of unchanged subnets", h.st.subnetWrites-writes)
	}
	// The engine's subnets change behind moor's back (a network made again).
	h.eng.mu.Lock()
	h.eng.subnets["moor-p-shop"] = []netip.Prefix{netip.MustParsePrefix("fd00:9::/64"), netip.MustParsePrefix("10.9.0.0/16")}
	h.eng.mu.Unlock()
	h.r.fullPass(ctx, true)
	if got := h.st.subnets["shop"]; !slices.Equal(got, []string{"10.9.0.0/16", "fd00:9::/64"}) {
		t.Errorf("shop's subnets after the engine's changed: %v", got)
	}
	// A failed write is tried again by the next pass.
	h.eng.mu.Lock()
	h.eng.subnets["moor-p-shop"] = []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}
	h.eng.mu.Unlock()
	h.st.fail["RecordProjectSubnets"] = errors.New("database gone")
	h.r.fullPass(ctx, true)
	h.r.fullPass(ctx, true)
	if got := h.st.subnets["shop"]; !slices.Equal(got, []string{"10.10.0.0/16"}) {
		t.Errorf("shop's subnets after a failed write and a pass: %v", got)
	}
}
