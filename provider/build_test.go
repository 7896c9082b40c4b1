package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/traefik/genconf/dynamic"
	"github.com/traefik/genconf/dynamic/tls"
	"github.com/traefik/paerser/file"

	"github.com/moorhq/moor/internal/domain"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var webPort = domain.PortSpec{Name: "http", Port: 8080, Protocol: "tcp", HTTP: true}

func running(ips ...string) []domain.Instance {
	var ins []domain.Instance
	for i, ip := range ips {
		ins = append(ins, domain.Instance{Index: i, InternalIP: ip, Status: domain.StatusRunning})
	}
	return ins
}

func ctr(name string, status domain.Status, ins []domain.Instance, r *domain.Routing, ports ...domain.PortSpec) domain.Container {
	if len(ports) == 0 {
		ports = []domain.PortSpec{webPort}
	}
	return domain.Container{
		Name: name, Status: status, Instances: ins,
		Spec: domain.Type{ID: "t", Ports: ports, Routing: r},
	}
}

var plain = Options{HostZone: "moor.localhost", EntryPoints: []string{"web"}, FallbackURL: "http://moor:8080"}

var secure = Options{HostZone: "moor.example.com", EntryPoints: []string{"web"}, TLSEntryPoints: []string{"websecure"},
	CertResolver: "letsencrypt", FallbackURL: "http://moor:8080"}

var pgPorts = []domain.PortSpec{{Name: "postgres", Port: 5432, Protocol: "tcp"}}

