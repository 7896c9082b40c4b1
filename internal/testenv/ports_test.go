package testenv

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePortIsReserved(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		p := FreeTCPPort(t)
		if seen[p] || p < portLow || p > portHigh {
			t.Fatalf("port %d: handed out twice or outside %d-%d", p, portLow, portHigh)
		}
		seen[p] = true
		// Another test binary cannot take it while this test runs.
		if l, err := net.Listen("unix", fmt.Sprintf("@moor-test-port-%d", p)); err == nil {
			l.Close()
			t.Fatalf("port %d is not locked against other processes", p)
		}
		// It is free for both protocols, so a DNS server can take it.
		tcp, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatal(err)
		}
		udp, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatal(err)
		}
		tcp.Close()
		udp.Close()
	}
}
