package dnsserver

import (
	"context"
	"net"
)

// listenUDP opens n sockets on addr with SO_REUSEPORT, so the kernel
// spreads queries over them; one where it does not (reusePort is nil).
func listenUDP(ctx context.Context, addr string, n int) ([]*net.UDPConn, error) {
	if reusePort == nil {
		n = 1
	}
	lc := net.ListenConfig{Control: reusePort}
	var conns []*net.UDPConn
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, pc.(*net.UDPConn))
		addr = pc.LocalAddr().String() // port 0: the others take the same port
	}
	return conns, nil
}