var buildCases = []struct {
	name string
	opts Options
	cs   []domain.Container
}{
	{"empty", plain, nil},
	{"empty-tls", secure, nil},
	{"one-running", plain, []domain.Container{ctr("blog", domain.StatusRunning, running("172.18.0.5"), nil)}},
	{"replicas-sorted", plain, []domain.Container{ctr("api", domain.StatusRunning, []domain.Instance{
		{Index: 0, InternalIP: "172.18.0.9", Status: domain.StatusRunning},
		{Index: 1, InternalIP: "172.18.0.10", Status: domain.StatusRunning},
		{Index: 2, InternalIP: "", Status: domain.StatusPending},
		{Index: 3, InternalIP: "172.18.0.11", Status: domain.StatusStopped},
		{Index: 4, InternalIP: "fd00::4", Status: domain.StatusRunning, Health: "healthy"},
		{Index: 5, InternalIP: "172.18.0.12", Status: domain.StatusRunning, Health: "starting"},
		{Index: 6, InternalIP: "172.18.0.13", Status: domain.StatusRunning, Health: "unhealthy"},
	}, nil)}},
	{"not-running", plain, []domain.Container{
		ctr("stopped", domain.StatusStopped, []domain.Instance{{Index: 0, Status: domain.StatusStopped}}, nil),
		ctr("failed", domain.StatusFailed, []domain.Instance{{Index: 0, Status: domain.StatusFailed}}, nil),
		ctr("starting", domain.StatusCreating, []domain.Instance{{Index: 0, Status: domain.StatusCreating}}, nil),
		ctr("pending", domain.StatusPending, []domain.Instance{{Index: 0, Status: domain.StatusPending}}, nil),
		ctr("zero", domain.StatusRunning, nil, nil),
	}},
	{"middlewares-tls", secure, []domain.Container{ctr("shop", domain.StatusRunning, running("10.0.0.2", "10.0.0.3"), &domain.Routing{
		Aliases: []string{"shop.example.org", "www.shop.example.org"}, Path: "/store",
		HTTPSRedirect: true, BasicAuth: []string{"admin:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"},
		Headers:     map[string]string{"X-Frame-Options": "DENY", "Strict-Transport-Security": "max-age=63072000"},
		IPAllowList: []string{"10.0.0.0/8", "192.168.1.7"},
		RateLimit:   &domain.RateLimit{Average: 100, Burst: 50, Period: time.Minute},
		HealthCheck: &domain.RouteHealthCheck{Path: "/healthz", Interval: 10 * time.Second, Timeout: 3 * time.Second},
	})}},
	{"stopped-keeps-middlewares", secure, []domain.Container{ctr("shop", domain.StatusStopped, nil, &domain.Routing{
		HTTPSRedirect: true, BasicAuth: []string{"admin:$2y$05$abcdefghijklmnopqrstuv"}, IPAllowList: []string{"10.0.0.0/8"},
	})}},
	{"tls-default-cert", Options{HostZone: "moor.localhost", TLSEntryPoints: []string{"websecure"}, FallbackURL: "https://moor.internal:8443"},
		[]domain.Container{ctr("blog", domain.StatusRunning, running("172.18.0.5"), &domain.Routing{HTTPSRedirect: true})}},
	{"tcp", plain, []domain.Container{
		ctr("db", domain.StatusRunning, running("172.18.0.7"), &domain.Routing{TCP: []domain.TCPRoute{{Port: "postgres", EntryPoint: "postgres"}}}, pgPorts...),
		ctr("olddb", domain.StatusStopped, nil, &domain.Routing{TCP: []domain.TCPRoute{{Port: "postgres", EntryPoint: "postgres"}}}, pgPorts...),
		ctr("cache", domain.StatusRunning, running("172.18.0.8"), nil, domain.PortSpec{Name: "redis", Port: 6379, Protocol: "tcp"}),
	}},
	{"health-checked", plain, []domain.Container{func() domain.Container {
		c := ctr("hc", domain.StatusRunning, []domain.Instance{
			{Index: 0, InternalIP: "172.18.0.20", Status: domain.StatusRunning, Health: ""},
			{Index: 1, InternalIP: "172.18.0.21", Status: domain.StatusRunning, Health: "starting"},
			{Index: 2, InternalIP: "172.18.0.22", Status: domain.StatusRunning, Health: "healthy"},
		}, nil)
		c.Spec.Health = &domain.HealthSpec{Test: []string{"CMD", "/app", "-check"}}
		return c
	}()}},
	// One name in three projects: each its own router, service and host
	// name (NAME-PROJECT outside the default project).
	{"projects", plain, []domain.Container{
		ctr("web", domain.StatusRunning, running("172.18.0.2"), nil),
		func() domain.Container {
			c := ctr("web", domain.StatusRunning, running("172.19.0.2"), nil)
			c.Project = "shop"
			return c
		}(),
		func() domain.Container {
			c := ctr("web", domain.StatusStopped, nil, nil)
			c.Project = "lab"
			return c
		}(),
	}},
	{"alias-conflicts", plain, []domain.Container{
		ctr("b", domain.StatusRunning, running("172.18.0.3"), &domain.Routing{Aliases: []string{"shared.example.com", "a.moor.localhost"}}),
		ctr("a", domain.StatusRunning, running("172.18.0.2"), &domain.Routing{Aliases: []string{"shared.example.com"}}),
	}},
}

func TestBuildGolden(t *testing.T) {
	for _, tc := range buildCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Build(tc.cs, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Render(cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".json")
			if *update {
				var pretty bytes.Buffer
				json.Indent(&pretty, got, "", "  ")
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./provider -update to create it)", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimSpace(got), compact.Bytes()) {
				t.Errorf("Build differs from %s (run with -update if intended):\ngot  %s\nwant %s", golden, got, compact.Bytes())
			}
			// The same state in another order gives the same bytes.
			rev := slices.Clone(tc.cs)
			slices.Reverse(rev)
			cfg2, _ := Build(rev, tc.opts)
			if again, _ := Render(cfg2); !bytes.Equal(again, got) {
				t.Errorf("Render is not deterministic:\n%s\n%s", got, again)
			}
		})
	}
}

