package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/moorhq/moor/internal/domain"
)

// Unit tests of the conversions between moor's types and the engine's; they
// need no Docker.

func TestCreateOptions(t *testing.T) {
	spec := domain.InstanceSpec{
		Name:        "moor-blog-0",
		Image:       "nginx:1.27",
		Env:         map[string]string{"Z": "1", "A": "2", "M": "x=y"},
		Cmd:         []string{"serve"},
		Labels:      map[string]string{domain.LabelID: "abc"},
		Network:     "moor",
		Aliases:     []string{"blog"},
		Mounts:      []domain.Mount{{Source: "moor-blog-data", Target: "/data"}, {Source: "/srv/x", Target: "/x", ReadOnly: true, Bind: true}},
		MemoryBytes: 1 << 30,
		NanoCPUs:    1_500_000_000,
		Health:      &domain.HealthSpec{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 2},
		Restart:     domain.RestartAlways,
		DNS:         []string{"10.0.0.53", ""},
		Ports:       []domain.PortSpec{{Port: 80}, {Port: 53, Protocol: "UDP"}},
		Hostname:    "blog",
	}
	o, err := createOptions(spec)
	if err != nil {
		t.Fatal(err)
	}
	if o.Name != spec.Name || o.Config.Image != spec.Image || o.Config.Hostname != "blog" || !slices.Equal(o.Config.Cmd, spec.Cmd) || o.Config.Tty || o.Config.OpenStdin {
		t.Errorf("config %+v", o.Config)
	}
	if want := []string{"A=2", "M=x=y", "Z=1"}; !slices.Equal(o.Config.Env, want) {
		t.Errorf("env %v; want %v", o.Config.Env, want)
	}
	for _, p := range []string{"80/tcp", "53/udp"} {
		if _, ok := o.Config.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("port %s not exposed: %v", p, o.Config.ExposedPorts)
		}
	}
	if h := o.Config.Healthcheck; h == nil || h.Interval != time.Second || h.Retries != 2 || !slices.Equal(h.Test, []string{"CMD", "true"}) {
		t.Errorf("healthcheck %+v", h)
	}
	hc := o.HostConfig
	if hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped || hc.Memory != 1<<30 || hc.NanoCPUs != 1_500_000_000 || hc.NetworkMode != "moor" {
		t.Errorf("host config %+v", hc)
	}
	if !slices.Equal(hc.DNS, []netip.Addr{netip.MustParseAddr("10.0.0.53")}) {
		t.Errorf("dns %v", hc.DNS)
	}
	if len(hc.Mounts) != 1 || hc.Mounts[0].Source != "moor-blog-data" || hc.Mounts[0].Type != "volume" {
		t.Errorf("mounts %+v", hc.Mounts)
	}
	if !slices.Equal(hc.Binds, []string{"/srv/x:/x:ro"}) {
		t.Errorf("binds %v", hc.Binds)
	}
	if ep := o.NetworkingConfig.EndpointsConfig["moor"]; ep == nil || !slices.Equal(ep.Aliases, []string{"blog"}) {
		t.Errorf("endpoints %+v", o.NetworkingConfig.EndpointsConfig)
	}

	for policy, want := range map[domain.RestartPolicy]container.RestartPolicyMode{
		domain.RestartAlways: "unless-stopped", domain.RestartOnFailure: "on-failure", domain.RestartNever: "no", "": "no",
	} {
		if got := restartPolicy(policy).Name; got != want {
			t.Errorf("restart %q -> %q; want %q", policy, got, want)
		}
	}

	minimal, err := createOptions(domain.InstanceSpec{Image: "x", Health: &domain.HealthSpec{}})
	if err != nil || minimal.NetworkingConfig != nil || minimal.Config.Healthcheck != nil || minimal.Config.ExposedPorts != nil || minimal.Config.Env != nil {
		t.Errorf("minimal spec: %+v, %v", minimal, err)
	}

	for _, bad := range []domain.InstanceSpec{
		{},
		{Image: "x", DNS: []string{"resolver.example"}},
		{Image: "x", Ports: []domain.PortSpec{{Port: 70000}}},
		{Image: "x", Mounts: []domain.Mount{{Target: "/data"}}},
		{Image: "x", Devices: []domain.DeviceSpec{{ContainerPath: "/dev/x"}}},
	} {
		if _, err := createOptions(bad); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("createOptions(%+v) = %v; want ErrInvalid", bad, err)
		}
	}
}

