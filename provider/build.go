// Package provider turns moor's state into Traefik's dynamic configuration
// and serves it to Traefik's HTTP provider and to moor's provider plugin.
//
// Build is pure: containers in, configuration out. Render makes the bytes
// Traefik reads: deterministic (sorted keys, no timestamps), so an unchanged
// state gives byte-identical output. The Provider keeps the last rendered
// snapshot in memory, rebuilds it when the database announces a change and on
// a timer, and serves it (see provider.go).
//
// It is the only package that imports genconf.
package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/traefik/genconf/dynamic"

	"github.com/moorhq/moor/internal/domain"
)

// Names moor gives its own Traefik objects. Container names are DNS labels,
// which never hold '_', so these and the per-container suffixes below never
// collide with a container's name.
const (
	UnavailableService    = "moor_unavailable"
	UnavailableMiddleware = "moor_unavailable"
	UnknownRouter         = "moor_unknown"
	// UnavailablePrefix is the path moor serves its status pages under;
	// Traefik adds it in front of the request path of a router whose
	// container is not running.
	UnavailablePrefix = "/_moor/unavailable"
)

// Options are the installation's routing settings.
type Options struct {
	// HostZone: a container NAME is routed as NAME.<HostZone>.
	HostZone string
	// EntryPoints are Traefik's plain HTTP entry points (e.g. "web").
	EntryPoints []string
	// TLSEntryPoints are Traefik's HTTPS entry points (e.g. "websecure");
	// each container gets a second router for them, with TLS.
	TLSEntryPoints []string
	// CertResolver, when set, is the ACME resolver of the TLS routers.
	CertResolver string
	// FallbackURL is moor's own HTTP address as Traefik reaches it, e.g.
	// http://moor:8080: stopped, failed and starting containers are routed
	// to moor's status page there.
	FallbackURL string
}

// Validate checks the options: every name that reaches the configuration is
// a label, so a typo fails at start instead of breaking every route.
func (o Options) Validate() error {
	if err := domain.ValidateHost("host zone", o.HostZone); err != nil {
		return err
	}
	if len(o.EntryPoints)+len(o.TLSEntryPoints) == 0 {
		return domain.Invalid("entry points", "at least one HTTP or HTTPS entry point is required")
	}
	for _, ep := range append(slices.Clone(o.EntryPoints), o.TLSEntryPoints...) {
		if !domain.IsLabel(ep) {
			return domain.Invalid("entry points", "%q must be lower-case letters, digits and '-'", ep)
		}
	}
	if o.CertResolver != "" && !domain.IsLabel(o.CertResolver) {
		return domain.Invalid("cert resolver", "%q must be lower-case letters, digits and '-'", o.CertResolver)
	}
	if !strings.HasPrefix(o.FallbackURL, "http://") && !strings.HasPrefix(o.FallbackURL, "https://") {
		return domain.Invalid("fallback url", "must be an http:// or https:// URL (got %q)", o.FallbackURL)
	}
	return nil
}

// Host is the host-zone name of a container.
func (o Options) Host(name string) string { return name + "." + o.HostZone }

// ContainerPriority is every container router's: above the catch-all's
// (1), below Traefik's default for any router defined elsewhere (the
// length of its rule, at least 10), so that no container's rule, however
// long its list of aliases, outranks another router for a host it claims,
// moor's own dashboard included. Containers never share a host (an alias
// claimed twice goes to one), so their equal priority decides nothing
// among them.
const ContainerPriority = 2

// Build returns the dynamic configuration for cs. Every container with an
// HTTP port gets a router for its host name and aliases. Its service lists
// the running replicas; when none runs (stopped, failed, starting), the
// router stays and points at moor's status page, so a known name never gets
// Traefik's bare 404. A catch-all router of the lowest priority sends unknown
// names of the host zone to moor too, so the routers map is never empty
// (Traefik's decoder refuses "routers":{}). An alias claimed by two
// containers goes to the first by name; a host name beats any alias.
//
// cs must hold valid containers (names are DNS labels, routing options
// validated); Build refuses anything that would reach a rule otherwise.
func Build(cs []domain.Container, o Options) (*dynamic.Configuration, error) {
	cfg, _, err := build(routeNames(cs), o)
	return cfg, err
}