// decodeLikeTraefik decodes bytes as Traefik's HTTP provider does
// (pkg/provider/http: file.DecodeContent with ".yaml" into a configuration
// with empty maps), into genconf's types.
func decodeLikeTraefik(body []byte) (*dynamic.Configuration, error) {
	cfg := &dynamic.Configuration{
		HTTP: &dynamic.HTTPConfiguration{
			Routers: map[string]*dynamic.Router{}, Middlewares: map[string]*dynamic.Middleware{},
			Services: map[string]*dynamic.Service{}, ServersTransports: map[string]*dynamic.ServersTransport{},
		},
		TCP: &dynamic.TCPConfiguration{Routers: map[string]*dynamic.TCPRouter{}, Services: map[string]*dynamic.TCPService{}},
		TLS: &dynamic.TLSConfiguration{Stores: map[string]tls.Store{}, Options: map[string]tls.Options{}},
		UDP: &dynamic.UDPConfiguration{Routers: map[string]*dynamic.UDPRouter{}, Services: map[string]*dynamic.UDPService{}},
	}
	err := file.DecodeContent(string(body), ".yaml", cfg)
	return cfg, err
}

// TestGoldenDecodesStrictly decodes every golden case with paerser, as
// Traefik does, and checks nothing was lost on the way.
func TestGoldenDecodesStrictly(t *testing.T) {
	for _, tc := range buildCases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeLikeTraefik(body)
			if err != nil {
				t.Fatalf("paerser refuses the configuration: %v", err)
			}
			want, _ := Build(tc.cs, tc.opts)
			if len(got.HTTP.Routers) == 0 {
				t.Fatal("no routers decoded")
			}
			if !reflect.DeepEqual(got.HTTP.Routers, want.HTTP.Routers) || !reflect.DeepEqual(got.HTTP.Services, want.HTTP.Services) ||
				!reflect.DeepEqual(got.HTTP.Middlewares, want.HTTP.Middlewares) {
				a, _ := json.Marshal(got.HTTP)
				b, _ := json.Marshal(want.HTTP)
				t.Errorf("decoded HTTP configuration differs:\ngot  %s\nwant %s", a, b)
			}
			if want.TCP != nil && (!reflect.DeepEqual(got.TCP.Routers, want.TCP.Routers) || !reflect.DeepEqual(got.TCP.Services, want.TCP.Services)) {
				t.Errorf("decoded TCP configuration differs")
			}
		})
	}
}

// TestDecoderTraps shows why the builder never emits empty objects: the
// decoder Traefik uses refuses them, and then keeps serving the last good
// configuration, so a deleted container would stay routed.
func TestDecoderTraps(t *testing.T) {
	for _, body := range []string{
		`{"http":{"routers":{}}}`,
		`{"http":{"routers":{"a":{"rule":"Host(` + "`a`" + `)","service":"a","tls":{}}}}}`,
		`{"tls":{"options":{"default":{"clientAuth":{}}}}}`,
		`{"http":{"routers":{"a":{"rule":"x","service":"a","bogus":1}}}}`,
	} {
		if _, err := decodeLikeTraefik([]byte(body)); err == nil {
			t.Errorf("decoder accepted %s", body)
		}
	}
	// genconf's non-pointer ClientAuth is the trap the issue warns of.
	b, _ := json.Marshal(dynamic.TLSConfiguration{Options: map[string]tls.Options{"x": {}}})
	if !strings.Contains(string(b), `"clientAuth":{}`) {
		t.Errorf("genconf no longer emits clientAuth:{} (%s): the builder may use tls options", b)
	}
}

