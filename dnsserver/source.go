package dnsserver

import (
	"context"
	"sync/atomic"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/store"
)

type snapStore = atomic.Pointer[Snapshot]

// StoreSource reads zones from moor's PostgreSQL store.
type StoreSource struct{ Store *store.Store }

// DNSData reads every container's rows.
func (s StoreSource) DNSData(ctx context.Context) (Data, error) {
	st, err := s.Store.DNSState(ctx)
	if err != nil {
		return Data{}, err
	}
	return convert(st), nil
}

// DNSDataOf reads the rows of these containers only.
func (s StoreSource) DNSDataOf(ctx context.Context, ids []string) (Data, error) {
	st, err := s.Store.DNSStateOf(ctx, ids)
	if err != nil {
		return Data{}, err
	}
	return convert(st), nil
}

func convert(st domain.DNSState) Data {
	d := Data{
		Records: make([]Record, 0, len(st.Records)),
		Ports:   make([]Port, 0, len(st.Ports)),
		Aliases: make([]Alias, 0, len(st.Aliases)),
	}
	for _, r := range st.Records {
		rep := -1
		if r.Replica != nil {
			rep = *r.Replica
		}
		d.Records = append(d.Records, Record{Zone: r.Zone, Name: r.Name, Type: r.Type, Value: r.Value,
			TTL: uint32(max(r.TTL, 1)), Replica: rep, Container: r.Container, ContainerID: r.ContainerID})
	}
	for _, p := range st.Ports {
		d.Ports = append(d.Ports, Port{ContainerID: p.ContainerID, Container: p.Container, Name: p.Name, Port: uint16(p.Port), Proto: p.Protocol})
	}
	for _, a := range st.Aliases {
		d.Aliases = append(d.Aliases, Alias{ContainerID: a.ContainerID, Container: a.Container, Name: a.Alias})
	}
	return d
}

// DNSSerial is the store's serial for this content hash.
func (s StoreSource) DNSSerial(ctx context.Context, hash []byte) (uint32, error) {
	return s.Store.DNSSerial(ctx, hash)
}

// ListenDNS calls fn with the id of each container whose DNS rows changed
// ("" after a reconnect).
func (s StoreSource) ListenDNS(ctx context.Context, fn func(containerID string)) error {
	return s.Store.ListenDNS(ctx, fn)
}
