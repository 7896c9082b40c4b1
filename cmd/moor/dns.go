package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/moorhq/moor/dnsserver"
)

// dnsConfig is the DNS server's part of the configuration.
type dnsConfig struct {
	Mode           string // auth, dnsmasq or both
	HostsDir       string
	ContainerCIDRs string
	ContainerDNS   string
	Upstreams      string
	ResolvConf     string
	Secondaries    string
	TransferPeers  string
	Wildcard       bool
	Refresh        time.Duration
	TCPMaxConns    int
	TCPMaxPerSrc   int
	TCPIdleTimeout time.Duration

	settings dnsSettings // parsed by validateDNS
}

func (d *dnsConfig) register(fs *flag.FlagSet, envDuration func(flag, name, def string) time.Duration, envInt func(flag, name string, def int) int) {
	fs.StringVar(&d.Mode, "dns-mode", envOr("MOOR_DNS_MODE", "auth"), "auth (answer on MOOR_DNS_ADDR), dnsmasq (write MOOR_DNS_HOSTSDIR) or both (MOOR_DNS_MODE)")
	fs.StringVar(&d.HostsDir, "dns-hostsdir", envOr("MOOR_DNS_HOSTSDIR", ""), "dnsmasq --hostsdir directory moor writes in dnsmasq mode (MOOR_DNS_HOSTSDIR)")
	fs.StringVar(&d.ContainerCIDRs, "dns-container-cidrs", envOr("MOOR_DNS_CONTAINER_CIDRS", ""), "client networks that see the container zone and get forwarding, comma-separated CIDRs (MOOR_DNS_CONTAINER_CIDRS)")
	fs.StringVar(&d.ContainerDNS, "container-dns", envOr("MOOR_CONTAINER_DNS", ""), "DNS servers given to managed containers, comma-separated IPs; moor must listen there on port 53 (MOOR_CONTAINER_DNS)")
	fs.StringVar(&d.Upstreams, "dns-upstreams", envOr("MOOR_DNS_UPSTREAMS", ""), "resolvers for other names asked by containers, comma-separated ip[:port]; none disables; default: MOOR_DNS_RESOLV_CONF's (MOOR_DNS_UPSTREAMS)")
	fs.StringVar(&d.ResolvConf, "dns-resolv-conf", envOr("MOOR_DNS_RESOLV_CONF", "/etc/resolv.conf"), "where default upstreams are read (MOOR_DNS_RESOLV_CONF)")
	fs.StringVar(&d.Secondaries, "dns-secondaries", envOr("MOOR_DNS_SECONDARIES", ""), "secondary servers to NOTIFY and allow transfers, comma-separated ip[:port] (MOOR_DNS_SECONDARIES)")
	fs.StringVar(&d.TransferPeers, "dns-transfer-peers", envOr("MOOR_DNS_TRANSFER_PEERS", ""), "further clients allowed AXFR/IXFR, comma-separated CIDRs or IPs (MOOR_DNS_TRANSFER_PEERS)")
	fs.BoolVar(&d.Wildcard, "dns-wildcard", envOr("MOOR_DNS_WILDCARD", "false") == "true", "answer *.NAME.<host zone> like NAME.<host zone> (MOOR_DNS_WILDCARD)")
	fs.IntVar(&d.TCPMaxConns, "dns-tcp-max-conns", envInt("dns-tcp-max-conns", "MOOR_DNS_TCP_MAX_CONNS", dnsserver.DefaultTCPMaxConns), "open DNS-over-TCP connections; at the cap a new one takes the place of the one idle the longest (MOOR_DNS_TCP_MAX_CONNS)")
	fs.IntVar(&d.TCPMaxPerSrc, "dns-tcp-max-per-source", envInt("dns-tcp-max-per-source", "MOOR_DNS_TCP_MAX_PER_SOURCE", dnsserver.DefaultTCPMaxPerSource), "open DNS-over-TCP connections from one address (MOOR_DNS_TCP_MAX_PER_SOURCE)")
	fs.DurationVar(&d.TCPIdleTimeout, "dns-tcp-idle-timeout", envDuration("dns-tcp-idle-timeout", "MOOR_DNS_TCP_IDLE_TIMEOUT", dnsserver.DefaultTCPIdleTimeout.String()), "how long a DNS-over-TCP connection may wait between queries (MOOR_DNS_TCP_IDLE_TIMEOUT)")
	fs.DurationVar(&d.Refresh, "dns-refresh", envDuration("dns-refresh", "MOOR_DNS_REFRESH", "30s"), "period of the timed zone rebuild (MOOR_DNS_REFRESH)")
}

