package testenv

import (
	"net"
	"strconv"
	"testing"
)

// FreeTCPPort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreeUDPPort returns a UDP port of 127.0.0.1 that was free a moment ago,
// as text for addresses and command lines.
func FreeUDPPort(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
}
