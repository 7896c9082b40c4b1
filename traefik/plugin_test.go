// Package traefik_test loads moor's provider plugin the way Traefik does
// (Yaegi, standard library symbols only) and runs it against a real moor
// provider endpoint backed by PostgreSQL.
package traefik_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/internal/testenv"
	"github.com/moorhq/moor/provider"
	"github.com/moorhq/moor/traefik/yaegiload"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

const moduleName = yaegiload.ModuleName

// loadPlugin loads the plugin as Traefik does (see package yaegiload).
func loadPlugin(t *testing.T, settings map[string]string) yaegiload.PP {
	t.Helper()
	pp, err := newPlugin(t, settings)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return pp
}

// newPlugin is loadPlugin returning the loader's (New's) error.
func newPlugin(t *testing.T, settings map[string]string) (yaegiload.PP, error) {
	t.Helper()
	return yaegiload.Load("moorprovider", t.TempDir(), settings)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const token = "plugin-test-token-0123456789abcdef"

// moorEndpoint serves a real provider over a real store on addr.
type moorEndpoint struct {
	srv *http.Server
	ln  net.Listener
}

func serveAt(t *testing.T, p *provider.Provider, addr string) *moorEndpoint {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Handler(mux)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	e := &moorEndpoint{srv: srv, ln: ln}
	t.Cleanup(func() { srv.Close() })
	return e
}

func addRunning(t *testing.T, st *store.Store, name, ip string) {
	t.Helper()
	ctx := context.Background()
	spec := domain.Type{ID: "web", Title: "Web", Image: "moor-testapp:latest",
		Ports: []domain.PortSpec{{Name: "http", Port: 8080, Protocol: "tcp", HTTP: true}}}
	id := uuid.NewString()
	if _, err := st.CreateContainer(ctx, domain.NewContainer{ID: id, Name: name, Type: spec.ID, Image: spec.Image, Spec: spec, Replicas: 1}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordObservation(ctx, domain.Observation{ID: id, Name: name, Status: domain.StatusRunning,
		Instances: []domain.Instance{{Index: 0, RuntimeID: "d", InternalIP: ip, Status: domain.StatusRunning}}, Event: "running"}); err != nil {
		t.Fatal(err)
	}
}

// next returns the next configuration the plugin pushes, decoded as
// Traefik's plugin wrapper does (MarshalJSON, then encoding/json).
func next(t *testing.T, ch <-chan json.Marshaler) map[string]any {
	t.Helper()
	m := <-ch
	b, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func routers(cfg map[string]any) map[string]any {
	h, _ := cfg["http"].(map[string]any)
	r, _ := h["routers"].(map[string]any)
	return r
}

// waitUntil reads pushed configurations until one satisfies cond.
func waitUntil(t *testing.T, ch <-chan json.Marshaler, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	for {
		if cfg := next(t, ch); cond(cfg) {
			return cfg
		}
	}
}

func routes(cfg map[string]any, ip string) bool {
	return strings.Contains(fmt.Sprint(cfg), "http://"+ip+":8080")
}

func TestPluginUnderYaegi(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, testenv.Postgres(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	prov, err := provider.New(st, provider.Options{HostZone: "moor.localhost", EntryPoints: []string{"web"},
		FallbackURL: "http://moor:8080"}, token, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e := serveAt(t, prov, "127.0.0.1:0")
	addr := e.ln.Addr().String()

	pp := loadPlugin(t, map[string]string{"endpoint": "http://" + addr + "/api/v1/traefik/config", "token": token, "wait": "30s", "maxBackoff": "200ms"})
	if err := pp.Init(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan json.Marshaler)
	// Traefik calls Provide synchronously: it must return at once.
	if err := pp.Provide(ch); err != nil {
		t.Fatal(err)
	}
	defer pp.Stop()

	// moor has no snapshot yet (503): the plugin retries, sends nothing,
	// and sends the first true picture once moor has it.
	go st.ListenRoutes(ctx, prov.Changed)
	go prov.Run(ctx)
	first := next(t, ch)
	if routers(first)[provider.UnknownRouter] == nil {
		t.Fatalf("first configuration: %v", first)
	}

	// A change in moor reaches the channel.
	addRunning(t, st, "blog", "172.31.0.2")
	// (Created pending, then running: two commits, maybe two pushes.)
	cfg := waitUntil(t, ch, func(cfg map[string]any) bool { return routes(cfg, "172.31.0.2") })
	if routers(cfg)["blog"] == nil {
		t.Errorf("blog has no router: %v", cfg)
	}

	// moor goes away; meanwhile state changes; when moor is back on the
	// same address the plugin reconnects and pushes the new state, having
	// sent nothing in between (the next message is the new configuration).
	e.srv.Close()
	addRunning(t, st, "shop", "172.31.0.3")
	e2 := serveAt(t, prov, addr)
	_ = e2
	cfg = next(t, ch)
	if routers(cfg)["shop"] == nil || !routes(cfg, "172.31.0.2") {
		t.Fatalf("after reconnecting: %v", routers(cfg))
	}
	if !routes(cfg, "172.31.0.3") { // shop was caught pending: its running state follows
		waitUntil(t, ch, func(cfg map[string]any) bool { return routes(cfg, "172.31.0.3") })
	}

	stopped := make(chan error, 1)
	go func() { stopped <- pp.Stop() }()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestPluginRefusesBadConfig: New names the setting that is wrong.
func TestPluginRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{"endpoint": "moor:8080", "token": token}, "endpoint"},
		{map[string]string{"endpoint": "http://moor:8080/api/v1/traefik/config"}, "token"},
		{map[string]string{"endpoint": "http://moor:8080/api/v1/traefik/config", "token": token, "wait": "5m"}, "wait"},
	} {
		_, err := newPlugin(t, c.settings)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.settings, err, c.want)
		}
	}
}

// TestPluginKeepsLastGoodConfig: a fake moor (for faults the real one
// never produces) answers with an empty routers map, a body cut short, a
// JSON array, a 500 and a body without ETag between two good
// configurations. The plugin pushes only the good ones, and keeps asking
// with the last good ETag.
func TestPluginKeepsLastGoodConfig(t *testing.T) {
	good := func(ip string) string {
		return `{"http":{"routers":{"blog":{"rule":"Host(` + "`blog.moor.localhost`" + `)","service":"blog"}},` +
			`"services":{"blog":{"loadBalancer":{"servers":[{"url":"http://` + ip + `:8080"}]}}}}}`
	}
	type answer struct {
		status     int
		etag, body string
		cutShortBy int
	}
	script := []answer{
		{200, `"A"`, good("172.31.1.1"), 0},
		{200, `"B"`, `{"http":{"routers":{},"services":{}}}`, 0},
		{200, `"C"`, good("172.31.1.9"), 40},
		{200, `"D"`, `[1,2,3]`, 0},
		{500, "", `{"error":{}}`, 0},
		{200, "", good("172.31.1.9"), 0},
		{200, `"E"`, good("172.31.1.2"), 0},
	}
	var (
		mu      sync.Mutex
		calls   int
		inmOf   []string
		lastInm = make(chan string, 1)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		i := calls
		calls++
		inmOf = append(inmOf, r.Header.Get("If-None-Match"))
		mu.Unlock()
		if i >= len(script) {
			select {
			case lastInm <- r.Header.Get("If-None-Match"):
			default:
			}
			<-r.Context().Done() // a long poll with nothing new
			return
		}
		a := script[i]
		if a.etag != "" {
			w.Header().Set("ETag", a.etag)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(a.status)
		io.WriteString(w, a.body[:len(a.body)-a.cutShortBy])
	}))
	defer srv.Close()

	pp := loadPlugin(t, map[string]string{"endpoint": srv.URL + "/api/v1/traefik/config", "token": token, "wait": "30s", "maxBackoff": "100ms"})
	ch := make(chan json.Marshaler)
	if err := pp.Provide(ch); err != nil {
		t.Fatal(err)
	}
	defer pp.Stop()
	for _, want := range []string{"172.31.1.1", "172.31.1.2"} {
		select {
		case m := <-ch:
			b, _ := m.MarshalJSON()
			if !strings.Contains(string(b), "http://"+want+":8080") {
				t.Fatalf("pushed %s, want the configuration routing to %s", b, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("nothing pushed; want the configuration routing to %s", want)
		}
	}
	select {
	case inm := <-lastInm:
		if inm != `"E"` {
			t.Errorf("after the last good configuration the plugin asks with If-None-Match %q, want \"E\"", inm)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the plugin stopped asking")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i <= 6; i++ {
		if inmOf[i] != `"A"` {
			t.Errorf("request %d after a refused answer asked with If-None-Match %q, want the last good \"A\"", i, inmOf[i])
		}
	}
	select {
	case m := <-ch:
		b, _ := m.MarshalJSON()
		t.Errorf("pushed a further configuration: %.200s", b)
	default:
	}
}