// parsePrefixes reads comma-separated CIDRs or single addresses.
func parsePrefixes(field, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(s) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q must be a CIDR or an IP address", field, f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseAddrPorts reads comma-separated ip[:port] (default port 53).
func parseAddrPorts(field, s string) ([]string, error) {
	var out []string
	for _, f := range splitList(s) {
		if ap, err := netip.ParseAddrPort(f); err == nil {
			out = append(out, ap.String())
			continue
		}
		a, err := netip.ParseAddr(strings.Trim(f, "[]"))
		if err != nil {
			return nil, fmt.Errorf("%s: %q must be ip or ip:port", field, f)
		}
		out = append(out, netip.AddrPortFrom(a, 53).String())
	}
	return out, nil
}

// dnsSettings are the DNS settings parsed, once, by validateDNS: the
// server's configuration, but for default upstreams, which are read from
// resolvConf when the server is built.
type dnsSettings struct {
	server     dnsserver.Config
	resolvConf string // "" when upstreams were given, or none are wanted
}

// validateDNS parses the DNS settings into c.DNS.settings; an error names
// the variable and the rule.
func (c *config) validateDNS() error {
	d := c.DNS
	var s dnsSettings
	switch d.Mode {
	case "auth", "dnsmasq", "both":
	default:
		return fmt.Errorf("MOOR_DNS_MODE: must be auth, dnsmasq or both (got %q)", d.Mode)
	}
	if d.Mode != "auth" && d.HostsDir == "" {
		return fmt.Errorf("MOOR_DNS_HOSTSDIR: is required when MOOR_DNS_MODE is %s", d.Mode)
	}
	listen := splitList(c.DNSAddr)
	public, err := netip.ParseAddr(c.PublicIP)
	if err != nil {
		return fmt.Errorf("MOOR_PUBLIC_IP: must be an IP address: %q", c.PublicIP)
	}
	// The host zone's name server is the first specific listen address (or
	// the public address); the container zone's is what containers are given.
	hostNS := []netip.Addr{public}
	specific := false
	for i, a := range listen {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("MOOR_DNS_ADDR[%d]: must be host:port: %v", i, err)
		}
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() && !specific {
			hostNS, specific = []netip.Addr{ip}, true
		}
	}
	cidrs, err := parsePrefixes("MOOR_DNS_CONTAINER_CIDRS", d.ContainerCIDRs)
	if err != nil {
		return err
	}
	peers, err := parsePrefixes("MOOR_DNS_TRANSFER_PEERS", d.TransferPeers)
	if err != nil {
		return err
	}
	contNS := hostNS
	if cd := splitList(d.ContainerDNS); len(cd) > 0 {
		contNS = nil
		for _, f := range cd {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return fmt.Errorf("MOOR_CONTAINER_DNS: %q must be an IP address", f)
			}
			contNS = append(contNS, a)
		}
	}
	var upstreams []string
	switch d.Upstreams {
	case "none":
	case "":
		s.resolvConf = d.ResolvConf
	default:
		if upstreams, err = parseAddrPorts("MOOR_DNS_UPSTREAMS", d.Upstreams); err != nil {
			return err
		}
	}
	secondaries, err := parseAddrPorts("MOOR_DNS_SECONDARIES", d.Secondaries)
	if err != nil {
		return err
	}
	if d.Refresh < 100*time.Millisecond {
		return fmt.Errorf("MOOR_DNS_REFRESH: must be at least 100ms")
	}
	if d.TCPMaxConns < 1 {
		return fmt.Errorf("MOOR_DNS_TCP_MAX_CONNS: must be at least 1")
	}
	if d.TCPMaxPerSrc < 1 || d.TCPMaxPerSrc > d.TCPMaxConns {
		return fmt.Errorf("MOOR_DNS_TCP_MAX_PER_SOURCE: must be from 1 to MOOR_DNS_TCP_MAX_CONNS")
	}
	if d.TCPIdleTimeout < 100*time.Millisecond {
		return fmt.Errorf("MOOR_DNS_TCP_IDLE_TIMEOUT: must be at least 100ms")
	}
	s.server = dnsserver.Config{
		Zones: dnsserver.ZoneConfig{
			HostZone: c.HostZone, ContainerZone: c.ContainerZone, TTL: uint32(c.DNSTTL),
			HostNS: hostNS, ContainerNS: contNS, ReverseCIDRs: cidrs, Wildcard: d.Wildcard,
		},
		ContainerCIDRs: cidrs, Upstreams: upstreams, Secondaries: secondaries, TransferPeers: peers,
		Refresh: d.Refresh, TCPMaxConns: d.TCPMaxConns, TCPMaxPerSource: d.TCPMaxPerSrc, TCPIdleTimeout: d.TCPIdleTimeout,
	}
	if d.Mode != "dnsmasq" {
		s.server.Listen = listen
	}
	if d.Mode != "auth" {
		s.server.HostsDir = d.HostsDir
	}
	c.DNS.settings = s
	return nil
}

// newDNSServer builds the DNS server from settings validateDNS parsed.
func newDNSServer(s dnsSettings, src dnsserver.Source, logger *slog.Logger) (*dnsserver.Server, error) {
	cfg := s.server
	if s.resolvConf != "" {
		ups, err := dnsserver.ResolvConfServers(s.resolvConf)
		if err != nil {
			logger.Warn("dns: no upstream resolvers (containers get REFUSED for other names)", "resolv_conf", s.resolvConf, "err", err)
		}
		cfg.Upstreams = ups
	}
	return dnsserver.New(src, cfg, logger.With("part", "dns"))
}
