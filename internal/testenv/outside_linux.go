package testenv

import (
	"crypto/rand"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// OutsideListener is a TCP listener beyond the host: in a network
// namespace of its own, joined to the host by a veth pair, so a container
// reaches it only through the host's forwarding (as it would a machine on
// the network), not as the host itself. It accepts and closes connections
// until the test ends, then the namespace and the pair go. It returns its
// address.
func OutsideListener(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	id := fmt.Sprintf("%x", b)
	ns, hostIf, nsIf := "moor-t-out-"+id, "mto"+id, "mti"+id
	// A /30 in 10.250.0.0/16: addresses no Docker network of this machine
	// takes from its default pools (172.17-31, 192.168).
	sub := fmt.Sprintf("10.250.%d.%d", b[0], b[1]&0xfc)
	hostIP, nsIP := ip4Plus(sub, 1), ip4Plus(sub, 2)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", ns).Run()
		exec.Command("ip", "link", "del", hostIf).Run()
	})
	run("netns", "add", ns)
	run("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	run("link", "set", nsIf, "netns", ns)
	run("addr", "add", hostIP+"/30", "dev", hostIf)
	run("link", "set", hostIf, "up")
	run("-n", ns, "addr", "add", nsIP+"/30", "dev", nsIf)
	run("-n", ns, "link", "set", nsIf, "up")
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "route", "add", "default", "via", hostIP)

	// A socket belongs to the namespace of the thread that made it: make
	// it on a thread moved there and back. The thread must not die with
	// its goroutine: a process started from it with Pdeathsig (moor in the
	// e2e harness) would be killed with it.
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(home)
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", nsIP+":0")
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // back home: fit for other goroutines
		} // else the thread stays locked and ends with this goroutine
		done <- result{ln, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	go func() {
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return r.ln.Addr().String()
}

func ip4Plus(base string, n byte) string {
	ip := net.ParseIP(base).To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+n).String()
}
