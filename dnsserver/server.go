package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"
)

// Source is where zones come from (the store, through StoreSource).
type Source interface {
	// DNSData reads every record, port and alias.
	DNSData(ctx context.Context) (Data, error)
	// DNSDataOf reads those of the containers with these ids.
	DNSDataOf(ctx context.Context, ids []string) (Data, error)
	// DNSSerial returns the SOA serial of content with this hash, bumping
	// it when the content changed.
	DNSSerial(ctx context.Context, hash []byte) (uint32, error)
	// ListenDNS calls fn with the container id of each committed change
	// ("" when changes may have been missed), until ctx ends.
	ListenDNS(ctx context.Context, fn func(containerID string)) error
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
	// (SO_REUSEPORT; default GOMAXPROCS).
	Sockets int
}

// Server answers DNS queries from the current snapshot.
type Server struct {
	cfg       Config
	src       Source
	log       *slog.Logger
	upstreams []string
	xferPeers []netip.Prefix
	store     snapStore
	kick      chan struct{}
	ready     chan struct{} // closed once the listeners are bound
	addrs     []net.Addr    // bound addresses (UDP), in Listen order

	rebuildMu sync.Mutex // one rebuild at a time; guards zs
	zs        *zoneState
	hosts     *hostsWriter

	dirtyMu sync.Mutex
	dirty   map[string]bool // containers to re-read
	full    bool            // re-read everything

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
	s := &Server{cfg: cfg, src: src, log: logger, kick: make(chan struct{}, 1), ready: make(chan struct{})}
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

// withoutSelf drops upstreams that are one of moor's own listeners, so a
// forwarded query can never come back to moor.
func withoutSelf(ups, listen []string, logger *slog.Logger) []string {
	self := map[netip.AddrPort]bool{}
	var wildPorts []uint16
	for _, l := range listen {
		host, port, _ := net.SplitHostPort(l)
		ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
		if err != nil {
			continue
		}
		if ap.Addr().IsUnspecified() {
			wildPorts = append(wildPorts, ap.Port())
		}
		self[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
	}
	local := map[netip.Addr]bool{}
	if len(wildPorts) > 0 {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				local[p.Addr().Unmap()] = true
			}
		}
	}
	var out []string
	for _, u := range ups {
		ap := netip.MustParseAddrPort(u)
		a := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		loop := self[a]
		for _, p := range wildPorts {
			loop = loop || (p == a.Port() && (local[a.Addr()] || a.Addr().IsLoopback()))
		}
		if loop {
			logger.Warn("dns upstream is moor itself, dropped (no loops)", "upstream", u)
			continue
		}
		out = append(out, u)
	}
	return out
}

// Upstreams are the resolvers forwarded to, after dropping moor's own
// addresses.
func (s *Server) Upstreams() []string { return s.upstreams }

// Notify is called for every committed event (seq 0: the listener
// reconnected). DNS changes arrive through the store's own notifications,
// with the container's id; a reconnect may have lost some, so it asks for a
// full re-read.
func (s *Server) Notify(seq int64) {
	if seq == 0 {
		s.changed("")
	}
}

// changed marks a container for re-reading ("": everything) and wakes the
// rebuild loop.
func (s *Server) changed(id string) {
	s.dirtyMu.Lock()
	if id == "" {
		s.full = true
	} else {
		if s.dirty == nil {
			s.dirty = map[string]bool{}
		}
		s.dirty[id] = true
	}
	s.dirtyMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// takeDirty returns what to re-read and clears it.
func (s *Server) takeDirty() (full bool, ids []string) {
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	full, s.full = s.full, false
	for id := range s.dirty {
		ids = append(ids, id)
	}
	s.dirty = nil
	return full, ids
}

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
		conns, err := listenUDP(ctx, addr, s.cfg.Sockets)
		if err != nil {
			closeAll(closers)
			return fmt.Errorf("dns listen udp %s: %w", addr, err)
		}
		for _, c := range conns {
			closers = append(closers, c)
		}
		s.addrs = append(s.addrs, conns[0].LocalAddr())
		tl, err := net.Listen("tcp", conns[0].LocalAddr().String())
		if err != nil {
			closeAll(closers)
			return fmt.Errorf("dns listen tcp %s: %w", addr, err)
		}
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
	g.Go(func() error { return s.src.ListenDNS(ctx, s.changed) })
	g.Go(func() error {
		t := time.NewTicker(s.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-s.kick:
			case <-t.C:
				s.changed("")
				continue
			}
			full, ids := s.takeDirty()
			if full {
				s.rebuild(ctx)
			} else if len(ids) > 0 {
				s.rebuildSome(ctx, ids)
			}
		}
	})
	return g.Wait()
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

