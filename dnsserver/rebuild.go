package dnsserver

import (
	"context"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// rebuildLoop re-reads what changed until ctx ends, and everything every
// Refresh.
func (s *Server) rebuildLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.pending.Ready():
		case <-t.C:
			s.pending.MarkAll()
			continue
		}
		all, ids := s.pending.Take()
		if all {
			s.rebuild(ctx)
		} else if len(ids) > 0 {
			s.rebuildSome(ctx, ids)
		}
	}
}

// zoneState is what the last build was made of: each container's
// fragment, the XOR of their digests, and the projects' networks.
type zoneState struct {
	frags map[string]*fragment // by container id
	hash  [32]byte
	views *views
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
	st, err := s.src.DNSState(ctx)
	if err != nil {
		s.pending.Restore(true, nil)
		s.readFailed(ctx, err)
		return
	}
	d := dataOf(st)
	zs := &zoneState{frags: map[string]*fragment{}, views: newViews(d.Networks)}
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
	st, err := s.src.DNSStateOf(ctx, ids)
	if err != nil {
		s.pending.Restore(false, ids)
		s.readFailed(ctx, err)
		return
	}
	d := dataOf(st)
	zs := &zoneState{frags: make(map[string]*fragment, len(s.zs.frags)+len(ids)), hash: s.zs.hash, views: newViews(d.Networks)}
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
	time.AfterFunc(time.Second, s.pending.Wake)
}

// publish assembles zs into a snapshot with the serial of its content and
// swaps it in (unless nothing changed), then tells dnsmasq and the
// secondaries.
func (s *Server) publish(ctx context.Context, zs *zoneState, t0 time.Time, rows int, drop, add []*fragment, incremental bool) {
	old := s.store.Load()
	if old != nil && s.zs != nil && zs.hash == s.zs.hash {
		if zs.views.signature() != old.views.signature() {
			// The same zones seen from other networks: the serial stays.
			next := *old
			next.views = zs.views
			s.store.Store(&next)
			s.stats.updates.Add(1)
			s.log.Debug("dns views changed", "serial", old.Serial)
		}
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
		s.pending.Restore(true, nil)
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
	snap.views = zs.views
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

// dataOf is the store's state in the build's terms: TTLs of at least a
// second, -1 for a row of no replica.
func dataOf(st domain.DNSState) Data {
	d := Data{
		Records:  make([]Record, 0, len(st.Records)),
		Ports:    make([]Port, 0, len(st.Ports)),
		Aliases:  make([]Alias, 0, len(st.Aliases)),
		Networks: st.Networks,
	}
	for _, r := range st.Records {
		rep := -1
		if r.Replica != nil {
			rep = *r.Replica
		}
		d.Records = append(d.Records, Record{Zone: r.Zone, Name: r.Name, Type: r.Type, Value: r.Value,
			TTL: uint32(max(r.TTL, 1)), Replica: rep, Container: r.Container, ContainerID: r.ContainerID, Project: r.Project})
	}
	for _, p := range st.Ports {
		d.Ports = append(d.Ports, Port{ContainerID: p.ContainerID, Container: p.Container, Project: p.Project, Name: p.Name, Port: uint16(p.Port), Proto: p.Protocol})
	}
	for _, a := range st.Aliases {
		d.Aliases = append(d.Aliases, Alias{ContainerID: a.ContainerID, Container: a.Container, Project: a.Project, Name: a.Alias})
	}
	return d
}
