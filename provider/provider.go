package provider

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/pending"
)

// Source reads the state the configuration is built from, in one
// consistent snapshot of the database: every container, or the ones with
// the given ids, and the sequence number of the last event the read
// reflects.
type Source interface {
	RoutingState(ctx context.Context) ([]domain.Container, int64, error)
	RoutingStateOf(ctx context.Context, ids []string) ([]domain.Container, int64, error)
}

// MaxWait bounds a long poll (?wait=).
const MaxWait = 60 * time.Second

// Snapshot is one rendered configuration.
type Snapshot struct {
	Body []byte
	ETag string // quoted, as sent in the ETag header
	Seq  int64  // the last event the state reflects
	// file holds Body for sendfile; nil where no unnamed file could be
	// made (not Linux): Body is written from memory then.
	file *bodyFile
	// changed is closed when a newer snapshot replaces this one.
	changed chan struct{}
}

// Provider keeps the current snapshot and serves it. It is fed by
// Changed(id) when a container or its instances changed (the routes
// trigger), which re-reads and re-renders that container only, and
// Changed("") after the listener (re)connects; it rebuilds in full on
// start, on every interval, and after an error.
type Provider struct {
	src      Source
	opts     Options
	token    []byte
	interval time.Duration
	logger   *slog.Logger

	pending *pending.Set // container ids to re-read, or everything

	mu  sync.Mutex // serialises rebuilds; guards asm
	asm *assembler

	snap     atomic.Pointer[Snapshot]
	owners   atomic.Pointer[map[string]string]  // host name -> container name
	backends atomic.Pointer[map[string]Backend] // container name -> its replicas' URLs

	stats counters
}

// New returns a Provider; token is the bearer token Traefik and the plugin
// send; interval is the period of the timed full rebuild.
func New(src Source, opts Options, token string, interval time.Duration, logger *slog.Logger) (*Provider, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if len(token) < 16 {
		return nil, domain.Invalid("provider token", "must be at least 16 characters")
	}
	if interval <= 0 {
		interval = 30 * time.Second
	}
	p := &Provider{src: src, opts: opts, token: []byte(token), interval: interval, logger: logger,
		pending: pending.New(), asm: newAssembler(opts)}
	p.pending.Restore(true, nil) // nothing read yet
	return p, nil
}

// Changed asks for the container with this id to be re-read, or, with "",
// everything: it is for the store's ListenRoutes, which sends "" after each
// (re)connect. It never blocks; a burst makes one rebuild.
func (p *Provider) Changed(id string) { p.pending.Mark(id) }

// Current returns the snapshot being served, or nil before the first one.
func (p *Provider) Current() *Snapshot { return p.snap.Load() }

// Run rebuilds until ctx ends: at once, on every notice, and fully every
// interval. A failed rebuild keeps the last good snapshot and is retried,
// in full, with backoff.
func (p *Provider) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timed := false
		select {
		case <-ctx.Done():
			return nil
		case <-p.pending.Ready():
		case <-timer.C:
			timed = true
		}
		all, ids := p.pending.Take()
		full := all || timed
		var err error
		switch {
		case full:
			p.stats.rebuilds.Add(1)
			err = p.Rebuild(ctx)
		case len(ids) > 0:
			p.stats.patches.Add(1)
			err = p.apply(ctx, ids)
		default:
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.stats.failures.Add(1)
			p.logger.Warn("traefik configuration not rebuilt; serving the last good one", "err", err, "retry", backoff,
				"have_snapshot", p.snap.Load() != nil)
			p.pending.Restore(true, nil)
			resetTimer(timer, backoff)
			backoff = min(backoff*2, p.interval)
			continue
		}
		backoff = 100 * time.Millisecond
		if full {
			resetTimer(timer, p.interval)
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}

// Rebuild reads the whole state, renders it, and swaps the snapshot in when
// the bytes changed (long polls waiting on the old one are woken).
func (p *Provider) Rebuild(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, seq, err := p.src.RoutingState(ctx)
	if err != nil {
		return err
	}
	p.asm.replaceAll(cs)
	return p.publish(seq)
}

// apply re-reads the containers with these ids and re-renders them.
func (p *Provider) apply(ctx context.Context, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, seq, err := p.src.RoutingStateOf(ctx, ids)
	if err != nil {
		return err
	}
	p.asm.update(ids, cs)
	return p.publish(seq)
}