func TestCreateOptionsHostNetworkAndDevices(t *testing.T) {
	spec := domain.InstanceSpec{
		Name: "moor-media-0", Image: "media:1", Network: "moor", Aliases: []string{"media.moor.internal"},
		HostNetwork: true, DNS: []string{"10.0.0.53"}, Hostname: "media", Ports: []domain.PortSpec{{Port: 8096}}, TTY: true,
		Devices: []domain.DeviceSpec{
			{HostPath: "/dev/dri"},
			{HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/zigbee", Permissions: "rw"},
		},
	}
	o, err := createOptions(spec)
	if err != nil {
		t.Fatal(err)
	}
	if o.HostConfig.NetworkMode != "host" || o.NetworkingConfig != nil {
		t.Errorf("network mode %q, endpoints %+v: want host and none", o.HostConfig.NetworkMode, o.NetworkingConfig)
	}
	if o.Config.Hostname != "media" || len(o.HostConfig.DNS) != 1 || !o.Config.Tty || !o.Config.OpenStdin || o.Config.AttachStdin {
		t.Errorf("hostname %q dns %v tty %v stdin %v attach %v", o.Config.Hostname, o.HostConfig.DNS, o.Config.Tty, o.Config.OpenStdin, o.Config.AttachStdin)
	}
	want := []container.DeviceMapping{
		{PathOnHost: "/dev/dri", PathInContainer: "/dev/dri", CgroupPermissions: "rwm"},
		{PathOnHost: "/dev/ttyUSB0", PathInContainer: "/dev/zigbee", CgroupPermissions: "rw"},
	}
	if !slices.Equal(o.HostConfig.Devices, want) {
		t.Errorf("devices %+v", o.HostConfig.Devices)
	}
}

func TestCreateOptionsCapabilities(t *testing.T) {
	spec := domain.InstanceSpec{Name: "moor-vpn-0", Image: "vpn:1", CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"}}
	o, err := createOptions(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.HostConfig.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(o.HostConfig.CapDrop, []string{"ALL"}) {
		t.Errorf("cap_add %v cap_drop %v", o.HostConfig.CapAdd, o.HostConfig.CapDrop)
	}
}

func TestStateFromSummary(t *testing.T) {
	c := container.Summary{
		ID:     "abc",
		Names:  []string{"/web/db", "/moor-db-0"},
		Image:  "postgres:16",
		Labels: map[string]string{domain.LabelID: "x"},
		State:  container.StateRunning,
		Status: "Up 3 minutes (healthy)",
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{
			"zeta": {IPAddress: netip.MustParseAddr("172.30.0.2")},
			"moor": {IPAddress: netip.MustParseAddr("172.31.0.5")},
			"v6":   {IPAddress: netip.MustParseAddr("fd00::5")},
		}},
	}
	c.HostConfig.NetworkMode = "moor"
	s := stateFromSummary(c)
	if s.Name != "moor-db-0" || !s.Running || s.Health != "healthy" || s.IP != "172.31.0.5" || len(s.IPs) != 2 || s.IPs["zeta"] != "172.30.0.2" {
		t.Errorf("state %+v", s)
	}
	c.HostConfig.NetworkMode = "gone"
	if s := stateFromSummary(c); s.IP != "172.30.0.2" && s.IP != "172.31.0.5" {
		t.Errorf("fallback IP %q", s.IP)
	} else if s.IP != "172.31.0.5" { // first by name: "moor" < "zeta"
		t.Errorf("fallback IP %q; want the first network by name", s.IP)
	}

	for status, want := range map[string]string{
		"Up 2 seconds (health: starting)": "starting",
		"Up 1 hour (unhealthy)":           "unhealthy",
		"Up 1 hour":                       "",
	} {
		c.Status = status
		if got := stateFromSummary(c).Health; got != want {
			t.Errorf("health of %q = %q; want %q", status, got, want)
		}
	}
	c.Health = &container.HealthSummary{Status: container.NoHealthcheck}
	if got := stateFromSummary(c).Health; got != "" {
		t.Errorf("health none = %q", got)
	}

	c.State, c.Status, c.NetworkSettings = container.StateExited, "Exited (137) 2 hours ago", nil
	if s := stateFromSummary(c); s.ExitCode != 137 || s.Running || s.IP != "" {
		t.Errorf("exited: %+v", s)
	}
	for status, want := range map[string]int{"Exited (0) 1 second ago": 0, "Exited (-1) now": -1, "Created": 0, "Exited (": 0} {
		if got := exitCodeFromStatus(status); got != want {
			t.Errorf("exitCodeFromStatus(%q) = %d; want %d", status, got, want)
		}
	}
}

func TestStateFromInspect(t *testing.T) {
	s := stateFromInspect(container.InspectResponse{
		ID:   "abc",
		Name: "/moor-x-0",
		State: &container.State{
			Status: container.StateExited, ExitCode: 3, OOMKilled: true, Error: "boom",
			StartedAt: "2026-01-02T03:04:05.123456789Z", FinishedAt: "0001-01-01T00:00:00Z",
			Health: &container.Health{Status: container.Unhealthy},
		},
		Config:     &container.Config{Image: "img:1", Labels: map[string]string{"a": "b"}},
		HostConfig: &container.HostConfig{NetworkMode: "default"},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"bridge": {IPAddress: netip.MustParseAddr("172.17.0.3")},
		}},
	})
	want := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if s.Name != "moor-x-0" || s.Status != "exited" || s.ExitCode != 3 || !s.OOMKilled || s.Error != "boom" ||
		!s.StartedAt.Equal(want) || !s.FinishedAt.IsZero() || s.Health != "unhealthy" || s.Image != "img:1" || s.IP != "172.17.0.3" {
		t.Errorf("state %+v", s)
	}
	if s := stateFromInspect(container.InspectResponse{ID: "x"}); s.RuntimeID != "x" || s.Status != "" {
		t.Errorf("empty inspect: %+v", s)
	}
}

