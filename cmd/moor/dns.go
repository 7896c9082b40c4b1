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
	"github.com/moorhq/moor/internal/store"
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
}

func (d *dnsConfig) register(fs *flag.FlagSet, envDuration func(flag, name, def string) time.Duration) {
	fs.StringVar(&d.Mode, "dns-mode", envOr("MOOR_DNS_MODE", "auth"), "auth (answer on MOOR_DNS_ADDR), dnsmasq (write MOOR_DNS_HOSTSDIR) or both (MOOR_DNS_MODE)")
	fs.StringVar(&d.HostsDir, "dns-hostsdir", envOr("MOOR_DNS_HOSTSDIR", ""), "dnsmasq --hostsdir directory moor writes in dnsmasq mode (MOOR_DNS_HOSTSDIR)")
	fs.StringVar(&d.ContainerCIDRs, "dns-container-cidrs", envOr("MOOR_DNS_CONTAINER_CIDRS", ""), "client networks that see the container zone and get forwarding, comma-separated CIDRs (MOOR_DNS_CONTAINER_CIDRS)")
	fs.StringVar(&d.ContainerDNS, "container-dns", envOr("MOOR_CONTAINER_DNS", ""), "DNS servers given to managed containers, comma-separated IPs; moor must listen there on port 53 (MOOR_CONTAINER_DNS)")
	fs.StringVar(&d.Upstreams, "dns-upstreams", envOr("MOOR_DNS_UPSTREAMS", ""), "resolvers for other names asked by containers, comma-separated ip[:port]; none disables; default: MOOR_DNS_RESOLV_CONF's (MOOR_DNS_UPSTREAMS)")
	fs.StringVar(&d.ResolvConf, "dns-resolv-conf", envOr("MOOR_DNS_RESOLV_CONF", "/etc/resolv.conf"), "where default upstreams are read (MOOR_DNS_RESOLV_CONF)")
	fs.StringVar(&d.Secondaries, "dns-secondaries", envOr("MOOR_DNS_SECONDARIES", ""), "secondary servers to NOTIFY and allow transfers, comma-separated ip[:port] (MOOR_DNS_SECONDARIES)")
	fs.StringVar(&d.TransferPeers, "dns-transfer-peers", envOr("MOOR_DNS_TRANSFER_PEERS", ""), "further clients allowed AXFR/IXFR, comma-separated CIDRs or IPs (MOOR_DNS_TRANSFER_PEERS)")
	fs.BoolVar(&d.Wildcard, "dns-wildcard", envOr("MOOR_DNS_WILDCARD", "false") == "true", "answer *.NAME.<host zone> like NAME.<host zone> (MOOR_DNS_WILDCARD)")
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

func (c *config) validateDNS() error {
	d := c.DNS
	switch d.Mode {
	case "auth", "dnsmasq", "both":
	default:
		return fmt.Errorf("MOOR_DNS_MODE: must be auth, dnsmasq or both (got %q)", d.Mode)
	}
	if d.Mode != "auth" && d.HostsDir == "" {
		return fmt.Errorf("MOOR_DNS_HOSTSDIR: is required when MOOR_DNS_MODE is %s", d.Mode)
	}
	for i, a := range splitList(c.DNSAddr) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("MOOR_DNS_ADDR[%d]: must be host:port: %v", i, err)
		}
	}
	if _, err := parsePrefixes("MOOR_DNS_CONTAINER_CIDRS", d.ContainerCIDRs); err != nil {
		return err
	}
	if _, err := parsePrefixes("MOOR_DNS_TRANSFER_PEERS", d.TransferPeers); err != nil {
		return err
	}
	for _, f := range splitList(d.ContainerDNS) {
		if _, err := netip.ParseAddr(f); err != nil {
			return fmt.Errorf("MOOR_CONTAINER_DNS: %q must be an IP address", f)
		}
	}
	if d.Upstreams != "none" {
		if _, err := parseAddrPorts("MOOR_DNS_UPSTREAMS", d.Upstreams); err != nil {
			return err
		}
	}
	if _, err := parseAddrPorts("MOOR_DNS_SECONDARIES", d.Secondaries); err != nil {
		return err
	}
	if d.Refresh < 100*time.Millisecond {
		return fmt.Errorf("MOOR_DNS_REFRESH: must be at least 100ms")
	}
	return nil
}

// newDNSServer builds the DNS server from the configuration.
func newDNSServer(c *config, st *store.Store, logger *slog.Logger) (*dnsserver.Server, error) {
	d := c.DNS
	cidrs, _ := parsePrefixes("MOOR_DNS_CONTAINER_CIDRS", d.ContainerCIDRs)
	peers, _ := parsePrefixes("MOOR_DNS_TRANSFER_PEERS", d.TransferPeers)
	secondaries, _ := parseAddrPorts("MOOR_DNS_SECONDARIES", d.Secondaries)
	var upstreams []string
	switch {
	case d.Upstreams == "none":
	case d.Upstreams != "":
		upstreams, _ = parseAddrPorts("MOOR_DNS_UPSTREAMS", d.Upstreams)
	default:
		ups, err := dnsserver.ResolvConfServers(d.ResolvConf)
		if err != nil {
			logger.Warn("dns: no upstream resolvers (containers get REFUSED for other names)", "resolv_conf", d.ResolvConf, "err", err)
		}
		upstreams = ups
	}
	public := netip.MustParseAddr(c.PublicIP)
	// The host zone's name server is the first specific listen address (or
	// the public address); the container zone's is what containers are given.
	hostNS := []netip.Addr{public}
	for _, a := range splitList(c.DNSAddr) {
		host, _, _ := net.SplitHostPort(a)
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			hostNS = []netip.Addr{ip}
			break
		}
	}
	contNS := hostNS
	if cd := splitList(d.ContainerDNS); len(cd) > 0 {
		contNS = nil
		for _, f := range cd {
			contNS = append(contNS, netip.MustParseAddr(f))
		}
	}
	cfg := dnsserver.Config{
		Zones: dnsserver.ZoneConfig{
			HostZone: c.HostZone, ContainerZone: c.ContainerZone, TTL: uint32(c.DNSTTL),
			HostNS: hostNS, ContainerNS: contNS, ReverseCIDRs: cidrs, Wildcard: d.Wildcard,
		},
		ContainerCIDRs: cidrs, Upstreams: upstreams, Secondaries: secondaries, TransferPeers: peers,
		Refresh: d.Refresh,
	}
	if d.Mode != "dnsmasq" {
		cfg.Listen = splitList(c.DNSAddr)
	}
	if d.Mode != "auth" {
		cfg.HostsDir = d.HostsDir
	}
	return dnsserver.New(st, cfg, logger.With("part", "dns"))
}
