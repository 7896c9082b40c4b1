// Package router is moor's embedded HTTP router for development: without
// Traefik, moor's own listener serves Host: NAME.<host zone> (and the
// container's aliases) to the ready replicas of the container, and moor's
// status page when none is ready. Browsers resolve *.localhost to loopback,
// so http://NAME.moor.localhost:8080 works right after `make run`. In
// production Traefik routes (MOOR_EMBEDDED_ROUTER=false); the embedded
// router applies none of a type's routing options, and refuses to route a
// container whose options (basic auth, an IP allow list) it would bypass.
package router

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moorhq/moor/provider"
)

// Routes tells where a host's traffic goes (provider.Provider).
type Routes interface {
	Backend(host string) (name string, b provider.Backend, ok bool)
}

// Router serves requests for container host names.
type Router struct {
	routes      Routes
	unavailable http.Handler // moor's status page, by Host
	logger      *slog.Logger

	next    atomic.Uint64 // round robin over a container's replicas
	proxies sync.Map      // target URL -> *httputil.ReverseProxy
}

// New returns a router for the hosts routes knows; unavailable answers for
// containers with no ready replica.
func New(routes Routes, unavailable http.Handler, logger *slog.Logger) *Router {
	return &Router{routes: routes, unavailable: unavailable, logger: logger}
}

// Handles reports whether r is for a container rather than for moor: its
// host is one a container answers to (its name in the host zone, or an
// alias). Other hosts, and moor's status pages (which Traefik asks for
// with the container's host), stay moor's.
func (rt *Router) Handles(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, provider.UnavailablePrefix) {
		return false
	}
	_, _, ok := rt.routes.Backend(hostOf(r))
	return ok
}

// ServeHTTP proxies r to one of its container's ready replicas.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := hostOf(r)
	name, b, ok := rt.routes.Backend(host)
	switch {
	case ok && b.NeedsTraefik:
		http.Error(w, "container "+name+" has routing options (basic auth, an IP allow list) that only Traefik applies; "+
			"moor's embedded router does not route around them: reach it through Traefik", http.StatusMisdirectedRequest)
		return
	case !ok || len(b.URLs) == 0:
		rt.unavailable.ServeHTTP(w, r)
		return
	}
	target := b.URLs[int(rt.next.Add(1)%uint64(len(b.URLs)))]
	p := rt.proxy(target)
	if p == nil {
		http.Error(w, "the container's replica has no usable address", http.StatusBadGateway)
		return
	}
	p.ServeHTTP(w, r)
}

// proxy returns the reverse proxy of one replica's URL, made once (nil
// for a URL that does not parse).
func (rt *Router) proxy(target string) *httputil.ReverseProxy {
	if p, ok := rt.proxies.Load(target); ok {
		return p.(*httputil.ReverseProxy)
	}
	u, err := url.Parse(target) // the provider's own URLs: never fails in practice
	if err != nil {
		return nil
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // as Traefik's passHostHeader
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rt.logger.Warn("embedded router: replica did not answer", "host", hostOf(r), "target", target, "err", err)
			http.Error(w, "the container's replica did not answer", http.StatusBadGateway)
		},
	}
	actual, _ := rt.proxies.LoadOrStore(target, p)
	return actual.(*httputil.ReverseProxy)
}

func hostOf(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
