// Package retention prunes old events, keeping what webhooks and resuming
// websocket clients still need (the rule is the store's PruneEvents).
package retention

import (
	"context"
	"log/slog"
	"time"
)

// Store deletes old events.
type Store interface {
	PruneEvents(ctx context.Context, before time.Time, keep int64, batch int) (int64, error)
}

// Config says what is kept and how often the pruner looks.
type Config struct {
	// MaxAge is how long an event is kept at least; 0 keeps events forever.
	MaxAge time.Duration
	// Keep is how many of the newest events stay whatever their age: at
	// least the websocket hub's ring, so ?after= resumes from within it work.
	Keep int64
	// Every is the period of pruning runs; the first is at start.
	Every time.Duration
	// Batch is the most events deleted per transaction.
	Batch int
}

// Pruner deletes old events periodically.
type Pruner struct {
	store  Store
	cfg    Config
	logger *slog.Logger
}

// New returns a pruner; Run prunes.
func New(store Store, cfg Config, logger *slog.Logger) *Pruner {
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 5000
	}
	return &Pruner{store: store, cfg: cfg, logger: logger}
}

// Run prunes at start and then every cfg.Every until ctx ends. A failed run
// is logged and retried at the next period: events are only kept longer.
func (p *Pruner) Run(ctx context.Context) error {
	if p.cfg.MaxAge <= 0 {
		p.logger.Info("event retention is off: events are kept forever")
		return nil
	}
	t := time.NewTicker(p.cfg.Every)
	defer t.Stop()
	for {
		if _, err := p.Prune(ctx); err != nil && ctx.Err() == nil {
			p.logger.Warn("cannot prune events; will retry", "err", err, "retry_in", p.cfg.Every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Prune runs one pruning pass and returns how many events it deleted.
func (p *Pruner) Prune(ctx context.Context) (int64, error) {
	start := time.Now()
	n, err := p.store.PruneEvents(ctx, start.Add(-p.cfg.MaxAge), p.cfg.Keep, p.cfg.Batch)
	if n > 0 {
		p.logger.Info("events pruned", "deleted", n, "older_than", p.cfg.MaxAge, "took", time.Since(start).Round(time.Millisecond))
	}
	return n, err
}
