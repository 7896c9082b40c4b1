package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/moorhq/moor/internal/domain"
)

// addProjectContainer records a running container of a project as moor
// does: its container-zone names NAME.PROJECT (and NAME, in the default
// project) per replica.
func (ts *testServer) addProjectContainer(project, name string, ips ...string) string {
	ts.t.Helper()
	ctx := context.Background()
	id := uuid()
	if _, err := ts.st.CreateContainer(ctx, domain.NewContainer{
		ID: id, Project: project, Name: name, Type: "testapp", Image: "moor-testapp:latest", Spec: domain.Type{ID: "testapp"}, Replicas: len(ips),
	}, "test"); err != nil {
		ts.t.Fatal(err)
	}
	ts.setProjectIPs(id, project, name, ips...)
	return id
}

func (ts *testServer) setProjectIPs(id, project, name string, ips ...string) {
	ts.t.Helper()
	labels := []string{name + "." + project}
	if project == domain.DefaultProject {
		labels = append(labels, name)
	}
	o := domain.Observation{ID: id, Name: name, Status: domain.StatusRunning, ContainerDNS: []domain.DNSEntry{}}
	for i, ip := range ips {
		rep := i
		o.Instances = append(o.Instances, domain.Instance{Index: i, Status: domain.StatusRunning, InternalIP: ip})
		for _, l := range labels {
			o.ContainerDNS = append(o.ContainerDNS,
				domain.DNSEntry{Zone: "container", Name: l + ".moor.internal", Type: "A", Value: ip, Replica: &rep, TTL: 5},
				domain.DNSEntry{Zone: "container", Name: fmt.Sprintf("%d.%s.moor.internal", i, l), Type: "A", Value: ip, Replica: &rep, TTL: 5})
		}
	}
	if err := ts.st.RecordObservation(context.Background(), o); err != nil {
		ts.t.Fatal(err)
	}
}

// TestProjectViewsFromPostgres: the projects' subnets recorded in
// PostgreSQL reach the server through the trigger's notification alone (the
// timed rebuild is an hour away) and pick each client's view: its project's
// names, NXDOMAIN for another's; a client in ContainerCIDRs and in no
// project's subnet sees the default project's. A change of views keeps the
// serial (the zones are the same); a patched rebuild keeps the views.
func TestProjectViewsFromPostgres(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ContainerCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	ctx := context.Background()
	for _, p := range []string{"a", "b"} {
		if _, err := ts.st.CreateProject(ctx, domain.NewProject{Name: p}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	ts.addProjectContainer("default", "web", "172.20.0.2")
	aWeb := ts.addProjectContainer("a", "web", "172.21.0.2")
	ts.addProjectContainer("b", "web", "172.22.0.2")
	const router, clientA, clientB, movedB = "127.0.0.2", "127.0.1.5", "127.0.2.5", "127.0.3.5"
	got := func(src, name string) string {
		r := ts.ask(src, name, dns.TypeA)
		if r.Rcode != dns.RcodeSuccess {
			if r.Rcode == dns.RcodeNameError && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
				return "NXDOMAIN without SOA"
			}
			return dns.RcodeToString[r.Rcode]
		}
		return strings.Join(answers(r), ",")
	}
	eventually(t, "b's web", func() bool {
		return got(router, "web.default.moor.internal.") != "NXDOMAIN" && ts.srv.Snapshot().node(projectKey("b")+wireKey("web.b.moor.internal.")) != nil
	})
	if g := got(clientA, "web.a.moor.internal."); g != "REFUSED" {
		t.Errorf("a's client before its subnets are known: %s, want REFUSED (the host zone alone)", g)
	}
	serial := ts.serial()

	if err := ts.st.RecordProjectSubnets(ctx, "a", []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")}); err != nil {
		t.Fatal(err)
	}
	if err := ts.st.RecordProjectSubnets(ctx, "b", []netip.Prefix{netip.MustParsePrefix("127.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the projects' views", func() bool {
		return got(clientA, "web.a.moor.internal.") == "web.a.moor.internal. A 172.21.0.2" && got(clientB, "web.b.moor.internal.") != "REFUSED"
	})
	for _, c := range []struct{ src, name, want string }{
		{clientA, "web.a.moor.internal.", "web.a.moor.internal. A 172.21.0.2"},
		{clientA, "web.b.moor.internal.", "NXDOMAIN"},
		{clientA, "web.moor.internal.", "NXDOMAIN"},
		{clientA, "web.default.moor.internal.", "NXDOMAIN"},
		{clientA, "web-b.moor.localhost.", "NXDOMAIN"}, // no host name was given: none exists
		{clientB, "web.b.moor.internal.", "web.b.moor.internal. A 172.22.0.2"},
		{clientB, "web.a.moor.internal.", "NXDOMAIN"},
		{router, "web.moor.internal.", "web.moor.internal. A 172.20.0.2"},
		{router, "web.default.moor.internal.", "web.default.moor.internal. A 172.20.0.2"},
		{router, "web.a.moor.internal.", "NXDOMAIN"},
		{"", "web.moor.internal.", "REFUSED"},
	} {
		if g := got(c.src, c.name); g != c.want {
			t.Errorf("%s from %s: %s, want %s", c.name, c.src, g, c.want)
		}
	}
	if s := ts.serial(); s != serial {
		t.Errorf("serial %d after a change of views alone, want %d", s, serial)
	}

	// b's network moves: its old addresses lose the view, the new gain it.
	if err := ts.st.RecordProjectSubnets(ctx, "b", []netip.Prefix{netip.MustParsePrefix("127.0.3.0/24")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's new subnet", func() bool { return got(movedB, "web.b.moor.internal.") == "web.b.moor.internal. A 172.22.0.2" })
	if g := got(clientB, "web.b.moor.internal."); g != "REFUSED" {
		t.Errorf("b's old subnet: %s, want REFUSED", g)
	}
	// A patched rebuild (one container re-read) keeps the views.
	ts.setProjectIPs(aWeb, "a", "web", "172.21.0.9")
	eventually(t, "a's new address", func() bool { return got(clientA, "web.a.moor.internal.") == "web.a.moor.internal. A 172.21.0.9" })
	if g := got(movedB, "web.a.moor.internal."); g != "NXDOMAIN" {
		t.Errorf("a's name from b after a patch: %s", g)
	}
}
