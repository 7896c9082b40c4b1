package catalog

import (
	"errors"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// TestParseRouting reads a type with every routing option from YAML.
func TestParseRouting(t *testing.T) {
	typ, err := ParseType([]byte(`
id: shop
title: Shop
image: nginx:1.27-alpine
ports:
  - {name: http, port: 80, http: true}
  - {name: pg, port: 5432}
routing:
  path: /store
  https_redirect: true
  basic_auth: ["admin:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
  headers: {X-Frame-Options: DENY}
  ip_allow_list: [10.0.0.0/8, 192.168.1.7, "fd00::/8"]
  rate_limit: {average: 100, burst: 50, period: 1m}
  health_check: {path: /healthz, interval: 10s, timeout: 3s}
  tcp: [{port: pg, entry_point: postgres}]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := typ.Routing
	if r == nil || r.Path != "/store" || !r.HTTPSRedirect || r.RateLimit.Period.String() != "1m0s" ||
		r.HealthCheck.Timeout.String() != "3s" || r.TCP[0].EntryPoint != "postgres" || r.Headers["X-Frame-Options"] != "DENY" {
		t.Fatalf("routing: %+v", r)
	}
}

// TestValidateRouting: each case breaks one rule and the error names the
// field. Host names and paths reach Traefik rules, so rule syntax is refused.
func TestValidateRouting(t *testing.T) {
	base := func() domain.Type {
		return domain.Type{ID: "shop", Title: "Shop", Image: "nginx:1.27-alpine", Ports: []domain.PortSpec{
			{Name: "http", Port: 80, Protocol: "tcp", HTTP: true}, {Name: "pg", Port: 5432, Protocol: "tcp"}, {Name: "dns", Port: 53, Protocol: "udp"}}}
	}
	cases := []struct {
		field string
		r     domain.Routing
	}{
		{"routing.aliases", domain.Routing{Aliases: []string{"shop.example.com"}}},
		{"routing.path", domain.Routing{Path: "/a`b"}},
		{"routing.path", domain.Routing{Path: "/A"}},
		{"routing.path", domain.Routing{Path: "/a) || Host(`x`"}},
		{"routing.path", domain.Routing{Path: "store"}},
		{"routing.path", domain.Routing{Path: "/ä"}},
		{"routing.basic_auth[0]", domain.Routing{BasicAuth: []string{"nopassword"}}},
		{"routing.basic_auth[0]", domain.Routing{BasicAuth: []string{"a b:x"}}},
		{"routing.headers.X Bad", domain.Routing{Headers: map[string]string{"X Bad": "1"}}},
		{"routing.headers.X-Ok", domain.Routing{Headers: map[string]string{"X-Ok": "a\nb"}}},
		{"routing.ip_allow_list[0]", domain.Routing{IPAllowList: []string{"10.0.0.0/33"}}},
		{"routing.ip_allow_list[0]", domain.Routing{IPAllowList: []string{"example.com"}}},
		{"routing.rate_limit.average", domain.Routing{RateLimit: &domain.RateLimit{}}},
		{"routing.rate_limit.burst", domain.Routing{RateLimit: &domain.RateLimit{Average: 1, Burst: -1}}},
		{"routing.rate_limit.period", domain.Routing{RateLimit: &domain.RateLimit{Average: 1, Period: -1}}},
		{"routing.health_check.path", domain.Routing{HealthCheck: &domain.RouteHealthCheck{Path: "healthz"}}},
		{"routing.health_check.path", domain.Routing{HealthCheck: &domain.RouteHealthCheck{Path: "/a b"}}},
		{"routing.health_check.interval", domain.Routing{HealthCheck: &domain.RouteHealthCheck{Path: "/", Interval: -1}}},
		{"routing.tcp[0].port", domain.Routing{TCP: []domain.TCPRoute{{Port: "nope", EntryPoint: "pg"}}}},
		{"routing.tcp[0].port", domain.Routing{TCP: []domain.TCPRoute{{Port: "http", EntryPoint: "pg"}}}},
		{"routing.tcp[0].port", domain.Routing{TCP: []domain.TCPRoute{{Port: "dns", EntryPoint: "pg"}}}},
		{"routing.tcp[1].port", domain.Routing{TCP: []domain.TCPRoute{{Port: "pg", EntryPoint: "pg"}, {Port: "pg", EntryPoint: "pg2"}}}},
		{"routing.tcp[0].entry_point", domain.Routing{TCP: []domain.TCPRoute{{Port: "pg", EntryPoint: "Post`gres"}}}},
	}
	for _, c := range cases {
		typ := base()
		r := c.r
		typ.Routing = &r
		err := Validate(typ)
		var fe *domain.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a FieldError on %s", c.r, err, c.field)
		}
	}
	ok := base()
	ok.Routing = &domain.Routing{Path: "/app/v2", IPAllowList: []string{"::1"}, TCP: []domain.TCPRoute{{Port: "pg", EntryPoint: "postgres"}}}
	if err := Validate(ok); err != nil {
		t.Errorf("valid routing refused: %v", err)
	}
}
