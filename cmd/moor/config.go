package main

import (
	"flag"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moorhq/moor/api"
	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/egress"
	"github.com/moorhq/moor/internal/lifecycle"
)

// config is moor's configuration: each environment variable has a flag of
// the same meaning; a flag given on the command line wins.
type config struct {
	DatabaseURL   string
	HTTPAddr      string
	DNSAddr       string
	HostZone      string
	ContainerZone string
	PublicIP      string
	Network       string
	DockerHost    string
	CatalogDir    string
	ProviderToken string
	SecretKey     string
	DataDir       string
	// BackupDir is the local directory volume backups go to ("":
	// DataDir/backups).
	BackupDir string
	DNSTTL    int
	Resync    time.Duration
	Drain     time.Duration
	Workers   int
	// Limits bound each API key or user.
	APIRate      float64
	APIBurst     int
	WSPerKey     int
	WSReplayRate int
	// AliasDomains: domains under which operators may add aliases.
	AliasDomains string
	// RouterContainer names the containers (Traefik) attached to every
	// project network.
	RouterContainer string
	// PublishAddr is the host address of published ports that name none;
	// PublishPorts the host ports operators may publish (admins: any).
	PublishAddr  string
	PublishPorts string
	// WebhookAllowedHosts are destinations webhooks may reach besides
	// public addresses and the container networks.
	WebhookAllowedHosts string
	LogFormat           string
	LogLevel            string
	HaltAt              string
	DNS                 dnsConfig
	// Traefik provider
	TraefikEntryPoints    string
	TraefikTLSEntryPoints string
	TraefikCertResolver   string
	ProviderFallbackURL   string
	ProviderInterval      time.Duration
	// EmbeddedRouter: moor's own listener routes container host names
	// (development; Traefik's job in production).
	EmbeddedRouter bool

	// TrustedProxies: comma-separated CIDRs (or addresses) whose
	// X-Forwarded-For is believed; see trustedProxies.
	TrustedProxies string
	// HTTP limits for traffic nobody authenticated yet (issue 8).
	HTTPIdleTimeout time.Duration
	HTTPBodyTimeout time.Duration
	HTTPMaxConns    int
	HTTPMaxLong     int

	// EventRetention is the least age of a pruned event (0: keep all).
	EventRetention time.Duration

	// envErrs holds, by flag name, environment values that did not parse
	// and that no flag overrode; validate reports them.
	envErrs map[string]error
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// defaultWorkers bounds the containers worked on at once. Each waits on the
// engine most of the time (create, start), so the engine, not moor's two
// cores, decides how many make progress together.
const defaultWorkers = 64

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", envOr("MOOR_DATABASE_URL", ""), "PostgreSQL URL (MOOR_DATABASE_URL)")
	fs.StringVar(&c.HTTPAddr, "http-addr", envOr("MOOR_HTTP_ADDR", "127.0.0.1:8080"), "API, UI and provider address (MOOR_HTTP_ADDR)")
	fs.StringVar(&c.DNSAddr, "dns-addr", envOr("MOOR_DNS_ADDR", "127.0.0.1:5353"), "DNS listener (MOOR_DNS_ADDR)")
	fs.StringVar(&c.HostZone, "host-zone", envOr("MOOR_HOST_ZONE", "moor.localhost"), "zone for clients outside Docker (MOOR_HOST_ZONE)")
	fs.StringVar(&c.ContainerZone, "container-zone", envOr("MOOR_CONTAINER_ZONE", "moor.internal"), "zone for containers (MOOR_CONTAINER_ZONE)")
	fs.StringVar(&c.PublicIP, "public-ip", envOr("MOOR_PUBLIC_IP", "127.0.0.1"), "address host-zone names resolve to (MOOR_PUBLIC_IP)")
	fs.StringVar(&c.Network, "network", envOr("MOOR_NETWORK", "moor"), "Docker network of managed containers of the default project; other projects' are named NETWORK-p-PROJECT (MOOR_NETWORK)")
	fs.StringVar(&c.RouterContainer, "router-container", envOr("MOOR_ROUTER_CONTAINER", ""), "containers moor connects to every project's network so they reach its containers: Traefik's (comma-separated names or ids; MOOR_ROUTER_CONTAINER)")
	fs.StringVar(&c.DockerHost, "docker-host", envOr("DOCKER_HOST", ""), "Docker engine (DOCKER_HOST)")
	fs.StringVar(&c.CatalogDir, "catalog-dir", envOr("MOOR_CATALOG_DIR", ""), "extra catalog directory (MOOR_CATALOG_DIR)")
	fs.StringVar(&c.ProviderToken, "provider-token", envOr("MOOR_PROVIDER_TOKEN", ""), "bearer token for Traefik (MOOR_PROVIDER_TOKEN)")
	fs.StringVar(&c.SecretKey, "secret-key", envOr("MOOR_SECRET_KEY", ""), "base64 key for stored credentials (MOOR_SECRET_KEY)")
	fs.StringVar(&c.DataDir, "data-dir", envOr("MOOR_DATA_DIR", ".moor"), "directory for the key file (MOOR_DATA_DIR)")
	fs.StringVar(&c.BackupDir, "backup-dir", envOr("MOOR_BACKUP_DIR", ""), "directory volume backups are stored in, target \"local\" (default DATA_DIR/backups; MOOR_BACKUP_DIR)")
	ttl, err := strconv.Atoi(envOr("MOOR_DNS_TTL", "5"))
	if err != nil {
		c.envErr("dns-ttl", fmt.Errorf("MOOR_DNS_TTL: must be a number of seconds: %q", os.Getenv("MOOR_DNS_TTL")))
	}
	fs.IntVar(&c.DNSTTL, "dns-ttl", ttl, "TTL of container records, seconds (MOOR_DNS_TTL)")
	fs.DurationVar(&c.Resync, "resync", c.envDuration("resync", "MOOR_RESYNC", "30s"), "period of the full reconcile pass (MOOR_RESYNC)")
	fs.DurationVar(&c.Drain, "drain", c.envDuration("drain", "MOOR_DRAIN", "3s"), "how long a replica is out of the routes before it is stopped or removed, for Traefik to follow (more than its providersThrottleDuration, 2s by default); 0 stops at once (MOOR_DRAIN)")
	workers, err := strconv.Atoi(envOr("MOOR_RECONCILE_WORKERS", strconv.Itoa(defaultWorkers)))
	if err != nil {
		c.envErr("reconcile-workers", fmt.Errorf("MOOR_RECONCILE_WORKERS: must be a number: %q", os.Getenv("MOOR_RECONCILE_WORKERS")))
	}
	fs.IntVar(&c.Workers, "reconcile-workers", workers, "containers the reconciler works on at once (MOOR_RECONCILE_WORKERS)")
	fs.Float64Var(&c.APIRate, "api-rate", c.envFloat("api-rate", "MOOR_API_RATE", api.DefaultLimits.Rate), "API requests per second per key or user, refilled continuously; over it: 429 (MOOR_API_RATE)")
	fs.IntVar(&c.APIBurst, "api-burst", c.envInt("api-burst", "MOOR_API_BURST", api.DefaultLimits.Burst), "API requests at once per key or user after a quiet spell (MOOR_API_BURST)")
	fs.IntVar(&c.WSPerKey, "ws-per-key", c.envInt("ws-per-key", "MOOR_WS_PER_KEY", api.DefaultLimits.Websockets), "websockets open at once per key or user (MOOR_WS_PER_KEY)")
	fs.IntVar(&c.WSReplayRate, "ws-replay-rate", c.envInt("ws-replay-rate", "MOOR_WS_REPLAY_RATE", api.DefaultLimits.ReplayRate), "events per second a websocket replays while catching up (MOOR_WS_REPLAY_RATE)")
	fs.StringVar(&c.AliasDomains, "alias-domains", envOr("MOOR_ALIAS_DOMAINS", ""), "domains under which operators may give containers aliases, besides the host zone; other names are admin-only (MOOR_ALIAS_DOMAINS)")
	fs.StringVar(&c.PublishAddr, "publish-addr", envOr("MOOR_PUBLISH_ADDR", lifecycle.DefaultPublishAddr), "host address of a published port whose request names none (MOOR_PUBLISH_ADDR)")
	fs.StringVar(&c.PublishPorts, "publish-ports", envOr("MOOR_PUBLISH_PORTS", ""), "host ports operators may publish, comma-separated ports and ranges such as 30000-30999; empty: only admins publish (MOOR_PUBLISH_PORTS)")
	fs.StringVar(&c.WebhookAllowedHosts, "webhook-allowed-hosts", envOr("MOOR_WEBHOOK_ALLOWED_HOSTS", ""), "destinations webhooks may reach besides public addresses and the container networks (MOOR_DNS_CONTAINER_CIDRS): comma-separated CIDRs, IP addresses or host names (MOOR_WEBHOOK_ALLOWED_HOSTS)")
	fs.DurationVar(&c.EventRetention, "event-retention", c.envDuration("event-retention", "MOOR_EVENT_RETENTION", "720h"), "how long events are kept at least; the newest 4,096 and those a webhook has yet to deliver stay longer; 0 keeps all (MOOR_EVENT_RETENTION)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", envOr("MOOR_TRUSTED_PROXIES", ""), "comma-separated CIDRs of proxies whose X-Forwarded-For names the client, for the sign-in throttle; empty: the direct peer is the client (MOOR_TRUSTED_PROXIES)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("MOOR_LOG_FORMAT", "text"), "text or json (MOOR_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("MOOR_LOG_LEVEL", "info"), "debug, info, warn, error (MOOR_LOG_LEVEL)")
	fs.StringVar(&c.TraefikEntryPoints, "traefik-entrypoints", envOr("MOOR_TRAEFIK_ENTRYPOINTS", "web"), "Traefik's plain HTTP entry points, comma-separated (MOOR_TRAEFIK_ENTRYPOINTS)")
	fs.StringVar(&c.TraefikTLSEntryPoints, "traefik-tls-entrypoints", envOr("MOOR_TRAEFIK_TLS_ENTRYPOINTS", ""), "Traefik's HTTPS entry points, comma-separated (MOOR_TRAEFIK_TLS_ENTRYPOINTS)")
	fs.StringVar(&c.TraefikCertResolver, "traefik-cert-resolver", envOr("MOOR_TRAEFIK_CERT_RESOLVER", ""), "ACME resolver of the HTTPS routers (MOOR_TRAEFIK_CERT_RESOLVER)")
	fs.StringVar(&c.ProviderFallbackURL, "provider-fallback-url", envOr("MOOR_PROVIDER_FALLBACK_URL", ""), "moor's address as Traefik reaches it, for status pages (MOOR_PROVIDER_FALLBACK_URL; default http://MOOR_HTTP_ADDR)")
	fs.BoolVar(&c.EmbeddedRouter, "embedded-router", envOr("MOOR_EMBEDDED_ROUTER", "true") == "true", "serve NAME.<host zone> on moor's own HTTP listener, to the container's ready replicas, when no Traefik routes (development); false in production (MOOR_EMBEDDED_ROUTER)")
	fs.DurationVar(&c.ProviderInterval, "provider-interval", c.envDuration("provider-interval", "MOOR_PROVIDER_INTERVAL", "30s"), "period of the full rebuild of the Traefik configuration; changes are applied at once (MOOR_PROVIDER_INTERVAL)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", c.envDuration("http-idle-timeout", "MOOR_HTTP_IDLE_TIMEOUT", "60s"), "how long a keep-alive connection may wait for its next request (MOOR_HTTP_IDLE_TIMEOUT)")
	fs.DurationVar(&c.HTTPBodyTimeout, "http-body-timeout", c.envDuration("http-body-timeout", "MOOR_HTTP_BODY_TIMEOUT", "30s"), "how long a client may take to send a request body; websockets and the provider's long poll excepted (MOOR_HTTP_BODY_TIMEOUT)")
	fs.IntVar(&c.HTTPMaxConns, "http-max-conns", c.envInt("http-max-conns", "MOOR_HTTP_MAX_CONNS", 2048), "open HTTP connections, websockets and long polls apart; at the cap a new one replaces the longest idle (MOOR_HTTP_MAX_CONNS)")
	fs.IntVar(&c.HTTPMaxLong, "http-max-long", c.envInt("http-max-long", "MOOR_HTTP_MAX_LONG", 1024), "websockets and provider long polls open at once (MOOR_HTTP_MAX_LONG)")
	c.DNS.register(fs, c.envDuration, c.envInt)
	// A testing aid: halt the reconciler at a named step so a crash test can
	// kill -9 moor exactly there.
	fs.StringVar(&c.HaltAt, "debug-halt-at", envOr("MOOR_DEBUG_HALT_AT", ""), "testing: halt at this reconcile step (MOOR_DEBUG_HALT_AT)")
}

// envDuration reads the default of flag from the environment variable
// name, remembering a value that does not parse.
func (c *config) envDuration(flag, name, def string) time.Duration {
	v := envOr(name, def)
	d, err := time.ParseDuration(v)
	if err != nil {
		c.envErr(flag, fmt.Errorf("%s: must be a duration such as 30s or 500ms: %q", name, v))
	}
	return d
}

// envFloat reads the default of flag from the environment variable name,
// remembering a value that does not parse.
func (c *config) envFloat(flag, name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		c.envErr(flag, fmt.Errorf("%s: must be a number: %q", name, v))
	}
	return f
}

