package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// Which port Traefik routes to, when the type does not say (http: true):
// in this order, a Traefik port label of a Portainer template, a port named
// like a web UI, a well-known web port, the only TCP port. The reason goes
// into the type (HTTPPortReason) so a user sees why, and a create request
// may choose another (ChooseHTTPPort).

// httpPortRank orders container ports by how likely they serve plain HTTP:
// the generic web ports first, then well-known application UIs. 443 and
// 8443 are absent on purpose: Traefik would speak plain HTTP to a TLS port.
var httpPortRank = []int{
	80, 8080, 8000, 3000, 8081, 8888, 5000,
	2368,  // Ghost
	8983,  // Solr
	9200,  // Elasticsearch
	4200,  // CrateDB admin UI
	5678,  // n8n
	15672, // RabbitMQ management
	5601,  // Kibana
	9090,  // Prometheus
	1880,  // Node-RED
}

// webPortNames name a port that serves a web UI or API over HTTP.
var webPortNames = []string{"http", "web", "ui", "webui", "web-ui", "dashboard", "admin", "api"}

// notHTTP are ports that speak something else (TLS, databases, mail, ...):
// never routed as HTTP because they are the only TCP port.
var notHTTP = []int{
	20, 21, 22, 23, 25, 53, 110, 143, 389, 443, 445, 465, 587, 636, 993, 995, 1433, 1521, 1883, 2181,
	2375, 2376, 3306, 3389, 4369, 5222, 5432, 5672, 5900, 6379, 6380, 7687, 8443, 8883, 9042, 9092,
	9300, 11211, 25565, 26257, 27017, 28015,
}

// Reasons for the HTTP port, as HTTPPortReason shows them.
const (
	ReasonDeclared  = "declared by the type"
	ReasonChosen    = "chosen at create"
	ReasonOnlyTCP   = "the only TCP port"
	reasonLabel     = "Traefik label %s"
	reasonNamed     = "a port named %q"
	reasonWellKnown = "well-known web port %d"
)

// chooseHTTPPort returns the index in ports of the port to route to and
// why, or -1. labelPort is the port a Traefik label names (0: none).
func chooseHTTPPort(ports []domain.PortSpec, labelPort int) (int, string) {
	tcp := func(i int) bool { return ports[i].Protocol == "tcp" || ports[i].Protocol == "" }
	if labelPort > 0 {
		for i := range ports {
			if tcp(i) && ports[i].Port == labelPort {
				return i, fmt.Sprintf(reasonLabel, "loadbalancer.server.port")
			}
		}
	}
	for i := range ports {
		if tcp(i) && slices.Contains(webPortNames, strings.ToLower(ports[i].Name)) {
			return i, fmt.Sprintf(reasonNamed, ports[i].Name)
		}
	}
	best, bestRank := -1, len(httpPortRank)
	for i := range ports {
		if !tcp(i) {
			continue
		}
		if rank := slices.Index(httpPortRank, ports[i].Port); rank >= 0 && rank < bestRank {
			best, bestRank = i, rank
		}
	}
	if best >= 0 {
		return best, fmt.Sprintf(reasonWellKnown, ports[best].Port)
	}
	only := -1
	for i := range ports {
		if tcp(i) {
			if only >= 0 {
				return -1, ""
			}
			only = i
		}
	}
	if only >= 0 && !slices.Contains(notHTTP, ports[only].Port) {
		return only, ReasonOnlyTCP
	}
	return -1, ""
}

// ChooseHTTPPort makes port (a TCP port of t) the one Traefik routes to,
// for a create request that picks it; 0 keeps the type's choice.
func ChooseHTTPPort(t domain.Type, port int) (domain.Type, error) {
	if port == 0 {
		return t, nil
	}
	t = cloneType(t)
	var tcp []string
	found := false
	for i := range t.Ports {
		p := &t.Ports[i]
		if p.Protocol != "tcp" {
			continue
		}
		tcp = append(tcp, fmt.Sprint(p.Port))
		p.HTTP = p.Port == port
		found = found || p.HTTP
	}
	if !found {
		if len(tcp) == 0 {
			return t, domain.Invalid("http_port", "type %s has no TCP port", t.ID)
		}
		return t, domain.Invalid("http_port", "must be one of the type's TCP ports: %s", strings.Join(tcp, ", "))
	}
	t.HTTPPortReason = ReasonChosen
	return t, nil
}

// explainHTTPPort fills HTTPPortReason for a type file: declared when a
// port says http: true, else a port named like a web UI is taken (the
// other rules are for imports, whose authors could not say).
func explainHTTPPort(t *domain.Type) {
	if t.HTTPPortReason != "" {
		return
	}
	if _, ok := t.HTTPPort(); ok {
		t.HTTPPortReason = ReasonDeclared
		return
	}
	for i := range t.Ports {
		p := &t.Ports[i]
		if (p.Protocol == "tcp" || p.Protocol == "") && slices.Contains(webPortNames, strings.ToLower(p.Name)) {
			p.HTTP = true
			t.HTTPPortReason = fmt.Sprintf(reasonNamed, p.Name)
			return
		}
	}
}
