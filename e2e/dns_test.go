package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// dnsNetwork creates the installation's Docker network up front (labelled,
// removed after the test's containers), so moor can listen on its gateway
// address: the resolver managed containers are given.
func dnsNetwork(t *testing.T) (name, gateway, subnet string) {
	t.Helper()
	testenv.RequireDocker(t)
	name = "moor-t-" + randSuffix()
	docker(t, "network", "create", "--label", "moor.test=dns", name)
	t.Cleanup(func() { dockerQuiet("network", "rm", name) })
	out := docker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}", name)
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("network %s: gateway and subnet from %q", name, out)
	}
	return name, f[0], f[1]
}

// startWithContainerDNS starts moor on its own network, answering DNS on
// the network's gateway (port 53: the resolver managed containers are
// given, the network's subnet in the container view) and on a loopback
// port, without forwarding.
func startWithContainerDNS(t *testing.T) (e *Env, m *Moor, gw, port string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "moor must listen on port 53 of the Docker network's gateway: run as root (or give the test binary CAP_NET_BIND_SERVICE)")
	}
	network, gw, subnet := dnsNetwork(t)
	e = NewEnvWith(t, func(e *Env) { e.Network = network })
	port = testenv.FreeUDPPort(t)
	m = e.Start(
		"MOOR_DNS_ADDR=127.0.0.1:"+port+","+gw+":53",
		"MOOR_CONTAINER_DNS="+gw,
		"MOOR_DNS_CONTAINER_CIDRS="+subnet,
		"MOOR_DNS_UPSTREAMS=none",
	)
	return e, m, gw, port
}

// TestDNSInsideManagedContainer: moor answers on the network's gateway,
// managed containers are created with it as their DNS server, and names of
// the container zone resolve inside a real managed container, through the
// container's own resolver (Docker's embedded DNS forwarding to moor) and by
// asking moor's address directly. Only moor's address is ever queried, a
// handful of times.
func TestDNSInsideManagedContainer(t *testing.T) {
	e, m, gw, port := startWithContainerDNS(t)
	sfx := randSuffix()
	target, probe := "target-"+sfx, "probe-"+sfx
	m.Create(map[string]any{"name": target, "type": "testapp"})
	m.Create(map[string]any{"name": probe, "type": "testapp"})
	tc := m.WaitStatus(target, "running", 90*time.Second)
	m.WaitStatus(probe, "running", 90*time.Second)
	targetIP := tc.Instances[0].InternalIP
	probeID := e.DockerIDs(probe)[0]

	// The container was created with moor as its resolver.
	var hc struct {
		HostConfig struct {
			DNS []string `json:"Dns"`
		}
	}
	json.Unmarshal([]byte(docker(t, "inspect", "-f", "{{json .}}", probeID)), &hc)
	if strings.Join(hc.HostConfig.DNS, ",") != gw {
		t.Errorf("container DNS servers %v, want [%s]", hc.HostConfig.DNS, gw)
	}

	// From the host (loopback): the host zone only.
	if out := digShort(t, port, target+".moor.localhost", "A"); out != "127.0.0.1" {
		t.Errorf("host zone from the host: %q", out)
	}
	if out := digStatus(t, port, target+".moor.internal", "A"); out != "REFUSED" {
		t.Errorf("container zone from the host: %s, want REFUSED", out)
	}

	resolve := func(args ...string) string {
		t.Helper()
		var out string
		// The container's resolver may need a moment after the engine
		// reports it running; the deadline guards against a hang only.
		for deadline := time.Now().Add(20 * time.Second); ; {
			b, err := exec.Command("docker", append([]string{"exec", probeID, "/testapp", "-resolve"}, args...)...).CombinedOutput()
			out = strings.TrimSpace(string(b))
			if err == nil || time.Now().After(deadline) {
				return out
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Asking moor's address directly: NAME.<container zone> -> internal IP.
	if out := resolve(target+".moor.internal", "-server", gw+":53"); out != targetIP {
		t.Errorf("%s.moor.internal from inside %s via %s: %q, want %s", target, probe, gw, out, targetIP)
	}
	// PTR of the target's address.
	if out := resolve(targetIP, "-type", "PTR", "-server", gw+":53"); out != "0."+target+".moor.internal." {
		t.Errorf("PTR %s: %q", targetIP, out)
	}
	// Through the container's own resolver (Docker's embedded DNS forwards
	// names it does not know to the DNS server moor gave the container).
	if out := resolve("_http._tcp."+target+".moor.internal", "-type", "SRV"); out != "0."+target+".moor.internal.:8080" {
		t.Errorf("SRV through the container's resolver: %q", out)
	}
	if out := resolve(target + ".moor.localhost"); out != "127.0.0.1" {
		t.Errorf("host name through the container's resolver: %q", out)
	}
}

func digShort(t *testing.T, port, name, typ string) string {
	t.Helper()
	return strings.TrimSpace(dig(t, "@127.0.0.1", "-p", port, "+short", "+tries=1", name, typ))
}

func digStatus(t *testing.T, port, name, typ string) string {
	t.Helper()
	out := dig(t, "@127.0.0.1", "-p", port, "+tries=1", name, typ)
	if i := strings.Index(out, "status: "); i >= 0 {
		return strings.TrimRight(strings.Fields(out[i+8:])[0], ",")
	}
	return out
}

func dig(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		testenv.Unavailable(t, "dig not installed (Debian: dnsutils)")
	}
	out, _ := exec.Command("dig", args...).CombinedOutput()
	return string(out)
}