func TestEventFrom(t *testing.T) {
	ev := eventFrom(events.Message{
		Type:   events.ContainerEventType,
		Action: "die",
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{
			"name": "moor-x-0", "image": "img:1", "exitCode": "137", "signal": "9", domain.LabelID: "id1",
		}},
		Time:     1700000000,
		TimeNano: 1700000000123456789,
	})
	if ev.RuntimeID != "abc" || ev.Action != "die" || ev.Name != "moor-x-0" || ev.Image != "img:1" || ev.ExitCode != 137 ||
		len(ev.Labels) != 1 || ev.Labels[domain.LabelID] != "id1" || ev.Time.UnixNano() != 1700000000123456789 {
		t.Errorf("event %+v", ev)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{cerrdefs.ErrNotFound, domain.ErrNotFound},
		{cerrdefs.ErrConflict, domain.ErrConflict},
		{cerrdefs.ErrUnavailable, domain.ErrUnavailable},
	} {
		if got := wrap("op", c.err); !errors.Is(got, c.want) || !errors.Is(got, c.err) {
			t.Errorf("wrap(%v) = %v; want it to wrap %v", c.err, got, c.want)
		}
	}
	if got := wrap("op", errors.New("x")); errors.Is(got, domain.ErrNotFound) || errors.Is(got, domain.ErrUnavailable) {
		t.Errorf("plain error mapped: %v", got)
	}
	if wrap("op", nil) != nil {
		t.Error("wrap(nil) != nil")
	}

	for msg, want := range map[string]bool{
		"manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: manifest unknown":              true,
		"pull access denied for nope, repository does not exist or may require 'docker login'":          true,
		"Get \"https://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused":            false,
		"unauthorized: authentication required":                                                         false,
		"toomanyrequests: You have reached your pull rate limit":                                        false,
		"Error response from daemon: manifest for nginx:nope not found: manifest unknown: manifest unk": true,
	} {
		err := pullError("img", errors.New(msg))
		if got := errors.Is(err, domain.ErrNotFound); got != want {
			t.Errorf("pullError(%q) not found = %v; want %v", msg, got, want)
		}
	}
	if err := pullError("img", fmt.Errorf("x: %w", cerrdefs.ErrNotFound)); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("pullError(404) = %v", err)
	}
}

