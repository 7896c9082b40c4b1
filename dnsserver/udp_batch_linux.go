//go:build linux && (amd64 || arm64)

package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of <sys/socket.h> on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

const (
	batchSize = 32
	// maxUDPQuery is the largest UDP query read; a longer one is cut
	// (MSG_TRUNC) and answered FORMERR.
	maxUDPQuery = 4096
)

// serveUDP is the hot loop: queries are read and answers sent in batches
// (recvmmsg/sendmmsg: one system call each for up to 32 packets under
// load), from buffers allocated once, with no allocation per answer from
// the snapshot.
func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var (
		in    [batchSize][maxUDPQuery]byte
		names [batchSize]syscall.RawSockaddrInet6
		riov  [batchSize]syscall.Iovec
		rh    [batchSize]mmsghdr
		siov  [batchSize]syscall.Iovec
		sh    [batchSize]mmsghdr
		outs  [batchSize][]byte
		resps [batchSize][]byte
		rs    responder
	)
	for i := range outs {
		outs[i] = make([]byte, 0, 8192)
	}
	for {
		for i := range rh {
			riov[i].Base = &in[i][0]
			riov[i].SetLen(maxUDPQuery)
			rh[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
			rh[i].hdr.Namelen = uint32(unsafe.Sizeof(names[i]))
			rh[i].hdr.Iov = &riov[i]
			rh[i].hdr.Iovlen = 1
			rh[i].hdr.Control, rh[i].hdr.Controllen, rh[i].hdr.Flags = nil, 0, 0
		}
		var got int
		var serr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, e := syscall.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&rh[0])), batchSize, syscall.MSG_DONTWAIT, 0, 0)
			if e == syscall.EAGAIN || e == syscall.EINTR {
				return false
			}
			if e != 0 {
				serr = e
			}
			got = int(n)
			return true
		})
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if serr != nil {
			continue
		}
		snap := s.store.Load()
		m := 0
		for i := 0; i < got; i++ {
			from := sockaddrAddrPort(&names[i])
			q := s.queryFrom(in[i][:rh[i].n], from.Addr(), false)
			q.cut = rh[i].hdr.Flags&syscall.MSG_TRUNC != 0
			resp, req, act := rs.respond(outs[m][:0], snap, q)
			if act == actForward {
				go s.forwardUDP(ctx, c, from, req)
			}
			if act != actReply {
				continue
			}
			resps[m] = resp
			siov[m].Base = &resp[0]
			siov[m].SetLen(len(resp))
			sh[m].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
			sh[m].hdr.Namelen = rh[i].hdr.Namelen
			sh[m].hdr.Iov = &siov[m]
			sh[m].hdr.Iovlen = 1
			m++
		}
		s.stats.flush(&rs.tally)
		for sent := 0; sent < m; {
			err := rc.Write(func(fd uintptr) bool {
				n, _, e := syscall.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&sh[sent])), uintptr(m-sent), syscall.MSG_DONTWAIT, 0, 0)
				if e == syscall.EAGAIN || e == syscall.EINTR {
					return false
				}
				if e != 0 || n == 0 {
					sent++ // a reply the kernel refuses (e.g. unreachable): drop it
					return true
				}
				sent += int(n)
				return true
			})
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				break
			}
		}
		for i := 0; i < m; i++ {
			resps[i] = nil
		}
	}
}

// sockaddrAddrPort reads a sockaddr_in or sockaddr_in6 written by the kernel.
func sockaddrAddrPort(sa *syscall.RawSockaddrInet6) netip.AddrPort {
	if sa.Family == syscall.AF_INET {
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := uint16(sa4.Port>>8) | uint16(sa4.Port<<8)
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	port := uint16(sa.Port>>8) | uint16(sa.Port<<8)
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
}