// publish renders the assembler's state and swaps it in if it changed.
func (p *Provider) publish(seq int64) error {
	body, err := p.asm.render()
	if err != nil {
		return err
	}
	// Status pages follow every rebuild: a stop does not change the bytes
	// (starting and stopped containers both point at moor) but the page.
	owners := p.asm.owners
	p.owners.Store(&owners)
	backends := maps.Clone(p.asm.backends)
	p.backends.Store(&backends)
	old := p.snap.Load()
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	if old != nil && old.ETag == etag {
		return nil
	}
	if old != nil {
		seq = max(seq, old.Seq)
	}
	file, err := newBodyFile(body)
	if err != nil {
		p.logger.Debug("traefik configuration served from memory", "err", err)
	}
	p.snap.Store(&Snapshot{Body: body, ETag: etag, Seq: seq, file: file, changed: make(chan struct{})})
	p.stats.published.Add(1)
	if old != nil {
		close(old.changed)
		old.file.release()
	}
	p.logger.Debug("traefik configuration rebuilt", "seq", seq, "bytes", len(body), "etag", etag)
	return nil
}

// ServeConfig serves GET /api/v1/traefik/config: the current snapshot to a
// caller with the provider token. With If-None-Match equal to the current
// ETag it answers 304, after holding the request up to ?wait= (a duration
// such as 30s, or seconds) for a newer snapshot. Before the first snapshot
// that is a true picture of the database it answers 503, never 200.
func (p *Provider) ServeConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		jsonError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", "use GET")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), p.token) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="moor-provider"`)
		jsonError(w, http.StatusUnauthorized, "unauthorized", "", "the provider token is required: Authorization: Bearer <MOOR_PROVIDER_TOKEN>")
		return
	}
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		jsonError(w, http.StatusBadRequest, "invalid", "wait", err.Error())
		return
	}
	snap := p.snap.Load()
	if snap == nil {
		w.Header().Set("Retry-After", "1")
		jsonError(w, http.StatusServiceUnavailable, "unavailable", "", "no configuration yet: the database has not been read")
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == snap.ETag && wait > 0 {
		t := time.NewTimer(wait)
		p.stats.waiting.Add(1)
		select {
		case <-snap.changed:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		p.stats.waiting.Add(-1)
		snap = p.snap.Load()
	}
	h := w.Header()
	h.Set("ETag", snap.ETag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Moor-Seq", strconv.FormatInt(snap.Seq, 10))
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == snap.ETag {
		p.stats.unchanged.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	p.stats.served.Add(1)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(snap.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodGet {
		return
	}
	if f := snap.file.open(); f != nil {
		defer f.Close()
		if c := connOf(r.Context()); c != nil {
			cork(c, true)
			defer cork(c, false)
		}
		// sendfile(2); the limit spares the call that would find EOF.
		io.Copy(w, io.LimitReader(f, int64(len(snap.Body))))
		return
	}
	w.Write(snap.Body)
}

func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, fmt.Errorf("must be a duration such as 30s, or seconds (got %q)", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > MaxWait {
		return 0, fmt.Errorf("must be between 0 and %s", MaxWait)
	}
	return d, nil
}

func jsonError(w http.ResponseWriter, status int, code, field, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	e := map[string]string{"code": code, "message": msg}
	if field != "" {
		e["field"] = field
	}
	json.NewEncoder(w).Encode(map[string]any{"error": e})
}

// Backend returns the container that answers to host, and where its HTTP
// port is served (none while no replica is ready); ok is false for a host
// no container answers to. For moor's embedded router; safe for
// concurrent use.
func (p *Provider) Backend(host string) (name string, b Backend, ok bool) {
	owners, backends := p.owners.Load(), p.backends.Load()
	if owners == nil || backends == nil {
		return "", Backend{}, false
	}
	name, ok = (*owners)[host]
	if !ok {
		return "", Backend{}, false
	}
	return name, (*backends)[name], true
}

// routeNames returns cs (a copy: the caller's stay as they are) with each
// container named as routes know it: by its host-zone label
// (domain.HostLabel), unique across projects where the container's own
// name is not, so routers, services and status pages of two containers of
// one name in two projects never mix.
func routeNames(cs []domain.Container) []domain.Container {
	out := slices.Clone(cs)
	for i := range out {
		out[i].Name = domain.HostLabel(out[i].Project, out[i].Name)
	}
	return out
}
