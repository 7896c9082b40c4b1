// Command moor is a self-hosted control plane for Docker.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/backup"
	"github.com/moorhq/moor/internal/backups"
	"github.com/moorhq/moor/internal/catalog"
	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/egress"
	"github.com/moorhq/moor/internal/engine"
	"github.com/moorhq/moor/internal/lifecycle"
	"github.com/moorhq/moor/internal/reconciler"
	"github.com/moorhq/moor/internal/retention"
	"github.com/moorhq/moor/internal/secretbox"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/internal/webhook"
	"github.com/moorhq/moor/provider"
	"github.com/moorhq/moor/router"
	"github.com/moorhq/moor/web"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// parse parses a server command's flags: every setting of config, plus
// extra's.
func parse(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config, error) {
	return parseWith(flagCommandSpec{name: name}, args, stderr, extra)
}

// parseWith parses the flags of a flag-parsed command; its -h lists the
// flags in spec.show (all when nil) and goes to out.
func parseWith(spec flagCommandSpec, args []string, out io.Writer, extra func(*flag.FlagSet)) (*config, error) {
	c, rest, err := parseWithArgs(spec, args, out, extra)
	if err == nil && len(rest) > 0 {
		return nil, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return c, err
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func openStore(ctx context.Context, c *config, logger *slog.Logger) (*store.Store, error) {
	if c.DatabaseURL == "" {
		return nil, errors.New("MOOR_DATABASE_URL is required")
	}
	return store.Open(ctx, c.DatabaseURL, logger)
}

func migrate(args []string, usage, stdout, stderr io.Writer) error {
	var down int
	c, err := parseWith(migrateSpec, args, usage, func(fs *flag.FlagSet) {
		fs.IntVar(&down, "down", 0, "revert this many migrations instead")
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := openStore(ctx, c, newLogger(c, stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	var names []string
	verb := "applied"
	if down > 0 {
		verb = "reverted"
		names, err = st.MigrateDown(ctx, down)
	} else {
		names, err = st.Migrate(ctx)
	}
	for _, n := range names {
		fmt.Fprintf(stdout, "%s %s\n", verb, n)
	}
	if err == nil && len(names) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	}
	return err
}

func apikeyCreate(args []string, usage, stdout, stderr io.Writer) error {
	var name, role string
	c, err := parseWith(apikeySpec, args, usage, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "key name (a DNS label)")
		fs.StringVar(&role, "role", "viewer", "admin, operator or viewer")
	})
	if err != nil {
		return err
	}
	if err := auth.ValidateKeyName(name); err != nil {
		return err
	}
	r, err := auth.ParseRole(role)
	if err != nil {
		return err
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		return err
	}
	err = withMigratedStore(c, stderr, func(ctx context.Context, st *store.Store) error {
		_, err := st.CreateAPIKey(ctx, name, r, hash)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}

// withMigratedStore runs fn on a migrated database, for one-shot commands.
func withMigratedStore(c *config, stderr io.Writer, fn func(context.Context, *store.Store) error) error {
	ctx := context.Background()
	st, err := openStore(ctx, c, newLogger(c, stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	return fn(ctx, st)
}

func userAdd(args []string, usage io.Writer, stdin io.Reader, stdout, stderr io.Writer) error {
	var username, role string
	c, err := parseWith(userSpec, args, usage, func(fs *flag.FlagSet) {
		fs.StringVar(&username, "username", "", "user name (a DNS label)")
		fs.StringVar(&role, "role", "viewer", "admin, operator or viewer")
	})
	if err != nil {
		return err
	}
	if !domain.IsLabel(username) {
		return domain.Invalid("username", "must be a DNS label")
	}
	r, err := auth.ParseRole(role)
	if err != nil {
		return err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	password := strings.TrimRight(line, "\r\n")
	if err := auth.ValidatePassword(password); err != nil {
		return fmt.Errorf("%w (read from stdin)", err)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	err = withMigratedStore(c, stderr, func(ctx context.Context, st *store.Store) error {
		_, err := st.AddUser(ctx, username, hash, r)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added user %s (%s)\n", username, r)
	return nil
}

func serve(args []string, usage, stderr io.Writer) error {
	c, err := parseWith(serveSpec, args, usage, nil)
	if err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	logger := newLogger(c, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := openStore(ctx, c, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range applied {
		logger.Info("migration applied", "name", m)
	}
	installation, err := st.InstallationID(ctx)
	if err != nil {
		return err
	}
	cat, err := catalog.Load(c.CatalogDir, logger)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	box, err := secretbox.LoadKey(c.SecretKey, filepath.Join(c.DataDir, "secret.key"), logger)
	if err != nil {
		return err
	}
	docker, err := engine.New(c.DockerHost, logger)
	if err != nil {
		return err
	}
	defer docker.Close()
	locker := st.NewLocker()
	defer locker.Close()
	// Held from the start: moor uninstall sees this server and refuses,
	// and this server refuses to start while an uninstall runs.
	if err := locker.Hold(ctx); err != nil {
		if errors.Is(err, store.ErrUninstalling) {
			return fmt.Errorf("%w: start moor again once it is done", store.ErrUninstalling)
		}
		return err
	}

	rc := reconciler.New(st, docker, locker, box, reconciler.Config{
		InstallationID: installation, Network: c.Network, ContainerZone: c.ContainerZone,
		TTL: c.DNSTTL, Resync: c.Resync, Drain: c.Drain, Hook: haltHook(c.HaltAt, logger),
		DNSServers: splitList(c.DNS.ContainerDNS), Workers: c.Workers, Attach: splitList(c.RouterContainer),
	}, logger)
	zones := lifecycle.Zones{
		Host: c.HostZone, Container: c.ContainerZone, PublicIP: c.PublicIP, TTL: c.DNSTTL,
		AliasDomains: splitList(c.AliasDomains), Network: c.Network,
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); c.EmbeddedRouter && err == nil && port != "80" {
		zones.URLPort = port
	}
	operatorPorts, _ := domain.ParsePortRanges(c.PublishPorts) // checked by validate
	svc := lifecycle.New(cat, st, box, docker, zones, lifecycle.Publishing{Addr: c.PublishAddr, OperatorPorts: operatorPorts}, logger)
	if err := svc.ClaimMissingHosts(ctx); err != nil {
		return err
	}
	bkLocker := st.NewLocker()
	defer bkLocker.Close()
	bk, err := newBackups(ctx, c, st, svc, docker, box, installation, bkLocker, logger)
	if err != nil {
		return err
	}
	proxies, _ := c.trustedProxies() // checked by validate
	srv := &api.Server{
		Lifecycle: svc, Catalog: cat, Backups: bk, Keys: st, KeyAdmin: st, Users: st, Setup: st, Events: st, Sessions: st, Logger: logger, Version: version,
		NotFoundPage: web.NotFound(),
		Limits:       api.Limits{Rate: c.APIRate, Burst: c.APIBurst, Websockets: c.WSPerKey, ReplayRate: c.WSReplayRate},
		SignIn:       api.SignInLimits{TrustedProxies: proxies},
		Ready: map[string]api.Check{
			"database": st.Ping,
			"docker": func(ctx context.Context) error {
				if ok, why := rc.EngineReady(); !ok {
					return fmt.Errorf("docker: %s", why)
				}
				return docker.Ping(ctx)
			},
		},
	}
	hub := api.NewHub(st, logger.With("part", "events"))
	srv.Hub = hub
	dest, err := egress.New(c.DNS.settings.server.ContainerCIDRs, splitList(c.WebhookAllowedHosts))
	if err != nil {
		return fmt.Errorf("MOOR_WEBHOOK_ALLOWED_HOSTS: %w", err)
	}
	hooks := webhook.New(st, st, box, locker, dest, version, logger.With("part", "webhooks"))
	srv.Webhooks = hooks
	pruner := retention.New(st, retention.Config{MaxAge: c.EventRetention, Keep: api.HubRing}, logger.With("part", "retention"))
	prov, err := newProvider(c, st, logger)
	if err != nil {
		return err
	}
	dnsSrv, err := newDNSServer(c.DNS.settings, st, logger)
	if err != nil {
		return fmt.Errorf("dns server settings (MOOR_DNS_*): %w", err)
	}
	// Every committed event reaches each of onEvent's functions (seq 0:
	// reconnected, some may have been missed, rebuild everything).
	var lastEvent atomic.Int64
	srv.LastEvent = lastEvent.Load
	reg := newMetrics(st, rc, dnsSrv, prov, hub, lastEvent.Load, logger)
	srv.Metrics, srv.Instrument = reg.Handler(), reg.Instrument

	// The provider endpoint is guarded by the provider token, not API keys,
	// so it sits in front of the API's router.
	mux := http.NewServeMux()
	prov.Handler(mux)
	web.Register(mux)
	mux.Handle("/", srv.Handler())
	var handler http.Handler = mux
	if c.EmbeddedRouter {
		rt := router.New(prov, http.HandlerFunc(prov.ServeUnavailable), logger.With("part", "router"))
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rt.Handles(r) {
				rt.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return err
	}
	httpServer, lim := newHTTPServer(c, handler, ln)
	ln = lim
	logger.Info("moor serving", "url", "http://"+ln.Addr().String(), "version", version, "installation", installation)
	if has, err := st.HasUsers(ctx); err == nil && !has {
		// The first admin is made from the dashboard with this token, shown
		// only to whoever reads moor's own output.
		srv.FirstRun = api.FirstRun{Token: rand.Text(), Expires: time.Now().Add(firstRunTTL)}
		fmt.Fprintf(stderr, "\nmoor: first run: create the first admin at http://%s/?setup=%s (valid for an hour),\n"+
			"moor: or with: moor user add --username NAME --role admin (password on stdin)\n\n",
			displayAddr(ln.Addr().String()), srv.FirstRun.Token)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rc.Run(gctx) })
	g.Go(func() error { return locker.Run(gctx) })
	g.Go(func() error { return dnsSrv.Run(gctx) })
	g.Go(func() error { return prov.Run(gctx) })
	g.Go(func() error { return hub.Run(gctx) })
	g.Go(func() error { return hooks.Run(gctx) })
	g.Go(func() error { return pruner.Run(gctx) })
	g.Go(func() error { return bk.Run(gctx) })
	// Every change of a container or its instances (an address or health
	// change records no event) is announced by the routes trigger
	// (migration 0002) with the container's id: the provider re-reads it.
	// Likewise DNS rows and ports (migration 0003) for the DNS server. Both
	// listeners send "" after each (re)connect: everything is re-read.
	g.Go(func() error { return st.ListenRoutes(gctx, prov.Changed) })
	g.Go(func() error { return st.ListenDNS(gctx, dnsSrv.Changed) })
	onEvent := []func(seq int64){
		func(seq int64) {
			if seq > lastEvent.Load() {
				lastEvent.Store(seq)
			}
		},
		rc.Notify,
		hub.Notify,
		hooks.Notify,
	}
	g.Go(func() error {
		return st.Listen(gctx, func(seq int64) {
			for _, fn := range onEvent {
				fn(seq)
			}
		})
	})
	g.Go(func() error {
		if err := httpServer.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return httpServer.Shutdown(shutdownCtx)
	})
	err = g.Wait()
	logger.Info("moor stopped")
	return err
}

// newBackups sets up volume backups to the local directory
// MOOR_BACKUP_DIR (DATA_DIR/backups by default), target "local", under a
// key derived from MOOR_SECRET_KEY; the backups an earlier moor left
// running are marked failed, and its helper containers removed.
func newBackups(ctx context.Context, c *config, st *store.Store, svc *lifecycle.Service, docker *engine.Docker,
	box *secretbox.Box, installation string, locker *store.Locker, logger *slog.Logger) (*backups.Service, error) {
	dir := c.BackupDir
	if dir == "" {
		dir = filepath.Join(c.DataDir, "backups")
	}
	target, err := backup.NewDir(dir)
	if err != nil {
		return nil, fmt.Errorf("MOOR_BACKUP_DIR: %w", err)
	}
	key, err := backup.KeyFrom(box)
	if err != nil {
		return nil, err
	}
	// A lock session of its own: the reconciler's would take a container's
	// lock again while a restore holds it.
	bk, err := backups.New(st, svc, docker, backups.Config{InstallationID: installation, Target: target, TargetName: "local", Key: key,
		Locker: locker}, logger.With("part", "backups"))
	if err != nil {
		return nil, err
	}
	if err := bk.Recover(ctx); err != nil {
		return nil, err
	}
	if err := docker.SweepHelpers(ctx, installation); err != nil {
		logger.Warn("remove helper containers left behind", "err", err)
	}
	return bk, nil
}

// newHTTPServer is moor's HTTP server on ln, with the limits of issue 8:
// a header deadline (10s), a body deadline (MOOR_HTTP_BODY_TIMEOUT) and an
// idle timeout (MOOR_HTTP_IDLE_TIMEOUT) for ordinary requests, and the
// connection cap of connLimiter. http.Server.ReadTimeout and WriteTimeout
// stay unset: they would cut websockets and long polls.
func newHTTPServer(c *config, h http.Handler, ln net.Listener) (*http.Server, *connLimiter) {
	lim := newConnLimiter(ln, c.HTTPMaxConns, c.HTTPMaxLong, c.HTTPBodyTimeout)
	return &http.Server{Addr: c.HTTPAddr, Handler: lim.wrap(h), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: c.HTTPIdleTimeout, ConnContext: connContext}, lim
}

// newProvider builds the Traefik provider from the configuration; without
// MOOR_PROVIDER_TOKEN the token is read from a file in the data directory,
// made up the first time, so Traefik's configuration survives restarts. The
// token itself is never logged.
func newProvider(c *config, st *store.Store, logger *slog.Logger) (*provider.Provider, error) {
	token := c.ProviderToken
	if token == "" {
		path := filepath.Join(c.DataDir, "provider.token")
		var created bool
		var err error
		token, created, err = secretbox.SecretFile(path, func() string { return rand.Text() })
		if err != nil {
			return nil, fmt.Errorf("provider token file (or set MOOR_PROVIDER_TOKEN): %w", err)
		}
		if created {
			logger.Warn("MOOR_PROVIDER_TOKEN is unset: generated a provider token; give it to Traefik", "path", path)
		} else {
			logger.Info("MOOR_PROVIDER_TOKEN is unset: using the provider token in its file", "path", path)
		}
	}
	p, err := provider.New(st, provider.Options{
		HostZone: c.HostZone, EntryPoints: splitList(c.TraefikEntryPoints), TLSEntryPoints: splitList(c.TraefikTLSEntryPoints),
		CertResolver: c.TraefikCertResolver, FallbackURL: c.fallbackURL(),
	}, token, c.ProviderInterval, logger.With("part", "provider"))
	if err != nil {
		return nil, fmt.Errorf("traefik provider settings (MOOR_TRAEFIK_*, MOOR_PROVIDER_*): %w", err)
	}
	return p, nil
}

// haltHook stops the reconciler forever at one step, for crash tests.
func haltHook(step string, logger *slog.Logger) func(string) {
	if step == "" {
		return nil
	}
	return func(s string) {
		if s == step {
			logger.Warn("halted for testing", "step", s)
			select {}
		}
	}
}

// firstRunTTL bounds the first-run setup token ("an hour" in the message).
const firstRunTTL = time.Hour

// displayAddr is a listen address as a browser on this machine opens it.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
