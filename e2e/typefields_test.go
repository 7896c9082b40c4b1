package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// inspected is what these tests read of `docker inspect`.
type inspected struct {
	Config struct {
		Hostname       string
		Labels         map[string]string
		Tty, OpenStdin bool
	}
	HostConfig struct {
		NetworkMode string
		Devices     []struct{ PathOnHost, PathInContainer, CgroupPermissions string }
	}
	Mounts          []inspectedMount
	NetworkSettings struct {
		Networks map[string]json.RawMessage
	}
}

type inspectedMount struct {
	Type, Name, Destination string
	RW                      bool
}

func dockerInspect(t *testing.T, name string) inspected {
	t.Helper()
	var out []inspected
	if err := json.Unmarshal([]byte(docker(t, "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("docker inspect %s: %v", name, err)
	}
	return out[0]
}

// TestPortainerFieldsReachTheContainer: Portainer templates with a host
// name, labels (a Traefik port label among them), a read-only bind of a
// bare name, a device, and one on the host's network, imported and
// deployed by an admin, become Docker containers with each of those, also
// when moor recreates them from its database after a restart. The
// host-network one is routed, through moor's Traefik configuration, at the
// gateway of moor's network.
func TestPortainerFieldsReachTheContainer(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "reached through the host's network")
	}))
	defer backend.Close()
	// The host-network container relays this host port to the backend:
	// it shares the host's ports, so it must not take one in use.
	hostPort := testenv.FreeTCPPort(t)
	dir := t.TempDir()
	templates := fmt.Sprintf(`{"version": "2", "templates": [
		{"type": 1, "title": "Fields", "image": %[1]q, "hostname": "Fields-Box", "interactive": true,
		 "labels": [{"name": "com.example.role", "value": "e2e"},
		            {"name": "traefik.enable", "value": "true"},
		            {"name": "traefik.http.services.fields.loadbalancer.server.port", "value": "8080"}],
		 "volumes": [{"container": "/config:ro", "bind": "shared_config"}],
		 "devices": ["/dev/null:/dev/moor-null:r"]},
		{"type": 1, "title": "Host Net", "image": %[1]q, "network": "host",
		 "command": "-forward 0.0.0.0:%[2]d=%[3]s",
		 "labels": [{"name": "traefik.http.services.hn.loadbalancer.server.port", "value": "%[2]d"}]}
	]}`, testenv.TestImageName, hostPort, backend.Listener.Addr())
	if err := os.WriteFile(filepath.Join(dir, "fields.json"), []byte(templates), 0o644); err != nil {
		t.Fatal(err)
	}
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = dir })
	m := e.Start("MOOR_PROVIDER_TOKEN=" + providerToken)
	if !strings.Contains(m.Logs(), `msg="catalog: template field dropped"`) || !strings.Contains(m.Logs(), "field=labels.traefik.enable") {
		t.Errorf("the dropped Traefik label is not logged at start")
	}

	m.Create(map[string]any{"name": "fields", "type": "portainer-fields"})
	m.Create(map[string]any{"name": "hn", "type": "portainer-host-net"})
	fields := m.WaitStatus("fields", "running", 60*time.Second)
	hn := m.WaitFor("hn", 60*time.Second, "running at an address", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && c.InternalIP != ""
	})

	checkFields := func() {
		t.Helper()
		in := dockerInspect(t, "moor-fields-0")
		if in.Config.Hostname != "fields-box" || !in.Config.Tty || !in.Config.OpenStdin {
			t.Errorf("hostname %q, tty %v, open stdin %v", in.Config.Hostname, in.Config.Tty, in.Config.OpenStdin)
		}
		if l := in.Config.Labels; l["com.example.role"] != "e2e" || l["moor.name"] != "fields" || l["traefik.enable"] != "" {
			t.Errorf("labels %v: want the template's, moor's own, no traefik.*", l)
		}
		if d := in.HostConfig.Devices; len(d) != 1 || d[0].PathOnHost != "/dev/null" || d[0].PathInContainer != "/dev/moor-null" || d[0].CgroupPermissions != "r" {
			t.Errorf("devices %+v", d)
		}
		mounted := slices.ContainsFunc(in.Mounts, func(mt inspectedMount) bool {
			return mt.Type == "volume" && mt.Name == "moor-fields_shared-config_0" && mt.Destination == "/config" && !mt.RW
		})
		if !mounted {
			t.Errorf("mounts %+v: want volume moor-fields_shared-config_0 read-only at /config", in.Mounts)
		}
	}
	checkFields()

	gateway := docker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", e.Network)
	gateway = strings.Fields(gateway)[0]
	in := dockerInspect(t, "moor-hn-0")
	if in.HostConfig.NetworkMode != "host" || in.NetworkSettings.Networks[e.Network] != nil {
		t.Errorf("network mode %q, networks %v", in.HostConfig.NetworkMode, in.NetworkSettings.Networks)
	}
	if hn.InternalIP != gateway || len(hn.Instances) != 1 || hn.Instances[0].InternalIP != gateway {
		t.Errorf("host-network container at %q (instances %+v), want the gateway %s", hn.InternalIP, hn.Instances, gateway)
	}
	want := fmt.Sprintf("http://%s:%d", gateway, hostPort)
	cfg, _, _ := m.configWhere("both routed", func(cfg traefikConfig) bool {
		return len(cfg.HTTP.Services["hn"].LoadBalancer.Servers) == 1 && len(cfg.HTTP.Services["fields"].LoadBalancer.Servers) == 1
	})
	if got := cfg.HTTP.Services["hn"].LoadBalancer.Servers[0].URL; got != want {
		t.Errorf("hn routed to %s, want %s", got, want)
	}
	if got := cfg.HTTP.Services["fields"].LoadBalancer.Servers[0].URL; got != "http://"+fields.InternalIP+":8080" {
		t.Errorf("fields routed to %s, want its address and the label's port 8080", got)
	}
	if status, _, body := route(t, cfg, "hn.moor.localhost", "/"); status != 200 || body != "reached through the host's network" {
		t.Errorf("through the route: %d %q", status, body)
	}
	if status, body := m.Do("POST", "/api/v1/containers/hn/scale", map[string]any{"replicas": 2}); status != 422 || !strings.Contains(string(body), "host's network") {
		t.Errorf("scaling a host-network container to 2: %d %s", status, body)
	}

	// After a restart, moor recreates a container removed behind its back
	// from the spec in its database: the fields are there again.
	m.Kill()
	docker(t, "rm", "-f", "moor-fields-0")
	m = e.Start("MOOR_PROVIDER_TOKEN=" + providerToken)
	m.WaitFor("fields", 60*time.Second, "recreated", func(c Container, ok bool) bool {
		return ok && c.Status == "running" && len(e.DockerIDs("fields")) == 1
	})
	checkFields()
}