// zoneState is what the last build was made of: each container's
// fragment, and the XOR of their digests.
type zoneState struct {
	frags map[string]*fragment // by container id
	hash  [32]byte
}

// rebuild re-reads every container and swaps in a new snapshot when the
// content changed. On any error the last good snapshot stays.
func (s *Server) rebuild(ctx context.Context) {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	s.rebuildLocked(ctx)
}

func (s *Server) rebuildLocked(ctx context.Context) {
	t0 := time.Now()
	d, err := s.src.DNSData(ctx)
	if err != nil {
		s.dirtyMu.Lock()
		s.full = true
		s.dirtyMu.Unlock()
		s.readFailed(ctx, err)
		return
	}
	zs := &zoneState{frags: map[string]*fragment{}}
	zn := s.cfg.Zones.zoneNames()
	for k, g := range groupData(d) {
		f := buildFragment(s.cfg.Zones, zn, g)
		zs.frags[k] = f
		xorInto(&zs.hash, f.hash)
	}
	s.publish(ctx, zs, t0, len(d.Records), nil, nil, false)
}

// rebuildSome re-reads the given containers only and reassembles the
// zones with everyone else's fragments as they were.
func (s *Server) rebuildSome(ctx context.Context, ids []string) {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	if s.zs == nil {
		s.rebuildLocked(ctx)
		return
	}
	t0 := time.Now()
	d, err := s.src.DNSDataOf(ctx, ids)
	if err != nil {
		s.dirtyMu.Lock()
		if s.dirty == nil {
			s.dirty = map[string]bool{}
		}
		for _, id := range ids {
			s.dirty[id] = true
		}
		s.dirtyMu.Unlock()
		s.readFailed(ctx, err)
		return
	}
	zs := &zoneState{frags: make(map[string]*fragment, len(s.zs.frags)+len(ids)), hash: s.zs.hash}
	for k, f := range s.zs.frags {
		zs.frags[k] = f
	}
	gs := groupData(d)
	zn := s.cfg.Zones.zoneNames()
	var drop, add []*fragment
	for _, id := range ids {
		if old := zs.frags[id]; old != nil {
			xorInto(&zs.hash, old.hash)
			delete(zs.frags, id)
			drop = append(drop, old)
		}
		if g := gs[id]; g != nil {
			f := buildFragment(s.cfg.Zones, zn, g)
			zs.frags[id] = f
			xorInto(&zs.hash, f.hash)
			add = append(add, f)
		}
	}
	s.publish(ctx, zs, t0, len(d.Records), drop, add, true)
}

// readFailed logs a failed read and tries again in a second (what is left
// to re-read stays marked).
func (s *Server) readFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.stats.failures.Add(1)
	s.log.Warn("dns: database unavailable, serving the last good zones", "err", err)
	time.AfterFunc(time.Second, func() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	})
}

