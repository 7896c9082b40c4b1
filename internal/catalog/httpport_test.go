package catalog

import (
	"errors"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

func TestChooseHTTPPort(t *testing.T) {
	tcp := func(port int, name string) domain.PortSpec {
		return domain.PortSpec{Name: name, Port: port, Protocol: "tcp"}
	}
	udp := func(port int) domain.PortSpec { return domain.PortSpec{Port: port, Protocol: "udp"} }
	for _, tc := range []struct {
		name   string
		ports  []domain.PortSpec
		label  int
		want   int // index, -1 none
		reason string
	}{
		{"label wins over a well-known port", []domain.PortSpec{tcp(80, ""), tcp(8096, "")}, 8096, 1, "Traefik label loadbalancer.server.port"},
		{"label naming no listed port is ignored", []domain.PortSpec{tcp(80, "")}, 9999, 0, "well-known web port 80"},
		{"named web ui", []domain.PortSpec{tcp(8080, ""), tcp(9443, "webui")}, 0, 1, `a port named "webui"`},
		{"best ranked", []domain.PortSpec{tcp(8443, ""), tcp(3000, ""), tcp(8080, "")}, 0, 2, "well-known web port 8080"},
		{"only TCP port", []domain.PortSpec{udp(53), tcp(8096, "")}, 0, 1, ReasonOnlyTCP},
		{"only TCP port, a database", []domain.PortSpec{tcp(5432, "")}, 0, -1, ""},
		{"only TCP port, TLS", []domain.PortSpec{tcp(443, "")}, 0, -1, ""},
		{"two unknown TCP ports", []domain.PortSpec{tcp(7000, ""), tcp(7001, "")}, 0, -1, ""},
		{"udp only", []domain.PortSpec{udp(8080)}, 0, -1, ""},
		{"no ports", nil, 0, -1, ""},
	} {
		i, reason := chooseHTTPPort(tc.ports, tc.label)
		if i != tc.want || reason != tc.reason {
			t.Errorf("%s: %d %q, want %d %q", tc.name, i, reason, tc.want, tc.reason)
		}
	}
}

func TestChooseHTTPPortAtCreate(t *testing.T) {
	ty := normalize(domain.Type{ID: "x", Ports: []domain.PortSpec{
		{Name: "http", Port: 80, Protocol: "tcp", HTTP: true}, {Name: "admin", Port: 9000, Protocol: "tcp"}, {Name: "dns", Port: 53, Protocol: "udp"},
	}})
	if ty.HTTPPortReason != ReasonDeclared {
		t.Errorf("reason %q", ty.HTTPPortReason)
	}
	got, err := ChooseHTTPPort(ty, 9000)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := got.HTTPPort(); p.Port != 9000 || got.HTTPPortReason != ReasonChosen || !ty.Ports[0].HTTP {
		t.Errorf("chose %+v (%q); the catalog's type changed: %v", p, got.HTTPPortReason, !ty.Ports[0].HTTP)
	}
	for _, port := range []int{53, 1234} {
		_, err := ChooseHTTPPort(ty, port)
		var fe *domain.FieldError
		if !errors.As(err, &fe) || fe.Field != "http_port" {
			t.Errorf("port %d: %v", port, err)
		}
	}
	// A type file's port named like a web UI is routed when none says http.
	named, err := ParseType([]byte("id: n\ntitle: N\nimage: x:1\nports: [{name: web, port: 3001}, {name: metrics, port: 9100}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := named.HTTPPort(); !ok || p.Port != 3001 || named.HTTPPortReason != `a port named "web"` {
		t.Errorf("named: %+v %q", p, named.HTTPPortReason)
	}
}
