// Package egress decides where moor may connect on a user's behalf
// (webhooks, and later hooks): by default public addresses and moor's own
// container networks (an n8n that moor deployed must stay reachable), never
// loopback, link-local (cloud metadata), the host's own addresses or other
// private ranges unless an admin allows them. The check runs on the
// resolved address at dial time, and the connection goes to that very
// address, so a name that resolves differently later (DNS rebinding)
// cannot slip past it.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// ErrRefused is a destination the policy does not allow.
var ErrRefused = errors.New("destination not allowed")

// Policy is where outbound calls may go.
type Policy struct {
	allowNets  []netip.Prefix  // allowed besides public addresses
	allowHosts map[string]bool // host names allowed whatever they resolve to
	local      func() []netip.Addr
	resolver   interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
	dialer net.Dialer
}

// New returns a policy: containerNets are moor's container networks;
// allowed holds what an admin adds (MOOR_WEBHOOK_ALLOWED_HOSTS): CIDRs, IP
// addresses or host names.
func New(containerNets []netip.Prefix, allowed []string) (*Policy, error) {
	p := &Policy{allowHosts: map[string]bool{}, local: interfaceAddrs, resolver: net.DefaultResolver,
		dialer: net.Dialer{Timeout: 10 * time.Second}}
	p.allowNets = append(p.allowNets, containerNets...)
	for i, a := range allowed {
		a = strings.TrimSpace(a)
		if pf, err := netip.ParsePrefix(a); err == nil {
			p.allowNets = append(p.allowNets, pf.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			p.allowNets = append(p.allowNets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		h := strings.TrimSuffix(strings.ToLower(a), ".")
		if err := domain.ValidateHost(fmt.Sprintf("allowed[%d]", i), h); err != nil {
			return nil, fmt.Errorf("%w: a CIDR, an IP address or a host name", err)
		}
		p.allowHosts[h] = true
	}
	return p, nil
}

// Check reports why ip may not be connected to (nil: it may).
func (p *Policy) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, n := range p.allowNets {
		if n.Contains(ip) {
			return nil
		}
	}
	switch {
	case ip.IsLoopback():
		return fmt.Errorf("%w: %s is a loopback address", ErrRefused, ip)
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return fmt.Errorf("%w: %s is link-local (cloud metadata lives there)", ErrRefused, ip)
	case ip.IsPrivate(), sharedAddressSpace.Contains(ip):
		return fmt.Errorf("%w: %s is a private address", ErrRefused, ip)
	case ip.IsUnspecified(), ip.IsMulticast(), !ip.IsGlobalUnicast():
		return fmt.Errorf("%w: %s is not a unicast address", ErrRefused, ip)
	}
	for _, a := range p.local() {
		if a == ip {
			return fmt.Errorf("%w: %s is an address of moor's host", ErrRefused, ip)
		}
	}
	return nil
}

// sharedAddressSpace is RFC 6598's carrier-grade NAT range: private in
// practice, not in netip's IsPrivate.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// CheckURLHost refuses, before anything is stored, a destination that can
// never be allowed: a literal address the policy refuses. A host name is
// checked when it is dialled (what it resolves to may change).
func (p *Policy) CheckURLHost(host string) error {
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.Check(ip)
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") && !p.allowHosts["localhost"] {
		return fmt.Errorf("%w: localhost", ErrRefused)
	}
	return nil
}

// DialContext is for an http.Transport: it resolves the host, keeps the
// addresses the policy allows, and connects to one of them.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	byName := p.allowHosts[strings.TrimSuffix(strings.ToLower(host), ".")]
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = p.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	var refused error
	for _, ip := range ips {
		if err := p.Check(ip); err != nil && !byName {
			refused = err
			continue
		}
		c, err := p.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		refused = err
	}
	if refused == nil {
		refused = fmt.Errorf("%w: %s resolves to no address", ErrRefused, host)
	}
	return nil, refused
}

func interfaceAddrs() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if pf, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pf.Addr().Unmap())
		}
	}
	return out
}
