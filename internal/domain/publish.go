package domain

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// PublishRequest asks for one of a type's ports on the host, as `docker
// run -p HOST_IP:HOST_PORT:PORT` does; the protocol is the type port's.
type PublishRequest struct {
	// Port is the type's port, by number (5432) or name ("db").
	Port     PortRef `json:"port"`
	HostPort int     `json:"host_port"`
	// HostIP is a literal IP address ("": moor's default, MOOR_PUBLISH_ADDR;
	// "0.0.0.0" or "::": every address of that family).
	HostIP string `json:"host_ip,omitempty"`
}

// PortRef names a type's port by number or by name. In JSON it is a number
// or a string; anything else is kept as its JSON text, so validation can
// name the field instead of the decoder refusing the whole body.
type PortRef string

// UnmarshalJSON takes a string as is and any other value as its JSON text.
func (p *PortRef) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		s = ""
	} else if u, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
		s = u
	}
	*p = PortRef(s)
	return nil
}

// MarshalJSON writes a port number as a number and a name as a string.
func (p PortRef) MarshalJSON() ([]byte, error) {
	if n, err := strconv.Atoi(string(p)); err == nil && n >= 0 {
		return []byte(strconv.Itoa(n)), nil
	}
	return []byte(strconv.Quote(string(p))), nil
}

// PublishedPort is a container port published on the host.
type PublishedPort struct {
	Name     string `json:"name"` // the type's port name
	Port     int    `json:"port"` // in the container
	Protocol string `json:"protocol"`
	HostIP   string `json:"host_ip"`
	HostPort int    `json:"host_port"`
}

// String is the binding as Docker shows it: 127.0.0.1:15432->5432/tcp,
// [::1]:15432->5432/tcp.
func (p PublishedPort) String() string {
	return fmt.Sprintf("%s->%d/%s", p.HostAddr(), p.Port, p.Protocol)
}

// HostAddr is the host side, HOST_IP:HOST_PORT (IPv6 in brackets).
func (p PublishedPort) HostAddr() string {
	ip := p.HostIP
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return ip + ":" + strconv.Itoa(p.HostPort)
}

// Overlaps reports whether p and q cannot both be bound on one host: the
// same protocol and host port, and the same address or the wildcard of its
// family (0.0.0.0 holds every IPv4 address). PostgreSQL enforces the same
// rule (migration 0009).
func (p PublishedPort) Overlaps(q PublishedPort) bool {
	if p.Protocol != q.Protocol || p.HostPort != q.HostPort {
		return false
	}
	a, errA := netip.ParseAddr(p.HostIP)
	b, errB := netip.ParseAddr(q.HostIP)
	if errA != nil || errB != nil {
		return p.HostIP == q.HostIP
	}
	return a == b || a.Is4() == b.Is4() && (a.IsUnspecified() || b.IsUnspecified())
}

// SortPublished orders bindings as the store reads them back: by host
// port, protocol, then address (IPv4 first, as PostgreSQL orders inet).
func SortPublished(ps []PublishedPort) {
	slices.SortFunc(ps, func(a, b PublishedPort) int {
		if a.HostPort != b.HostPort {
			return a.HostPort - b.HostPort
		}
		if a.Protocol != b.Protocol {
			return strings.Compare(a.Protocol, b.Protocol)
		}
		x, _ := netip.ParseAddr(a.HostIP)
		y, _ := netip.ParseAddr(b.HostIP)
		return x.Compare(y)
	})
}

// PublishedStrings are the bindings as Docker shows them, for history.
func PublishedStrings(ps []PublishedPort) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// MaxPublished bounds the host ports one container may publish.
const MaxPublished = 32