// build is Build, also returning which container each routed host name
// leads to (an index into cs).
func build(cs []domain.Container, o Options) (*dynamic.Configuration, map[string]int, error) {
	order := byName(cs)
	h := &dynamic.HTTPConfiguration{
		Routers:     make(map[string]*dynamic.Router, len(cs)+2),
		Services:    make(map[string]*dynamic.Service, len(cs)+1),
		Middlewares: map[string]*dynamic.Middleware{},
	}
	t := &dynamic.TCPConfiguration{
		Routers:  map[string]*dynamic.TCPRouter{},
		Services: map[string]*dynamic.TCPService{},
	}
	h.Services[UnavailableService] = &dynamic.Service{LoadBalancer: &dynamic.ServersLoadBalancer{
		Servers: []dynamic.Server{{URL: o.FallbackURL}}, PassHostHeader: ptr(true),
	}}
	h.Middlewares[UnavailableMiddleware] = &dynamic.Middleware{AddPrefix: &dynamic.AddPrefix{Prefix: UnavailablePrefix}}
	zoneRE := "^[a-z0-9-]+\\." + regexp.QuoteMeta(o.HostZone) + "$"
	addRouters(h, o, UnknownRouter, "HostRegexp(`"+zoneRE+"`)", 1, []string{UnavailableMiddleware}, nil, UnavailableService)

	owner, routed, err := hostsOf(cs, order, o)
	if err != nil {
		return nil, nil, err
	}
	for k, i := range order {
		c := &cs[i]
		r := c.Spec.Routing
		if r == nil {
			r = &domain.Routing{}
		}
		hosts := routed[k]
		if err := domain.ValidatePathPrefix("container "+c.Name+": path", r.Path); err != nil {
			return nil, nil, err
		}
		if p, ok := c.Spec.HTTPPort(); ok {
			buildHTTP(h, c, r, p, hosts, o)
		}
		for _, tr := range r.TCP {
			if err := buildTCP(t, c, tr, hosts); err != nil {
				return nil, nil, err
			}
		}
	}
	cfg := &dynamic.Configuration{HTTP: h}
	if len(t.Routers) > 0 {
		cfg.TCP = t
	}
	return cfg, owner, nil
}

// byName returns the indexes of cs in name order (the store's order
// already, then without sorting).
func byName(cs []domain.Container) []int {
	order := make([]int, len(cs))
	sorted := true
	for i := range cs {
		order[i] = i
		if i > 0 && cs[i].Name < cs[i-1].Name {
			sorted = false
		}
	}
	if !sorted {
		sort.SliceStable(order, func(a, b int) bool { return cs[order[a]].Name < cs[order[b]].Name })
	}
	return order
}

// hostsOf returns the host names routed to each container (in the given
// order): its own name in the host zone, then the aliases no container
// before it (or any container's own name) claimed; and the owner (index
// into cs) of every routed host name.
func hostsOf(cs []domain.Container, order []int, o Options) (map[string]int, [][]string, error) {
	owner := make(map[string]int, len(cs))
	for _, i := range order {
		if err := domain.ValidateName(cs[i].Name); err != nil {
			return nil, nil, fmt.Errorf("container %q: %w", cs[i].Name, err)
		}
		owner[o.Host(cs[i].Name)] = i
	}
	out := make([][]string, len(order))
	for k, i := range order {
		c := &cs[i]
		hosts := []string{o.Host(c.Name)}
		if c.Spec.Routing != nil {
			for j, a := range c.Spec.Routing.Aliases {
				if err := domain.ValidateHost(fmt.Sprintf("container %s: aliases[%d]", c.Name, j), a); err != nil {
					return nil, nil, err
				}
				if _, taken := owner[a]; !taken {
					owner[a] = i
					hosts = append(hosts, a)
				}
			}
		}
		out[k] = hosts
	}
	return owner, out, nil
}

func buildHTTP(h *dynamic.HTTPConfiguration, c *domain.Container, r *domain.Routing, p domain.PortSpec, hosts []string, o Options) {
	var servers []dynamic.Server
	for _, in := range c.Instances {
		if ready(c, in) {
			servers = append(servers, dynamic.Server{URL: "http://" + net.JoinHostPort(in.InternalIP, strconv.Itoa(p.Port))})
		}
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].URL < servers[j].URL })

	var mws, redirect []string
	add := func(suffix string, m *dynamic.Middleware) {
		h.Middlewares[c.Name+"_"+suffix] = m
		mws = append(mws, c.Name+"_"+suffix)
	}
	if len(r.IPAllowList) > 0 {
		add("allow", &dynamic.Middleware{IPAllowList: &dynamic.IPAllowList{SourceRange: slices.Clone(r.IPAllowList)}})
	}
	if rl := r.RateLimit; rl != nil {
		m := &dynamic.RateLimit{Average: rl.Average, Burst: rl.Burst}
		if rl.Period > 0 {
			m.Period = rl.Period.String()
		}
		add("ratelimit", &dynamic.Middleware{RateLimit: m})
	}
	if len(r.BasicAuth) > 0 {
		add("auth", &dynamic.Middleware{BasicAuth: &dynamic.BasicAuth{Users: slices.Clone(r.BasicAuth)}})
	}
	if len(r.Headers) > 0 {
		hs := make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			hs[k] = v
		}
		add("headers", &dynamic.Middleware{Headers: &dynamic.Headers{CustomResponseHeaders: hs}})
	}
	if r.HTTPSRedirect && len(o.TLSEntryPoints) > 0 {
		name := c.Name + "_redirect"
		h.Middlewares[name] = &dynamic.Middleware{RedirectScheme: &dynamic.RedirectScheme{Scheme: "https", Permanent: true}}
		redirect = []string{name}
	}

	service := c.Name
	if len(servers) == 0 {
		service = UnavailableService
		mws = append(mws, UnavailableMiddleware)
	} else {
		lb := &dynamic.ServersLoadBalancer{Servers: servers, PassHostHeader: ptr(true)}
		if hc := r.HealthCheck; hc != nil {
			lb.HealthCheck = &dynamic.ServerHealthCheck{Path: hc.Path, FollowRedirects: ptr(true)}
			if hc.Interval > 0 {
				lb.HealthCheck.Interval = hc.Interval.String()
			}
			if hc.Timeout > 0 {
				lb.HealthCheck.Timeout = hc.Timeout.String()
			}
		}
		h.Services[c.Name] = &dynamic.Service{LoadBalancer: lb}
	}
	addRouters(h, o, c.Name, rule("Host", hosts, r.Path), ContainerPriority, mws, redirect, service)
}

