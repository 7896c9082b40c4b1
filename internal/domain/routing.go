package domain

import (
	"net/netip"
	"strings"
	"time"
)

// Routing is how Traefik reaches a container's HTTP port (and, for TCP,
// other ports). A type sets the options; a user may add aliases and a path
// when creating a container. Every field is optional.
//
// Anything that ends up inside a Traefik rule (host names, the path) is made
// of [a-z0-9-] labels only: a backtick or quote there would inject rule
// syntax (see ValidateHost and ValidatePathPrefix).
type Routing struct {
	// Aliases are extra host names, each dot-separated [a-z0-9-] labels.
	Aliases []string `json:"aliases,omitempty" yaml:"aliases"`
	// Path limits the router to a path prefix such as /app.
	Path string `json:"path,omitempty" yaml:"path"`
	// HTTPSRedirect sends plain HTTP requests to HTTPS.
	HTTPSRedirect bool `json:"https_redirect,omitempty" yaml:"https_redirect"`
	// BasicAuth holds htpasswd lines ("user:$apr1$..." or bcrypt).
	BasicAuth []string `json:"basic_auth,omitempty" yaml:"basic_auth"`
	// Headers are added to every response.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers"`
	// IPAllowList restricts clients to these addresses or CIDR ranges.
	IPAllowList []string `json:"ip_allow_list,omitempty" yaml:"ip_allow_list"`
	// RateLimit limits requests per client IP.
	RateLimit *RateLimit `json:"rate_limit,omitempty" yaml:"rate_limit"`
	// HealthCheck makes Traefik probe every replica and skip failing ones.
	HealthCheck *RouteHealthCheck `json:"health_check,omitempty" yaml:"health_check"`
	// TCP routes non-HTTP ports (e.g. a database) through a Traefik TCP
	// entry point, matched by TLS server name (HostSNI).
	TCP []TCPRoute `json:"tcp,omitempty" yaml:"tcp"`
}

// RateLimit is Traefik's rateLimit middleware: Average requests per Period
// (default 1s) with bursts up to Burst.
type RateLimit struct {
	Average int64         `json:"average" yaml:"average"`
	Burst   int64         `json:"burst,omitempty" yaml:"burst"`
	Period  time.Duration `json:"period,omitempty" yaml:"period"`
}

// RouteHealthCheck is Traefik's load-balancer health check.
type RouteHealthCheck struct {
	Path     string        `json:"path" yaml:"path"`
	Interval time.Duration `json:"interval,omitempty" yaml:"interval"`
	Timeout  time.Duration `json:"timeout,omitempty" yaml:"timeout"`
}

// TCPRoute routes the named port through a Traefik TCP entry point.
type TCPRoute struct {
	Port       string `json:"port" yaml:"port"`               // a name from the type's ports
	EntryPoint string `json:"entry_point" yaml:"entry_point"` // a Traefik entry point name
}

// MaxAliases bounds the aliases of one container.
const MaxAliases = 16

// ValidateHost checks a host name that may end up in a Traefik rule: one or
// more dot-separated lower-case DNS labels, at most 253 characters.
func ValidateHost(field, h string) error {
	if h == "" {
		return Invalid(field, "is required")
	}
	if len(h) > 253 {
		return Invalid(field, "must be at most 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if !IsLabel(label) {
			return Invalid(field, "must be a host name of dot-separated labels of lower-case letters, digits and '-' (got %q)", h)
		}
	}
	return nil
}

// ValidatePathPrefix checks a path prefix that ends up in a Traefik rule:
// "/" followed by '/'-separated lower-case DNS labels, e.g. /app/v2.
func ValidatePathPrefix(field, p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 200 {
		return Invalid(field, "must be at most 200 characters")
	}
	rest, ok := strings.CutPrefix(p, "/")
	if !ok || rest == "" {
		return Invalid(field, "must start with '/' and name at least one segment, e.g. /app (got %q)", p)
	}
	for _, seg := range strings.Split(rest, "/") {
		if !IsLabel(seg) {
			return Invalid(field, "must be '/'-separated segments of lower-case letters, digits and '-' (got %q)", p)
		}
	}
	return nil
}

// ValidateAliases checks a container's aliases: each a host name, no
// duplicates, at most MaxAliases.
func ValidateAliases(field string, aliases []string) error {
	if len(aliases) > MaxAliases {
		return Invalid(field, "must hold at most %d names", MaxAliases)
	}
	seen := make(map[string]bool, len(aliases))
	for i, a := range aliases {
		f := field + "[" + itoa(i) + "]"
		if err := ValidateHost(f, a); err != nil {
			return err
		}
		if seen[a] {
			return Invalid(f, "duplicates %q", a)
		}
		seen[a] = true
	}
	return nil
}

// ValidateSourceRange checks an IP allow list entry: an address or a CIDR.
func ValidateSourceRange(field, s string) error {
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	return Invalid(field, "must be an IP address or CIDR range (got %q)", s)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
