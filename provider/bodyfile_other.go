//go:build !linux

package provider

import (
	"errors"
	"net"
)

// newBodyFile is Linux only (memfd, /proc/self/fd); elsewhere the endpoint
// writes the body from memory.
func newBodyFile([]byte) (*bodyFile, error) {
	return nil, errors.New("no memfd on this system")
}

func cork(net.Conn, bool) {}
