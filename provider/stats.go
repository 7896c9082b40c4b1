package provider

import "sync/atomic"

// Stats are the provider's counters since it started, for metrics.
type Stats struct {
	Rebuilds  uint64 // full re-reads of the state
	Patches   uint64 // re-reads of changed containers only
	Failures  uint64 // re-reads that failed (the last good snapshot stays)
	Published uint64 // snapshots with new bytes
	Served    uint64 // configurations sent (200)
	Unchanged uint64 // 304 answers to If-None-Match
	Waiting   int64  // long polls held now
	Bytes     int    // size of the configuration served; 0 before the first
	Seq       int64  // the last event the served configuration reflects
}

type counters struct {
	rebuilds, patches, failures, published, served, unchanged atomic.Uint64
	waiting                                                   atomic.Int64
}

// Stats returns the counters.
func (p *Provider) Stats() Stats {
	st := Stats{
		Rebuilds: p.stats.rebuilds.Load(), Patches: p.stats.patches.Load(), Failures: p.stats.failures.Load(),
		Published: p.stats.published.Load(), Served: p.stats.served.Load(), Unchanged: p.stats.unchanged.Load(),
		Waiting: p.stats.waiting.Load(),
	}
	if snap := p.snap.Load(); snap != nil {
		st.Bytes, st.Seq = len(snap.Body), snap.Seq
	}
	return st
}
