package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// TestDNSDnsmasqMode: `moor serve` with MOOR_DNS_MODE=both keeps a real
// dnsmasq's --hostsdir in step with the containers it deploys (and still
// answers itself): the name appears in dnsmasq when the container runs and
// disappears when it is removed.
func TestDNSDnsmasqMode(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		testenv.Unavailable(t, "dnsmasq not installed (Debian: dnsmasq-base)")
	}
	dir := t.TempDir()
	port := testenv.FreeUDPPort(t)
	dm := exec.Command(bin, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--user=root", "--hostsdir="+dir,
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port="+port, "--pid-file=", "--log-facility=-")
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Process.Kill(); dm.Wait() })

	e := NewEnv(t)
	mport := testenv.FreeUDPPort(t)
	m := e.Start("MOOR_DNS_MODE=both", "MOOR_DNS_HOSTSDIR="+dir, "MOOR_DNS_ADDR=127.0.0.1:"+mport)
	name := "hd-" + randSuffix()
	m.Create(map[string]any{"name": name, "type": "testapp"})
	c := m.WaitStatus(name, "running", 90*time.Second)
	ip := c.Instances[0].InternalIP

	waitDig := func(what, server, qname, want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			got := digShort(t, server, qname, "A")
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s -> %q, want %q (hosts dir: %v)", what, qname, got, want, lsDir(dir))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitDig("dnsmasq, container zone", port, name+".moor.internal", ip)
	waitDig("dnsmasq, host zone", port, name+".moor.localhost", "127.0.0.1")
	waitDig("moor itself", mport, name+".moor.localhost", "127.0.0.1")
	if b, err := os.ReadFile(filepath.Join(dir, name+".moor.internal")); err != nil || string(b) != ip+" "+name+".moor.internal\n" {
		t.Errorf("hosts file: %q %v", b, err)
	}

	if status, out := m.Do("DELETE", "/api/v1/containers/"+name, nil); status != 202 {
		t.Fatalf("delete: %d %s", status, out)
	}
	// The container-zone name goes first (the replica drains), the
	// host-zone name with the container.
	waitDig("dnsmasq after removal, container zone", port, name+".moor.internal", "")
	waitDig("dnsmasq after removal, host zone", port, name+".moor.localhost", "")
	if files := lsDir(dir); len(files) != 0 {
		t.Errorf("hosts dir after removal: %v", files)
	}
}

func lsDir(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}
