//go:build !linux

package dnsserver

import "syscall"

// reusePort is nil: elsewhere SO_REUSEPORT does not spread datagrams over
// the sockets (the BSDs give them all to the last one bound), so each
// address gets one socket.
var reusePort func(network, address string, c syscall.RawConn) error