// publish assembles zs into a snapshot with the serial of its content and
// swaps it in (unless nothing changed), then tells dnsmasq and the
// secondaries.
func (s *Server) publish(ctx context.Context, zs *zoneState, t0 time.Time, rows int, drop, add []*fragment, incremental bool) {
	old := s.store.Load()
	if old != nil && s.zs != nil && zs.hash == s.zs.hash {
		s.zs = zs
		return
	}
	t1 := time.Now()
	serial, err := s.src.DNSSerial(ctx, zs.hash[:])
	if err != nil {
		if ctx.Err() == nil {
			s.stats.failures.Add(1)
			s.log.Warn("dns: serial unavailable, serving the last good zones", "err", err)
		}
		s.dirtyMu.Lock()
		s.full = true
		s.dirtyMu.Unlock()
		return
	}
	t2 := time.Now()
	zn := s.cfg.Zones.zoneNames()
	var snap *Snapshot
	patched := false
	if incremental && old != nil {
		sortFragments(drop)
		sortFragments(add)
		snap, patched = patch(s.cfg.Zones, zn, old, drop, add, serial)
	}
	if !patched {
		frags := make([]*fragment, 0, len(zs.frags))
		for _, f := range zs.frags {
			frags = append(frags, f)
		}
		sortFragments(frags)
		snap, err = assemble(s.cfg.Zones, zn, frags, serial)
		if err != nil {
			s.stats.failures.Add(1)
			s.log.Error("dns: zone build failed, serving the last good zones", "err", err)
			return
		}
	}
	if old == nil || !patched && len(old.Skipped) != len(snap.Skipped) || patched && len(snap.Skipped) > 0 {
		for _, why := range snap.Skipped {
			s.log.Warn("dns: row skipped", "why", why)
		}
	}
	s.store.Store(snap)
	s.stats.updates.Add(1)
	s.zs = zs
	s.log.Debug("dns zones rebuilt", "serial", serial, "rows_read", rows, "containers", len(zs.frags), "patched", patched,
		"read_and_fragments", t1.Sub(t0), "serial_query", t2.Sub(t1), "assemble", time.Since(t2))
	if s.hosts != nil {
		if err := s.hosts.sync(snap); err != nil {
			s.log.Warn("dns: dnsmasq hosts dir sync failed", "dir", s.hosts.dir, "err", err)
		}
	}
	if old == nil || old.Serial != snap.Serial {
		for _, sec := range s.cfg.Secondaries {
			for _, z := range snap.zones {
				go s.sendNotify(ctx, sec, z.name, z.soa)
			}
		}
	}
}

// viewOf says which zones a client sees.
func (s *Server) viewOf(a netip.Addr) view {
	a = a.Unmap()
	for _, p := range s.cfg.ContainerCIDRs {
		if p.Contains(a) {
			return viewHost | viewContainer
		}
	}
	return viewHost
}

func (s *Server) xferAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.xferPeers {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// listenUDP opens n sockets on addr with SO_REUSEPORT, so the kernel spreads
// queries over them.
func listenUDP(ctx context.Context, addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
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

type dnsMsg = dns.Msg

// forwardUDP answers a container's query for another name from the
// upstreams.
func (s *Server) forwardUDP(ctx context.Context, c *net.UDPConn, from netip.AddrPort, req *dns.Msg) {
	m := s.forward(ctx, req)
	limit := 512
	if o := req.IsEdns0(); o != nil && o.UDPSize() > 512 {
		limit = int(min(o.UDPSize(), maxUDPSize))
	}
	if b := packReply(make([]byte, 0, 4096), m, limit); b != nil {
		c.WriteToUDPAddrPort(b, from)
	}
}

// formerr answers a query too long to read whole.
func formerr(out, p []byte) []byte {
	if len(p) < 12 || p[2]&0x80 != 0 {
		return nil
	}
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode, m.Rcode = u16(p, 0), true, int(p[2]>>3)&0xF, dns.RcodeFormatError
	return packReply(out, m, 512)
}

// servfail answers a query while no zones have been loaded yet.
func servfail(out, p []byte) []byte {
	if len(p) < 12 || p[2]&0x80 != 0 {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(p); err != nil || len(m.Question) != 1 {
		m = &dns.Msg{}
		m.Id = u16(p, 0)
	}
	m.Response, m.Rcode, m.Answer, m.Ns, m.Extra = true, dns.RcodeServerFailure, nil, nil, nil
	return packReply(out, m, 512)
}

func (s *Server) serveTCP(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.Close() })
			defer stop()
			s.serveConn(ctx, conn)
		}()
	}
}

