package dnsserver

import (
	"net"
	"net/netip"
)

// dialerFrom dials from a chosen local address (127.0.0.0/8 is all on lo).
func dialerFrom(ip netip.Addr, network string) *net.Dialer {
	if network == "tcp" {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}
	}
	return &net.Dialer{LocalAddr: &net.UDPAddr{IP: ip.AsSlice()}}
}