func TestBuildRefusesUnsafeInput(t *testing.T) {
	bad := []domain.Container{
		ctr("a`b", domain.StatusRunning, running("10.0.0.1"), nil),
		ctr("Upper", domain.StatusRunning, running("10.0.0.1"), nil),
		ctr("ok", domain.StatusRunning, running("10.0.0.1"), &domain.Routing{Aliases: []string{"x`) || Host(`*"}}),
		ctr("ok", domain.StatusRunning, running("10.0.0.1"), &domain.Routing{Aliases: []string{"*.example.com"}}),
		ctr("ok", domain.StatusRunning, running("10.0.0.1"), &domain.Routing{Path: "/a`"}),
		ctr("ok", domain.StatusRunning, running("10.0.0.1"), &domain.Routing{Path: "/ä"}),
		ctr("ok", domain.StatusRunning, running("10.0.0.1"), &domain.Routing{TCP: []domain.TCPRoute{{Port: "http", EntryPoint: "a b"}}}),
	}
	for _, c := range bad {
		_, err := Build([]domain.Container{c}, plain)
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("Build(%+v) = %v, want ErrInvalid", c.Spec.Routing, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := plain.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{
		{HostZone: "Moor.localhost", EntryPoints: []string{"web"}, FallbackURL: "http://x"},
		{HostZone: "moor.localhost", FallbackURL: "http://x"},
		{HostZone: "moor.localhost", EntryPoints: []string{"web`"}, FallbackURL: "http://x"},
		{HostZone: "moor.localhost", EntryPoints: []string{"web"}, CertResolver: "a b", FallbackURL: "http://x"},
		{HostZone: "moor.localhost", EntryPoints: []string{"web"}, FallbackURL: "moor:8080"},
	} {
		var fe *domain.FieldError
		if err := o.Validate(); !errors.As(err, &fe) {
			t.Errorf("Validate(%+v) = %v, want a FieldError", o, err)
		}
	}
}

// containers10k is 10,000 running containers, every tenth with routing
// options, as a large installation would have.
func containers10k() []domain.Container {
	cs := make([]domain.Container, 10000)
	for i := range cs {
		var r *domain.Routing
		if i%10 == 0 {
			r = &domain.Routing{Aliases: []string{fmt.Sprintf("www%d.example.com", i)}, BasicAuth: []string{"admin:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"},
				IPAllowList: []string{"10.0.0.0/8"}}
		}
		cs[i] = ctr(fmt.Sprintf("c%05d", i), domain.StatusRunning, running(fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, i%256)), r)
	}
	return cs
}

// BenchmarkFullRender10k: the pure part of a full rebuild (no database):
// every fragment rendered and assembled.
func BenchmarkFullRender10k(b *testing.B) {
	cs := containers10k()
	a := newAssembler(plain)
	b.ReportAllocs()
	for b.Loop() {
		a.replaceAll(cs)
		body, err := a.render()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
	}
}

// BenchmarkChangeRender10k: the pure part of an incremental rebuild: one
// container of 10,000 changed, re-rendered and the body re-assembled.
func BenchmarkChangeRender10k(b *testing.B) {
	cs := containers10k()
	for i := range cs {
		cs[i].ID = fmt.Sprint(i)
	}
	a := newAssembler(plain)
	a.replaceAll(cs)
	if _, err := a.render(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c := cs[i*7919%len(cs)]
		c.Instances = running(fmt.Sprintf("10.250.%d.%d", i/250%250, 1+i%250))
		a.update([]string{c.ID}, []domain.Container{c})
		body, err := a.render()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		i++
	}
}

// TestNoContainerOutranksAnotherRouter: however many aliases a container
// lists, its routers carry ContainerPriority, below what Traefik gives any
// router defined elsewhere by default (the length of its rule), so an alias
// naming moor's own dashboard host, say, cannot take it over; they still
// rank above the catch-all.
func TestNoContainerOutranksAnotherRouter(t *testing.T) {
	var aliases []string
	for i := range 16 {
		aliases = append(aliases, fmt.Sprintf("name-%d.example.org", i))
	}
	aliases[0] = "moor.example.org"
	cfg, err := Build([]domain.Container{ctr("greedy", domain.StatusRunning, running("172.18.0.9"), &domain.Routing{Aliases: aliases})}, secure)
	if err != nil {
		t.Fatal(err)
	}
	shortest := len("Host(`a.b`)") // the least default priority of a host router
	for name, r := range cfg.HTTP.Routers {
		switch {
		case name == UnknownRouter || name == UnknownRouter+"_tls":
			if r.Priority >= ContainerPriority {
				t.Errorf("catch-all %s priority %d, want below %d", name, r.Priority, ContainerPriority)
			}
		case r.Priority != ContainerPriority:
			t.Errorf("router %s priority %d (rule of %d characters), want %d", name, r.Priority, len(r.Rule), ContainerPriority)
		}
	}
	if ContainerPriority >= shortest {
		t.Errorf("ContainerPriority %d would outrank a default-priority router of %d", ContainerPriority, shortest)
	}
}
