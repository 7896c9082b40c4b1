package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/pending"
)

// Source is where zones come from (moor's store satisfies it).
type Source interface {
	// DNSState reads every record, port and alias.
	DNSState(ctx context.Context) (domain.DNSState, error)
	// DNSStateOf reads those of the containers with these ids.
	DNSStateOf(ctx context.Context, ids []string) (domain.DNSState, error)
	// DNSSerial returns the SOA serial of content with this hash, bumping
	// it when the content changed.
	DNSSerial(ctx context.Context, hash []byte) (uint32, error)
}

// Config is the server's configuration.
type Config struct {
	Zones ZoneConfig
	// Listen holds host:port addresses; each gets a UDP and a TCP listener.
	// Empty: no queries are answered (dnsmasq mode alone).
	Listen []string
	// HostsDir, when set, is a dnsmasq --hostsdir kept in sync: one hosts
	// file per name.
	HostsDir string
	// ContainerCIDRs are the managed Docker networks: clients there see the
	// container zone and reverse zones and get other names forwarded.
	ContainerCIDRs []netip.Prefix
	// Upstreams (host:port) answer names outside moor's zones for
	// containers. Addresses of moor's own listeners are dropped (no loops).
	Upstreams []string
	// Secondaries (host:port) get a NOTIFY when the serial rises and may
	// transfer the zones, as may clients in TransferPeers.
	Secondaries   []string
	TransferPeers []netip.Prefix
	// Refresh is the period of the timed rebuild (default 30s).
	Refresh time.Duration
	// Sockets is the number of UDP sockets per listen address
	// (SO_REUSEPORT, on Linux; default GOMAXPROCS). Elsewhere it is one.
	Sockets int
	// TCPMaxConns and TCPMaxPerSource cap the open TCP connections, in
	// all and from one address (default 1,000 and 32). A connection over
	// the per-source cap is closed at once; at the global cap it takes the
	// place of the connection idle the longest (closed at once only when
	// every connection is answering a query). TCPIdleTimeout is how long a
	// connection may wait between queries (default 5s, as RFC 7766 suggests).
	TCPMaxConns     int
	TCPMaxPerSource int
	TCPIdleTimeout  time.Duration
}

// Server answers DNS queries from the current snapshot.
type Server struct {
	cfg       Config
	src       Source
	log       *slog.Logger
	upstreams []string
	xferPeers []netip.Prefix
	store     atomic.Pointer[Snapshot]
	pending   *pending.Set  // containers to re-read, or everything
	ready     chan struct{} // closed once the listeners are bound
	addrs     []net.Addr    // bound addresses (UDP), in Listen order

	rebuildMu sync.Mutex // one rebuild at a time; guards zs
	zs        *zoneState
	hosts     *hostsWriter

	stats counters
}

// New checks cfg and returns a server; Run starts it.
func New(src Source, cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Zones.check(); err != nil {
		return nil, err
	}
	if len(cfg.Listen) == 0 && cfg.HostsDir == "" {
		return nil, errors.New("Listen: must hold an address unless HostsDir is set (dnsmasq mode)")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Sockets <= 0 {
		cfg.Sockets = runtime.GOMAXPROCS(0)
	}
	if cfg.TCPMaxConns <= 0 {
		cfg.TCPMaxConns = DefaultTCPMaxConns
	}
	if cfg.TCPMaxPerSource <= 0 {
		cfg.TCPMaxPerSource = DefaultTCPMaxPerSource
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	s := &Server{cfg: cfg, src: src, log: logger, pending: pending.New(), ready: make(chan struct{})}
	for i, l := range cfg.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return nil, fmt.Errorf("Listen[%d]: must be host:port: %v", i, err)
		}
	}
	for i, u := range append(append([]string{}, cfg.Upstreams...), cfg.Secondaries...) {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return nil, fmt.Errorf("upstream or secondary [%d] %q: must be ip:port", i, u)
		}
	}
	s.upstreams = withoutSelf(cfg.Upstreams, cfg.Listen, logger)
	s.xferPeers = append([]netip.Prefix{}, cfg.TransferPeers...)
	for _, sec := range cfg.Secondaries {
		ap := netip.MustParseAddrPort(sec)
		s.xferPeers = append(s.xferPeers, netip.PrefixFrom(ap.Addr().Unmap(), ap.Addr().Unmap().BitLen()))
	}
	if cfg.HostsDir != "" {
		s.hosts = &hostsWriter{dir: cfg.HostsDir, zones: []string{fqdn(cfg.Zones.HostZone), fqdn(cfg.Zones.ContainerZone)}}
	}
	return s, nil
}

// Changed marks the container with this id for re-reading, or, with "",
// everything: it is for the store's ListenDNS, which sends "" after each
// (re)connect. It never blocks; a burst makes one rebuild.
func (s *Server) Changed(id string) { s.pending.Mark(id) }

// Snapshot returns the snapshot being served (nil before the first build).
func (s *Server) Snapshot() *Snapshot { return s.store.Load() }

// Ready is closed once the listeners are bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs are the bound UDP addresses, valid after Ready (useful with port 0).
func (s *Server) Addrs() []net.Addr { return s.addrs }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	s.rebuild(ctx)
	var closers []io.Closer
	for _, addr := range s.cfg.Listen {
		conns, tl, err := listenPair(ctx, addr, s.cfg.Sockets)
		if err != nil {
			closeAll(closers)
			return fmt.Errorf("dns listen %s: %w", addr, err)
		}
		for _, c := range conns {
			closers = append(closers, c)
		}
		s.addrs = append(s.addrs, conns[0].LocalAddr())
		closers = append(closers, tl)
		for _, c := range conns {
			g.Go(func() error { return s.serveUDP(ctx, c) })
		}
		g.Go(func() error { return s.serveTCP(ctx, tl) })
		s.log.Info("dns serving", "addr", conns[0].LocalAddr().String(), "sockets", len(conns))
	}
	close(s.ready)
	g.Go(func() error {
		<-ctx.Done()
		closeAll(closers)
		return nil
	})
	g.Go(func() error {
		s.rebuildLoop(ctx)
		return nil
	})
	return g.Wait()
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

// listenPair opens the UDP sockets and the TCP listener of addr on one
// port. With port 0 the UDP port is picked first and may already be taken
// for TCP (an outgoing connection's port): then it picks again.
func listenPair(ctx context.Context, addr string, sockets int) ([]*net.UDPConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		conns, err := listenUDP(ctx, addr, sockets)
		if err != nil {
			return nil, nil, fmt.Errorf("udp: %w", err)
		}
		tl, err := net.Listen("tcp", conns[0].LocalAddr().String())
		if err == nil {
			return conns, tl, nil
		}
		for _, c := range conns {
			c.Close()
		}
		if port != "0" || try == 10 {
			return nil, nil, fmt.Errorf("tcp: %w", err)
		}
	}
}
