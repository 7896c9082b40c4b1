package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/dnsserver"
	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/metrics"
	"github.com/moorhq/moor/internal/reconciler"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/provider"
)

// newMetrics wires every part's counters into one registry, read when
// Prometheus scrapes GET /metrics.
func newMetrics(st *store.Store, rc *reconciler.Reconciler, dnsSrv *dnsserver.Server, prov *provider.Provider,
	hub *api.Hub, lastEvent func() int64, logger *slog.Logger) *metrics.Registry {
	m := metrics.New(logger)

	m.GaugeVecFrom("moor_containers", "Managed containers by status (read from the database at each scrape).", "status",
		2*time.Second, func(ctx context.Context) (map[string]float64, error) {
			counts, err := st.ContainerCounts(ctx)
			if err != nil {
				return nil, err
			}
			out := map[string]float64{}
			for _, s := range []domain.Status{domain.StatusPending, domain.StatusCreating, domain.StatusRunning,
				domain.StatusStopped, domain.StatusFailed, domain.StatusRemoving} {
				out[string(s)] = 0
			}
			for s, n := range counts {
				out[s] = float64(n)
			}
			return out, nil
		})
	m.Gauge("moor_docker_up", "1 when the Docker engine answers the reconciler, 0 while it is away.", func() float64 {
		if ok, _ := rc.EngineReady(); ok {
			return 1
		}
		return 0
	})
	m.Gauge("moor_events_last_seq", "Sequence number of the newest event this process has heard of.", func() float64 {
		return float64(lastEvent())
	})
	m.Gauge("moor_websocket_clients", "Websocket clients of /api/v1/ws connected to this process.", func() float64 {
		return float64(hub.Clients())
	})

	register(m, dnsSrv.Stats, []stat[dnsserver.Stats]{
		{"moor_dns_queries_total", "DNS queries received, UDP and TCP.", false, func(s dnsserver.Stats) float64 { return float64(s.Queries) }},
		{"moor_dns_forwarded_total", "DNS queries passed to an upstream resolver.", false, func(s dnsserver.Stats) float64 { return float64(s.Forwarded) }},
		{"moor_dns_transfers_total", "Zone transfers (AXFR/IXFR) served.", false, func(s dnsserver.Stats) float64 { return float64(s.Transfers) }},
		{"moor_dns_zone_updates_total", "New zone snapshots published.", false, func(s dnsserver.Stats) float64 { return float64(s.Updates) }},
		{"moor_dns_zone_failures_total", "Zone rebuilds that failed; the last good zones kept serving.", false, func(s dnsserver.Stats) float64 { return float64(s.Failures) }},
		{"moor_dns_serial", "SOA serial of the zones served (0 before the first snapshot).", true, func(s dnsserver.Stats) float64 { return float64(s.Serial) }},
	})
	m.CounterVec("moor_dns_responses_total", "DNS answers moor made, by rcode (forwarded answers are not counted here).", "rcode",
		func() map[string]float64 {
			out := map[string]float64{}
			for name, n := range dnsSrv.Stats().ResponsesByRcode() {
				out[name] = float64(n)
			}
			return out
		})
	register(m, prov.Stats, []stat[provider.Stats]{
		{"moor_traefik_rebuilds_total", "Full re-reads of the routing state.", false, func(s provider.Stats) float64 { return float64(s.Rebuilds) }},
		{"moor_traefik_patches_total", "Re-reads of changed containers only.", false, func(s provider.Stats) float64 { return float64(s.Patches) }},
		{"moor_traefik_failures_total", "Routing state re-reads that failed; the last good configuration kept serving.", false, func(s provider.Stats) float64 { return float64(s.Failures) }},
		{"moor_traefik_configs_published_total", "Traefik configurations with new bytes.", false, func(s provider.Stats) float64 { return float64(s.Published) }},
		{"moor_traefik_configs_served_total", "Traefik configurations sent (200).", false, func(s provider.Stats) float64 { return float64(s.Served) }},
		{"moor_traefik_not_modified_total", "304 answers to If-None-Match.", false, func(s provider.Stats) float64 { return float64(s.Unchanged) }},
		{"moor_traefik_long_polls", "Long polls (the plugin's ?wait=) held now.", true, func(s provider.Stats) float64 { return float64(s.Waiting) }},
		{"moor_traefik_config_bytes", "Size of the Traefik configuration served (0 before the first).", true, func(s provider.Stats) float64 { return float64(s.Bytes) }},
	})
	return m
}

// stat is one metric read from a field of a part's Stats.
type stat[S any] struct {
	name, help string
	gauge      bool // else a counter
	field      func(S) float64
}

func register[S any](m *metrics.Registry, stats func() S, list []stat[S]) {
	for _, st := range list {
		read := func() float64 { return st.field(stats()) }
		if st.gauge {
			m.Gauge(st.name, st.help, read)
		} else {
			m.Counter(st.name, st.help, read)
		}
	}
}