// serveConn answers queries on one TCP connection until it idles out.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	ap, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	a := ap.Addr()
	buf := make([]byte, 65535)
	out := make([]byte, 0, 65535+2)
	var r request
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var lb [2]byte
		if _, err := io.ReadFull(conn, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return
		}
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		t := tally{queries: 1}
		snap := s.store.Load()
		if snap == nil {
			if b := servfail(out, buf[:n]); b != nil {
				t.reply(b)
				writeTCP(conn, b)
			}
			s.stats.flush(&t)
			continue
		}
		resp, req, act := snap.handle(out, buf[:n], &r, s.viewOf(a), true, s.xferAllowed(a), len(s.upstreams) > 0)
		switch act {
		case actReply:
			t.reply(resp)
		case actForward:
			t.forwarded++
		case actTransfer:
			s.stats.transfers.Add(1)
		}
		s.stats.flush(&t)
		switch act {
		case actDrop:
			return
		case actReply:
			if writeTCP(conn, resp) != nil {
				return
			}
		case actForward:
			if b := packReply(out, s.forward(ctx, req), 65535); b == nil || writeTCP(conn, b) != nil {
				return
			}
		case actTransfer:
			if err := s.transfer(conn, req, snap); err != nil {
				s.log.Warn("dns: zone transfer failed", "peer", a, "err", err)
				return
			}
			s.log.Info("dns: zone transferred", "peer", a, "zone", req.Question[0].Name, "type", dns.TypeToString[req.Question[0].Qtype], "serial", snap.Serial)
		}
	}
}

func writeTCP(w io.Writer, b []byte) error {
	msg := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(msg, uint16(len(b)))
	copy(msg[2:], b)
	_, err := w.Write(msg)
	return err
}

// transfer streams a zone (AXFR, or IXFR answered with the whole zone, or
// with the current SOA alone when the secondary is up to date).
func (s *Server) transfer(w io.Writer, req *dns.Msg, snap *Snapshot) error {
	q := req.Question[0]
	z := snap.zoneOfName(q.Name)
	if z == nil {
		return fmt.Errorf("zone %s vanished", q.Name)
	}
	reply := func(rrs []dns.RR) error {
		m := new(dns.Msg)
		m.Id, m.Response, m.Authoritative, m.Compress = req.Id, true, true, true
		m.Question = req.Question
		m.Answer = rrs
		b, err := m.Pack()
		if err != nil {
			return err
		}
		return writeTCP(w, b)
	}
	if q.Qtype == dns.TypeIXFR {
		for _, rr := range req.Ns {
			if soa, ok := rr.(*dns.SOA); ok && !serialLess(soa.Serial, z.soa.Serial) {
				return reply([]dns.RR{z.soa})
			}
		}
	}
	rrs := snap.records(z)
	all := make([]dns.RR, 0, len(rrs)+1)
	all = append(all, rrs...) // SOA first
	all = append(all, z.soa)
	const per = 256
	for i := 0; i < len(all); i += per {
		if err := reply(all[i:min(i+per, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

// serialLess is RFC 1982 serial arithmetic: a < b.
func serialLess(a, b uint32) bool { return a != b && int32(b-a) > 0 }

// sendNotify tells a secondary the zone changed (RFC 1996), retrying a few
// times until it acknowledges.
func (s *Server) sendNotify(ctx context.Context, addr, zoneName string, soa *dns.SOA) {
	m := new(dns.Msg)
	m.SetNotify(zoneName)
	m.Authoritative = true
	m.Answer = []dns.RR{soa}
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		r, _, err := c.ExchangeContext(ctx, m, addr)
		if err == nil && r.Opcode == dns.OpcodeNotify {
			s.log.Debug("dns: notify acknowledged", "secondary", addr, "zone", zoneName, "serial", soa.Serial)
			return
		}
	}
	s.log.Warn("dns: notify not acknowledged", "secondary", addr, "zone", zoneName, "serial", soa.Serial)
}

// forward asks the upstreams in turn; SERVFAIL when none answers.
func (s *Server) forward(ctx context.Context, req *dns.Msg) *dns.Msg {
	for _, up := range s.upstreams {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 4096}
		r, _, err := c.ExchangeContext(ctx, req, up)
		if err == nil && r.Truncated {
			c.Net = "tcp"
			r, _, err = c.ExchangeContext(ctx, req, up)
		}
		if err == nil {
			r.Id = req.Id
			return r
		}
		s.log.Debug("dns: upstream failed", "upstream", up, "err", err)
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// ResolvConfServers reads nameserver lines of a resolv.conf as ip:53.
func ResolvConfServers(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range cc.Servers {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
		}
	}
	return out, nil
}

// rebuildOnce is one timed rebuild (tests call it directly).
func (s *Server) rebuildOnce() { s.rebuild(context.Background()) }