// envInt reads the default of flag from the environment variable name,
// remembering a value that does not parse.
func (c *config) envInt(flag, name string, def int) int {
	v := envOr(name, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil {
		c.envErr(flag, fmt.Errorf("%s: must be a number: %q", name, v))
	}
	return n
}

func (c *config) envErr(flag string, err error) {
	if c.envErrs == nil {
		c.envErrs = map[string]error{}
	}
	c.envErrs[flag] = err
}

// flagsSet forgets the environment errors of flags given on the command
// line: the flag wins.
func (c *config) flagsSet(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) { delete(c.envErrs, f.Name) })
}

func (c *config) validate() error {
	if len(c.envErrs) > 0 {
		return c.envErrs[slices.Min(slices.Collect(maps.Keys(c.envErrs)))]
	}
	if c.DatabaseURL == "" {
		return fmt.Errorf("MOOR_DATABASE_URL is required (make run starts a local PostgreSQL for you)")
	}
	for name, zone := range map[string]string{"MOOR_HOST_ZONE": c.HostZone, "MOOR_CONTAINER_ZONE": c.ContainerZone} {
		if err := validZone(zone); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if _, err := netip.ParseAddr(c.PublicIP); err != nil {
		return fmt.Errorf("MOOR_PUBLIC_IP: must be an IP address: %q", c.PublicIP)
	}
	if !domain.IsLabel(c.Network) {
		return fmt.Errorf("MOOR_NETWORK: must be a DNS label: %q", c.Network)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("MOOR_HTTP_ADDR: %w", err)
	}
	if c.DNSTTL < 1 || c.DNSTTL > 86400 {
		return fmt.Errorf("MOOR_DNS_TTL: must be 1 to 86400 seconds")
	}
	if c.ProviderInterval < 100*time.Millisecond {
		return fmt.Errorf("MOOR_PROVIDER_INTERVAL: must be at least 100ms")
	}
	if err := c.validateDNS(); err != nil {
		return err
	}
	if c.Resync < time.Second {
		return fmt.Errorf("MOOR_RESYNC: must be at least 1s")
	}
	if c.Drain < 0 || c.Drain > time.Minute {
		return fmt.Errorf("MOOR_DRAIN: must be from 0 to 1m")
	}
	if _, err := egress.New(nil, splitList(c.WebhookAllowedHosts)); err != nil {
		return fmt.Errorf("MOOR_WEBHOOK_ALLOWED_HOSTS: %w", err)
	}
	switch {
	case c.APIRate <= 0 || c.APIRate > 1e6:
		return fmt.Errorf("MOOR_API_RATE: must be above 0 and at most 1000000")
	case c.APIBurst < 1 || c.APIBurst > 1e6:
		return fmt.Errorf("MOOR_API_BURST: must be from 1 to 1000000")
	case c.WSPerKey < 1 || c.WSPerKey > 100000:
		return fmt.Errorf("MOOR_WS_PER_KEY: must be from 1 to 100000")
	case c.WSReplayRate < 1:
		return fmt.Errorf("MOOR_WS_REPLAY_RATE: must be at least 1")
	}
	for i, d := range splitList(c.AliasDomains) {
		if err := validZone(d); err != nil {
			return fmt.Errorf("MOOR_ALIAS_DOMAINS[%d]: %v", i, err)
		}
	}
	if a, err := netip.ParseAddr(c.PublishAddr); err != nil || a.Zone() != "" {
		return fmt.Errorf("MOOR_PUBLISH_ADDR: must be an IP address such as 127.0.0.1 or 0.0.0.0: %q", c.PublishAddr)
	}
	if _, err := domain.ParsePortRanges(c.PublishPorts); err != nil {
		return fmt.Errorf("MOOR_PUBLISH_PORTS: %w", err)
	}
	for _, name := range splitList(c.RouterContainer) {
		if !validContainerRef(name) {
			return fmt.Errorf("MOOR_ROUTER_CONTAINER: %q is not a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) or id (64 hex digits); give names or ids, comma-separated", name)
		}
	}
	if c.Workers < 1 || c.Workers > 1000 {
		return fmt.Errorf("MOOR_RECONCILE_WORKERS: must be from 1 to 1000")
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	if c.HTTPIdleTimeout < time.Second {
		return fmt.Errorf("MOOR_HTTP_IDLE_TIMEOUT: must be at least 1s")
	}
	if c.HTTPBodyTimeout < time.Second {
		return fmt.Errorf("MOOR_HTTP_BODY_TIMEOUT: must be at least 1s")
	}
	if c.HTTPMaxConns < 16 {
		return fmt.Errorf("MOOR_HTTP_MAX_CONNS: must be at least 16")
	}
	if c.HTTPMaxLong < 1 {
		return fmt.Errorf("MOOR_HTTP_MAX_LONG: must be at least 1")
	}
	if c.EventRetention != 0 && c.EventRetention < time.Minute {
		return fmt.Errorf("MOOR_EVENT_RETENTION: must be 0 (keep every event) or at least 1m")
	}
	return nil
}

// containerNameRE is what Docker accepts as a container name (a leading
// "/" is its own notation, not part of the name); a 64-hex-digit id
// matches it too.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validContainerRef accepts a Docker container name or id: what
// MOOR_ROUTER_CONTAINER lists.
func validContainerRef(s string) bool {
	return len(s) <= 255 && containerNameRE.MatchString(s)
}

// validZone accepts dot-separated DNS labels.
func validZone(z string) error {
	if z == "" || len(z) > 200 {
		return fmt.Errorf("must be a DNS name of at most 200 characters")
	}
	start := 0
	for i := 0; i <= len(z); i++ {
		if i == len(z) || z[i] == '.' {
			if !domain.IsLabel(z[start:i]) {
				return fmt.Errorf("%q: each label must be lower-case letters, digits and '-'", z)
			}
			start = i + 1
		}
	}
	return nil
}

// trustedProxies parses MOOR_TRUSTED_PROXIES: CIDRs, or bare addresses
// (one host each).
func (c *config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(c.TrustedProxies) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("MOOR_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an address", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// fallbackURL is MOOR_PROVIDER_FALLBACK_URL, or moor's own HTTP address
// (a wildcard host becomes 127.0.0.1).
func (c *config) fallbackURL() string {
	if c.ProviderFallbackURL != "" {
		return strings.TrimRight(c.ProviderFallbackURL, "/")
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return "http://" + c.HTTPAddr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
