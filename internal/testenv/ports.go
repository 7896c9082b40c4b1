package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports for test servers come from below the kernel's ephemeral range
// (32768-60999 by default), so an outgoing connection never holds one, and
// each is reserved for the whole test, also against the other test binaries
// `go test ./...` runs side by side: by holding an abstract unix socket named
// after the port, which nobody else can bind and which vanishes with the
// process, leaving nothing behind. A port handed out is free for TCP and UDP
// alike, since a DNS server needs both.
const portLow, portHigh = 20000, 32767

var reserved struct {
	sync.Mutex
	locks map[int]net.Listener
}

// FreeTCPPort reserves a port of 127.0.0.1 for the rest of the test.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	Deadline(t)
	p, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releasePort(p) })
	return p
}

// FreeUDPPort is FreeTCPPort as text, for addresses and command lines.
func FreeUDPPort(t testing.TB) string {
	t.Helper()
	return strconv.Itoa(FreeTCPPort(t))
}

func reservePort() (int, error) {
	reserved.Lock()
	defer reserved.Unlock()
	if reserved.locks == nil {
		reserved.locks = map[int]net.Listener{}
	}
	span := portHigh - portLow + 1
	start := rand.IntN(span)
	for i := 0; i < span; i++ {
		p := portLow + (start+i)%span
		if reserved.locks[p] != nil {
			continue
		}
		lock, err := net.Listen("unix", fmt.Sprintf("@moor-test-port-%d", p))
		if err != nil {
			continue // another test binary holds it
		}
		if bindable(p) {
			reserved.locks[p] = lock
			return p, nil
		}
		lock.Close()
	}
	return 0, fmt.Errorf("no free port in %d-%d", portLow, portHigh)
}

func releasePort(p int) {
	reserved.Lock()
	defer reserved.Unlock()
	if l := reserved.locks[p]; l != nil {
		l.Close()
		delete(reserved.locks, p)
	}
}

// bindable: nobody listens on p over TCP or UDP right now.
func bindable(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