// addRouters adds the plain router (entry points) and the TLS router (TLS
// entry points) of one name. redirect goes in front of the plain router's
// middlewares only: it sends plain requests to the TLS router.
func addRouters(h *dynamic.HTTPConfiguration, o Options, name, rule string, priority int, mws, redirect []string, service string) {
	if len(o.EntryPoints) > 0 {
		h.Routers[name] = &dynamic.Router{
			EntryPoints: slices.Clone(o.EntryPoints), Middlewares: nilIfEmpty(append(slices.Clone(redirect), mws...)),
			Service: service, Rule: rule, Priority: priority,
		}
	}
	if len(o.TLSEntryPoints) > 0 {
		tls := &dynamic.RouterTLSConfig{CertResolver: o.CertResolver}
		if tls.CertResolver == "" {
			// Traefik's default certificate; an empty tls object would be
			// refused by a strict decoder.
			tls.Options = "default"
		}
		h.Routers[name+"_tls"] = &dynamic.Router{
			EntryPoints: slices.Clone(o.TLSEntryPoints), Middlewares: nilIfEmpty(slices.Clone(mws)),
			Service: service, Rule: rule, Priority: priority, TLS: tls,
		}
	}
}

func buildTCP(t *dynamic.TCPConfiguration, c *domain.Container, tr domain.TCPRoute, hosts []string) error {
	if !domain.IsLabel(tr.EntryPoint) {
		return domain.Invalid("container "+c.Name+": routing.tcp.entry_point", "must be a label (got %q)", tr.EntryPoint)
	}
	port := 0
	for _, p := range c.Spec.Ports {
		if p.Name == tr.Port {
			port = p.Port
		}
	}
	if port == 0 {
		return domain.Invalid("container "+c.Name+": routing.tcp.port", "names no port (got %q)", tr.Port)
	}
	var servers []dynamic.TCPServer
	for _, in := range c.Instances {
		if ready(c, in) {
			servers = append(servers, dynamic.TCPServer{Address: net.JoinHostPort(in.InternalIP, strconv.Itoa(port))})
		}
	}
	if len(servers) == 0 {
		// A TCP client cannot be shown a status page: no router, so the
		// connection is refused at once rather than hanging.
		return nil
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].Address < servers[j].Address })
	name := c.Name + "_" + tr.Port
	t.Routers[name] = &dynamic.TCPRouter{
		EntryPoints: []string{tr.EntryPoint}, Service: name, Rule: rule("HostSNI", hosts, ""),
		// HostSNI needs TLS: Traefik terminates it (PostgreSQL's STARTTLS
		// included) with the default certificate.
		TLS: &dynamic.RouterTCPTLSConfig{Options: "default"},
	}
	t.Services[name] = &dynamic.TCPService{LoadBalancer: &dynamic.TCPServersLoadBalancer{Servers: servers}}
	return nil
}

// ready reports whether a replica takes traffic: running, with an address,
// and, when its type has a Docker health check, healthy (Docker reports no
// health for the first moment after the start: not ready yet either).
func ready(c *domain.Container, in domain.Instance) bool {
	if in.Status != domain.StatusRunning || in.InternalIP == "" {
		return false
	}
	if h := c.Spec.Health; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" {
		return in.Health == "healthy"
	}
	return in.Health != "starting" && in.Health != "unhealthy"
}

// rule joins matchers; its inputs are validated labels, so no backtick,
// quote or operator can reach it.
func rule(matcher string, hosts []string, path string) string {
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = matcher + "(`" + h + "`)"
	}
	r := strings.Join(parts, " || ")
	if path != "" {
		if len(parts) > 1 {
			r = "(" + r + ")"
		}
		r += " && PathPrefix(`" + path + "`)"
	}
	return r
}

// Render returns the bytes served to Traefik: JSON with sorted keys and no
// HTML escaping (rules hold '&&'), so equal configurations give equal bytes.
func Render(cfg *dynamic.Configuration) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func ptr[T any](v T) *T { return &v }

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