func TestLabelFilters(t *testing.T) {
	f := labelFilters(map[string]string{"a": "1", "b": ""})
	if !f["label"]["a=1"] || !f["label"]["b"] || len(f["label"]) != 2 {
		t.Errorf("filters %v", f)
	}
	if !hasLabels(map[string]string{"a": "1", "b": "x"}, map[string]string{"a": "1", "b": ""}) ||
		hasLabels(map[string]string{"a": "2"}, map[string]string{"a": "1"}) ||
		hasLabels(map[string]string{}, map[string]string{"b": ""}) {
		t.Error("hasLabels")
	}
}

// TestPublishedBindings: published ports become the engine's port bindings
// (and are exposed), several host addresses for one container port too.
func TestPublishedBindings(t *testing.T) {
	o, err := createOptions(domain.InstanceSpec{Name: "moor-db-0", Image: "pg", Published: []domain.PublishedPort{
		{Port: 5432, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 15432},
		{Port: 5432, Protocol: "tcp", HostIP: "::1", HostPort: 15432},
		{Port: 53, Protocol: "udp", HostIP: "0.0.0.0", HostPort: 5353},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(o.HostConfig.PortBindings)
	want := "map[53/udp:[{0.0.0.0 5353}] 5432/tcp:[{127.0.0.1 15432} {::1 15432}]]"
	if got != want {
		t.Errorf("bindings %s, want %s", got, want)
	}
	for _, p := range []string{"5432/tcp", "53/udp"} {
		if _, ok := o.Config.ExposedPorts[network.MustParsePort(p)]; !ok {
			t.Errorf("%s not exposed", p)
		}
	}
	if _, err := createOptions(domain.InstanceSpec{Image: "pg", Published: []domain.PublishedPort{{Port: 1, Protocol: "tcp", HostIP: "localhost", HostPort: 1}}}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("a host name as address: %v", err)
	}
}

// TestPortInUse: the engines' words for a taken host port, as 20.10 and
// newer engines say them, become a domain.PortInUseError with the port.
func TestPortInUse(t *testing.T) {
	for _, c := range []struct {
		msg      string
		by, ip   string
		hostPort int
	}{
		{"driver failed programming external connectivity on endpoint moor-db-0 (0d1260a080489cee9b3deeba7db069cc9a4b7412a48cab36e515bec8a7c5a099): " +
			"Error starting userland proxy: listen tcp4 127.0.0.1:38123: bind: address already in use", domain.PortHeldByProgram, "127.0.0.1", 38123},
		{"driver failed programming external connectivity on endpoint moor-db-0 (e7a3cdd241b2ad70678a46fb5f68784f1c141b53ca1481bea73fa05cbaf41a05): " +
			"Bind for 127.0.0.1:38124 failed: port is already allocated", domain.PortHeldByDocker, "127.0.0.1", 38124},
		{"failed to set up container networking: driver failed programming external connectivity on endpoint moor-db-0 (1234): " +
			"failed to bind host port for 0.0.0.0:8080:172.17.0.2:80/tcp: address already in use", domain.PortHeldByProgram, "0.0.0.0", 8080},
		{"Error starting userland proxy: listen tcp6 [::1]:15432: bind: address already in use", domain.PortHeldByProgram, "::1", 15432},
		{"driver failed programming external connectivity on endpoint moor-db-0 (715151df6b25): " +
			"Error starting userland proxy: listen tcp4 10.99.99.99:38200: bind: cannot assign requested address", domain.PortNoSuchAddress, "10.99.99.99", 38200},
	} {
		pe := portInUse(errors.New(c.msg))
		if pe == nil || pe.By != c.by || pe.HostIP != c.ip || pe.HostPort != c.hostPort {
			t.Errorf("%s:\n got %+v", c.msg, pe)
		}
	}
	if pe := portInUse(errors.New("OCI runtime create failed: no such file")); pe != nil {
		t.Errorf("another failure read as a taken port: %+v", pe)
	}
}
