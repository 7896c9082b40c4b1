package provider

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/internal/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

const testToken = "test-provider-token-0123456789"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore returns a migrated store on a database of this test's own.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.Postgres(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

var testType = domain.Type{ID: "web", Title: "Web", Image: "moor-testapp:latest", Ports: []domain.PortSpec{webPort}}

// addContainer records a container as the lifecycle service does, then, if
// ip is set, as running there, as the reconciler does.
func addContainer(t testing.TB, st *store.Store, name, ip string, r *domain.Routing) string {
	t.Helper()
	ctx := context.Background()
	spec := testType
	spec.Routing = r
	id := uuid.NewString()
	if _, err := st.CreateContainer(ctx, domain.NewContainer{ID: id, Name: name, Type: spec.ID, Image: spec.Image, Spec: spec, Replicas: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	if ip != "" {
		setRunning(t, st, id, name, ip)
	}
	return id
}

func setRunning(t testing.TB, st *store.Store, id, name, ip string) {
	t.Helper()
	err := st.RecordObservation(context.Background(), domain.Observation{ID: id, Name: name, Status: domain.StatusRunning,
		Instances: []domain.Instance{{Index: 0, RuntimeID: "d-" + name, InternalIP: ip, Status: domain.StatusRunning}}, Event: "running"})
	if err != nil {
		t.Fatal(err)
	}
}

func newProvider(t testing.TB, src Source) *Provider {
	t.Helper()
	p, err := New(src, plain, testToken, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, url, token string, header ...string) response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func serve(t testing.TB, p *Provider) string {
	mux := http.NewServeMux()
	p.Handler(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnContext = ConnContext // as cmd/moor serves it
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEndpointSnapshot(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	p := newProvider(t, st)
	url := serve(t, p) + "/api/v1/traefik/config"

	// No snapshot yet: never 200.
	if r := get(t, url, testToken); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("before the first snapshot: %d %s", r.status, r.body)
	}
	for _, tok := range []string{"", "wrong-token-wrong-token-wrong"} {
		if r := get(t, url, tok); r.status != 401 {
			t.Errorf("token %q: %d", tok, r.status)
		}
	}
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	// An empty database is a true picture too: served, and decodable.
	empty := get(t, url, testToken)
	if empty.status != 200 {
		t.Fatalf("empty: %d %s", empty.status, empty.body)
	}
	if cfg, err := decodeLikeTraefik(empty.body); err != nil || len(cfg.HTTP.Routers) != 1 || cfg.HTTP.Routers[UnknownRouter] == nil {
		t.Fatalf("empty configuration: %v %s", err, empty.body)
	}

	addContainer(t, st, "blog", "172.30.0.5", nil)
	addContainer(t, st, "shop", "", &domain.Routing{Aliases: []string{"shop.example.com"}})
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	first := get(t, url, testToken)
	if first.status != 200 || first.header.Get("ETag") == "" || first.header.Get("ETag") == empty.header.Get("ETag") {
		t.Fatalf("after a change: %d %v", first.status, first.header)
	}
	cfg, err := decodeLikeTraefik(first.body)
	if err != nil {
		t.Fatalf("paerser refuses the served bytes: %v\n%s", err, first.body)
	}
	if s := cfg.HTTP.Services["blog"]; s == nil || s.LoadBalancer.Servers[0].URL != "http://172.30.0.5:8080" {
		t.Errorf("blog service: %s", first.body)
	}
	if r := cfg.HTTP.Routers["shop"]; r == nil || r.Service != UnavailableService {
		t.Errorf("shop (not running) must keep a router to moor's page: %s", first.body)
	}
	// Nothing changed: the same bytes, the same ETag, also after a rebuild.
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	again := get(t, url, testToken)
	if !bytes.Equal(again.body, first.body) || again.header.Get("ETag") != first.header.Get("ETag") {
		t.Errorf("unchanged state served different bytes")
	}
	// A conditional request without wait: 304 at once.
	if r := get(t, url, testToken, "If-None-Match", first.header.Get("ETag")); r.status != 304 {
		t.Errorf("If-None-Match: %d", r.status)
	}
	if r := get(t, url+"?wait=forever", testToken); r.status != 400 || !strings.Contains(string(r.body), `"field":"wait"`) {
		t.Errorf("bad wait: %d %s", r.status, r.body)
	}

	// The database goes away: the last good snapshot stays served.
	st.Close()
	if err := p.Rebuild(ctx); err == nil {
		t.Fatal("rebuild on a closed store succeeded")
	}
	if r := get(t, url, testToken); r.status != 200 || !bytes.Equal(r.body, first.body) {
		t.Errorf("after a failed rebuild: %d, same bytes %v", r.status, bytes.Equal(r.body, first.body))
	}
}

// TestLongPoll: a request holding the current ETag waits for the next
// snapshot, which Run builds when notified of a change.
func TestLongPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	p := newProvider(t, st)
	url := serve(t, p) + "/api/v1/traefik/config"
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	go st.ListenRoutes(ctx, p.Changed)
	go p.Run(ctx)
	etag := p.Current().ETag

	got := make(chan response, 1)
	go func() { got <- get(t, url+"?wait=60s", testToken, "If-None-Match", etag) }()
	addContainer(t, st, "late", "172.30.0.9", nil)
	r := <-got
	// Run may have caught the container pending, between its two
	// transactions; poll on until it shows running.
	for r.status == 200 && !strings.Contains(string(r.body), "http://172.30.0.9:8080") {
		r = get(t, url+"?wait=60s", testToken, "If-None-Match", r.header.Get("ETag"))
	}
	if r.status != 200 || !strings.Contains(string(r.body), "late.moor.localhost") || r.header.Get("ETag") == etag {
		t.Fatalf("long poll: %d %s", r.status, r.body)
	}
	// Waiting with the new ETag and no change ends in 304.
	if r := get(t, url+"?wait=1", testToken, "If-None-Match", r.header.Get("ETag")); r.status != 304 {
		t.Errorf("long poll without change: %d", r.status)
	}
}

func TestUnavailablePage(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	p := newProvider(t, st)
	base := serve(t, p)
	page := func(host string) response {
		req, _ := http.NewRequest("GET", base+UnavailablePrefix+"/some/path", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, b}
	}
	if r := page("blog.moor.localhost"); r.status != 503 {
		t.Errorf("before the first snapshot: %d", r.status)
	}
	id := addContainer(t, st, "blog", "", &domain.Routing{Aliases: []string{"blog.example.com"}})
	if err := p.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"blog.moor.localhost", "BLOG.moor.localhost:80", "blog.example.com"} {
		r := page(host)
		if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "blog is starting") {
			t.Errorf("%s: %d %v %s", host, r.status, r.header, r.body)
		}
	}
	if err := st.RecordObservation(ctx, domain.Observation{ID: id, Name: "blog", Status: domain.StatusStopped, Event: "stopped"}); err != nil {
		t.Fatal(err)
	}
	p.Rebuild(ctx)
	if r := page("blog.moor.localhost"); r.status != 503 || !strings.Contains(string(r.body), "blog is stopped") {
		t.Errorf("stopped: %d %s", r.status, r.body)
	}
	if r := page("nope.moor.localhost"); r.status != 404 {
		t.Errorf("unknown name: %d", r.status)
	}
	if r := page("<script>.moor.localhost"); r.status != 404 || strings.Contains(string(r.body), "<script>") {
		t.Errorf("hostile host echoed: %s", r.body)
	}
}

// TestInstanceChangeWakesProvider: a replica's health changing while its
// container stays running records no event; the routes trigger still
// reaches the provider, which routes the replica once it is healthy.
func TestInstanceChangeWakesProvider(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	// No timed rebuild in this test's life: only the trigger can wake it.
	p, err := New(st, plain, testToken, time.Hour, quiet)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, p) + "/api/v1/traefik/config"
	id := addContainer(t, st, "hc", "", nil)
	// Running but still starting its health check: no server yet.
	starting := []domain.Instance{{Index: 0, RuntimeID: "d", InternalIP: "172.30.1.2", Status: domain.StatusRunning, Health: "starting"}}
	if err := st.RecordObservation(ctx, domain.Observation{ID: id, Name: "hc", Status: domain.StatusRunning, Instances: starting, Event: "running"}); err != nil {
		t.Fatal(err)
	}
	go st.ListenRoutes(ctx, p.Changed)
	go p.Run(ctx)
	etag := ""
	for {
		r := get(t, url+"?wait=60s", testToken, "If-None-Match", etag)
		if r.status == 200 && strings.Contains(string(r.body), `"hc":{"entryPoints"`) {
			if strings.Contains(string(r.body), "172.30.1.2") {
				t.Fatal("a replica still starting its health check is routed")
			}
			etag = r.header.Get("ETag")
			break
		}
		etag = r.header.Get("ETag")
	}
	healthy := []domain.Instance{{Index: 0, RuntimeID: "d", InternalIP: "172.30.1.2", Status: domain.StatusRunning, Health: "healthy"}}
	if err := st.RecordObservation(ctx, domain.Observation{ID: id, Name: "hc", Status: domain.StatusRunning, Instances: healthy}); err != nil {
		t.Fatal(err)
	}
	// Only the trigger can have woken the provider now.
	r := get(t, url+"?wait=60s", testToken, "If-None-Match", etag)
	if r.status != 200 || !strings.Contains(string(r.body), "http://172.30.1.2:8080") {
		t.Fatalf("healthy replica not routed: %d %s", r.status, r.body)
	}
}