// ResolvePublish checks a request's publish list against type t and
// returns the bindings in the request's order (an address left out is
// defaultIP). Errors name the field, e.g. publish[0].host_port.
func ResolvePublish(t Type, reqs []PublishRequest, defaultIP string) ([]PublishedPort, error) {
	if len(reqs) == 0 {
		return []PublishedPort{}, nil
	}
	if t.Network == NetworkHost {
		return nil, Invalid("publish", "type %q runs on the host's network: its ports are the host's already, nothing to publish", t.ID)
	}
	if len(reqs) > MaxPublished {
		return nil, Invalid("publish", "at most %d ports", MaxPublished)
	}
	out := make([]PublishedPort, 0, len(reqs))
	for i, r := range reqs {
		field := fmt.Sprintf("publish[%d]", i)
		spec, err := publishedSpec(t, field+".port", r.Port)
		if err != nil {
			return nil, err
		}
		if r.HostPort < 1 || r.HostPort > 65535 {
			return nil, Invalid(field+".host_port", "must be a port from 1 to 65535")
		}
		ip := r.HostIP
		if ip == "" {
			ip = defaultIP
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil || addr.Zone() != "" {
			return nil, Invalid(field+".host_ip", "must be a literal IP address such as 127.0.0.1, 0.0.0.0 (every IPv4 address) or ::1, got %q", r.HostIP)
		}
		p := PublishedPort{Name: spec.Name, Port: spec.Port, Protocol: spec.Protocol, HostIP: addr.Unmap().String(), HostPort: r.HostPort}
		for j, q := range out {
			if q.Overlaps(p) {
				return nil, Invalid(field, "%s/%s overlaps publish[%d] (%s): one host address and port takes one container port", p.HostAddr(), p.Protocol, j, q)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// publishedSpec finds the type's port ref names: by name, else by number
// (a number declared for both TCP and UDP must be named).
func publishedSpec(t Type, field string, ref PortRef) (PortSpec, error) {
	declared := make([]string, len(t.Ports))
	for i, p := range t.Ports {
		declared[i] = fmt.Sprintf("%s %d/%s", p.Name, p.Port, p.Protocol)
	}
	if len(t.Ports) == 0 {
		return PortSpec{}, Invalid(field, "type %q declares no ports to publish", t.ID)
	}
	if ref == "" {
		return PortSpec{}, Invalid(field, "is required: one of the type's ports (%s), by number or name", strings.Join(declared, ", "))
	}
	for _, p := range t.Ports {
		if p.Name == string(ref) {
			return p, nil
		}
	}
	var found []PortSpec
	if n, err := strconv.Atoi(string(ref)); err == nil {
		for _, p := range t.Ports {
			if p.Port == n {
				found = append(found, p)
			}
		}
	}
	switch len(found) {
	case 0:
		return PortSpec{}, Invalid(field, "%s is not a port of type %q; it declares %s", ref, t.ID, strings.Join(declared, ", "))
	case 1:
		return found[0], nil
	}
	return PortSpec{}, Invalid(field, "type %q declares port %s for several protocols: name the one to publish (%s)", t.ID, ref, strings.Join(declared, ", "))
}

// PublishFits refuses more than one replica for a container that publishes
// host ports: every replica would need the same host address and port, and
// all but one would fail to start. field is the request field to blame:
// "replicas" or "publish".
func PublishFits(field string, replicas int, published []PublishedPort) error {
	if replicas <= 1 || len(published) == 0 {
		return nil
	}
	bindings := strings.Join(PublishedStrings(published), ", ")
	if field == "publish" {
		return Invalid(field, "a container of %d replicas cannot publish host ports (%s): its replicas would all need the same host port; "+
			"set replicas to 1 (in the same request, or first)", replicas, bindings)
	}
	return Invalid(field, "must be 0 or 1 for a container that publishes host ports (%s): its replicas would all need the same host port; "+
		"publish nothing to run more", bindings)
}

// PortRange is an inclusive range of host ports.
type PortRange struct{ From, To int }

// PortRanges is a set of host port ranges, e.g. MOOR_PUBLISH_PORTS.
type PortRanges []PortRange

// ParsePortRanges reads comma-separated ports and ranges:
// "30000-30999,25565". Empty is no port at all.
func ParsePortRanges(s string) (PortRanges, error) {
	var out PortRanges
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(item, "-")
		if !isRange {
			hi = lo
		}
		from, err1 := strconv.Atoi(strings.TrimSpace(lo))
		to, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || from < 1 || to > 65535 || from > to {
			return nil, fmt.Errorf("%q is not a port (1-65535) or a range of ports such as 30000-30999", item)
		}
		out = append(out, PortRange{from, to})
	}
	return out, nil
}

// Contains reports whether port is in one of the ranges.
func (rs PortRanges) Contains(port int) bool {
	return slices.ContainsFunc(rs, func(r PortRange) bool { return port >= r.From && port <= r.To })
}

func (rs PortRanges) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(r.From)
		if r.To != r.From {
			parts[i] += "-" + strconv.Itoa(r.To)
		}
	}
	return strings.Join(parts, ",")
}

// Why a host port could not be bound.
const (
	PortHeldByProgram = "program" // a process of the host listens on it
	PortHeldByDocker  = "docker"  // another Docker container publishes it
	PortNoSuchAddress = "address" // the host has no such address
)

// PortInUseError is a host port the runtime could not bind for a replica,
// in words that say what to do. It unwraps to the runtime's error.
type PortInUseError struct {
	HostIP   string // "" when the runtime did not say
	HostPort int
	By       string // PortHeldByProgram, PortHeldByDocker, PortNoSuchAddress or ""
	// Container is the moor container that asked for it ("": unknown);
	// the words then name it in the change to make.
	Container string
	Err       error
}

func (e *PortInUseError) Error() string {
	where := "a host port"
	if e.HostPort != 0 {
		where = "host port " + strconv.Itoa(e.HostPort)
	}
	if e.HostIP != "" {
		where += " (" + e.HostIP + ")"
	}
	var by string
	switch e.By {
	case PortHeldByProgram:
		by = " (by another program: ss -tulpn shows which)"
	case PortHeldByDocker:
		by = " (by a Docker container moor does not manage: docker ps --filter publish=PORT shows it)"
		if e.HostPort != 0 {
			by = strings.Replace(by, "PORT", strconv.Itoa(e.HostPort), 1)
		}
	}
	how := "PATCH the container's publish"
	if e.Container != "" {
		how = "PATCH /api/v1/containers/" + e.Container + ` {"publish": [...]} (moor update ` + e.Container + " -p [HOST_IP:]HOST_PORT:PORT)"
	}
	if e.By == PortNoSuchAddress {
		return "host address " + e.HostIP + " is not one of this host's addresses: choose another host_ip with " + how +
			" (" + e.Err.Error() + ")"
	}
	return where + " is already in use on this host" + by + ": choose another host_port with " + how +
		", or stop what holds it (" + e.Err.Error() + ")"
}

func (e *PortInUseError) Unwrap() error { return e.Err }
