package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moorhq/moor/internal/domain"
)

func newTest(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/prefix/", "moor_key")
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(context.Context, time.Duration) error { return nil }
	return c
}

// TestParseURL: http(s) with a host; a trailing slash goes; user, query
// and fragment are refused, naming the rule.
func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		"https://moor.example/base/":  "https://moor.example/base",
		" http://localhost:8080/ ":    "http://localhost:8080",
		"127.0.0.1:8080":              "must start with http:// or https://",
		"ftp://x":                     "must start with http:// or https://",
		"http://":                     "has no host",
		"http://u:p@moor.example":     "must have no user, query or fragment",
		"http://moor.example/?a=b":    "must have no user, query or fragment",
		"http://moor.example/#frag":   "must have no user, query or fragment",
		"http://[::1":                 "does not parse",
		"http://[::1]:8080/api/v1///": "http://[::1]:8080/api/v1",
	} {
		u, err := ParseURL(in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = u.String()
		}
		if !strings.Contains(got, want) {
			t.Errorf("ParseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRequestShape: the key as a bearer token, the path prefix kept, names
// escaped, and JSON bodies with null for variables left empty.
func TestRequestShape(t *testing.T) {
	var got struct {
		method, path, auth, ctype string
		body                      map[string]any
	}
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.auth, got.ctype = r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		got.body = nil
		json.NewDecoder(r.Body).Decode(&got.body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"name":"blog","status":"pending"}`)
	})
	two := 2
	cont, err := c.Create(context.Background(), domain.CreateRequest{Name: "blog", Type: "testapp",
		Env: map[string]string{"MODE": "web"}, LeaveEmpty: []string{"GREETING"}, Replicas: &two})
	if err != nil || cont.Status != domain.StatusPending {
		t.Fatalf("create: %+v %v", cont, err)
	}
	if got.method != "POST" || got.path != "/prefix/api/v1/containers" || got.auth != "Bearer moor_key" || got.ctype != "application/json" {
		t.Fatalf("request %+v", got)
	}
	env, _ := got.body["env"].(map[string]any)
	if v, ok := env["GREETING"]; !ok || v != nil || env["MODE"] != "web" || got.body["replicas"] != 2.0 || got.body["name"] != "blog" {
		t.Fatalf("body %v: want env.GREETING null, MODE web, replicas 2", got.body)
	}
	// No replicas given: none sent (moor's default applies).
	c.Create(context.Background(), domain.CreateRequest{Name: "b", Type: "testapp"})
	if _, ok := got.body["replicas"]; ok {
		t.Fatalf("body %v: replicas sent though not given", got.body)
	}
	if _, ok := got.body["env"]; ok {
		t.Fatalf("body %v: env sent though empty", got.body)
	}
	c.Remove(context.Background(), "a/b?c", true)
	if got.method != "DELETE" || got.path != "/prefix/api/v1/containers/a%2Fb%3Fc" {
		t.Fatalf("remove: %+v", got)
	}
}

// TestErrors: moor's error JSON becomes an *APIError with its field; a
// foreign body keeps its first line; no answer is an *UnreachableError.
func TestErrors(t *testing.T) {
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/prefix/api/v1/containers/bad":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(422)
			io.WriteString(w, `{"error":{"code":"invalid","message":"env.MODE: must be one of web, worker","field":"env.MODE"}}`)
		case "/prefix/api/v1/containers/proxy":
			w.WriteHeader(502)
			io.WriteString(w, "<html>Bad Gateway</html>\nmore")
		default:
			w.WriteHeader(200)
			io.WriteString(w, "not json")
		}
	})
	_, err := c.Container(context.Background(), "bad")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 422 || ae.Code != "invalid" || ae.Field != "env.MODE" ||
		err.Error() != "env.MODE: must be one of web, worker (422 invalid)" {
		t.Fatalf("422: %#v %v", err, err)
	}
	_, err = c.Container(context.Background(), "proxy")
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "Bad Gateway: <html>Bad Gateway</html>") {
		t.Fatalf("502: %v", err)
	}
	_, err = c.Container(context.Background(), "garbage")
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("not JSON: %v", err)
	}
	down, _ := New("http://127.0.0.1:1", "k")
	_, err = down.Containers(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot reach moor at http://127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err = down.Containers(ctx); !errors.Is(err, context.Canceled) || errors.As(err, &ue) {
		t.Fatalf("cancelled: %v, want context.Canceled", err)
	}
}

// TestRetryAfter: a 429 is retried after its Retry-After while the total
// wait fits MaxRetryWait, then returned.
func TestRetryAfter(t *testing.T) {
	var calls atomic.Int32
	var slept time.Duration
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"code":"too_many_requests","message":"slow down"}}`)
			return
		}
		io.WriteString(w, `{"containers":[{"name":"a"}]}`)
	})
	c.sleep = func(_ context.Context, d time.Duration) error { slept += d; return nil }
	cs, err := c.Containers(context.Background())
	if err != nil || len(cs) != 1 || calls.Load() != 3 || slept != 6*time.Second {
		t.Fatalf("containers %v, %v after %d calls, slept %s", cs, err, calls.Load(), slept)
	}
	calls.Store(0)
	c.MaxRetryWait = 4 * time.Second
	_, err = c.Containers(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 || ae.RetryAfter != 3*time.Second || calls.Load() != 2 {
		t.Fatalf("over MaxRetryWait: %v after %d calls", err, calls.Load())
	}
}

// TestFollow: events arrive in order over the websocket with the key; a
// dropped stream is resumed after the last seq; a pruned cursor ends it.
func TestFollow(t *testing.T) {
	var conns atomic.Int32
	up := websocket.Upgrader{Subprotocols: []string{"moor.v1"}}
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/api/v1/ws" || r.Header.Get("Authorization") != "Bearer moor_key" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"code":"unauthorized","message":"no"}}`)
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		switch n := conns.Add(1); {
		case n == 1 && r.URL.Query().Has("after"):
			t.Errorf("first connection with after=%s, want none (from now)", r.URL.Query().Get("after"))
		case n == 1:
			for seq := 5; seq <= 6; seq++ {
				conn.WriteJSON(domain.Event{Seq: int64(seq), Kind: "container.running", Container: "a"})
			}
			// Dropped without a close frame: the client resumes.
		case n == 2 && r.URL.Query().Get("after") != "6":
			t.Errorf("resumed with after=%q, want 6", r.URL.Query().Get("after"))
		case n == 2:
			conn.WriteJSON(domain.Event{Seq: 7, Kind: "container.stopped", Container: "a"})
			conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4410, "events 8-9 were pruned"))
		}
	})
	var seqs []int64
	err := c.Follow(context.Background(), -1, time.Minute, func(ev domain.Event) error {
		seqs = append(seqs, ev.Seq)
		return nil
	})
	if !errors.Is(err, ErrPruned) || !strings.Contains(err.Error(), "events 8-9 were pruned") || len(seqs) != 3 || seqs[2] != 7 {
		t.Fatalf("follow: %v, seqs %v", err, seqs)
	}
	bad, _ := New(c.URL(), "wrong")
	if _, err := bad.Watch(context.Background(), 0); !IsStatus(err, 401) {
		t.Fatalf("watch with a wrong key: %v, want a 401 APIError", err)
	}
}

// TestProjects: the project calls' paths, bodies and answers; a 409
// keeps moor's message; InProject moves the container calls under
// /api/v1/projects/P without changing the client it came from.
func TestProjects(t *testing.T) {
	type req struct {
		method, path string
		body         map[string]any
	}
	var got []req
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		rq := req{method: r.Method, path: r.URL.EscapedPath()}
		json.NewDecoder(r.Body).Decode(&rq.body)
		got = append(got, rq)
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /prefix/api/v1/projects":
			io.WriteString(w, `{"projects":[{"name":"default","containers":2,"network":"moor"},{"name":"shop","internal":true,"max_containers":5,"max_cpus":1.5,"containers":0,"network":"moor-p-shop"}]}`)
		case "GET /prefix/api/v1/projects/shop":
			io.WriteString(w, `{"name":"shop","internal":true,"max_memory_mb":512,"containers":1}`)
		case "POST /prefix/api/v1/projects":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"name":"shop","internal":true,"max_containers":5,"network":"moor-p-shop"}`)
		case "DELETE /prefix/api/v1/projects/shop":
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"conflict","message":"project \"shop\" still has 1 container(s): web; remove them first"}}`)
		case "DELETE /prefix/api/v1/projects/empty":
			w.WriteHeader(http.StatusNoContent)
		case "GET /prefix/api/v1/projects/shop/containers":
			io.WriteString(w, `{"containers":[{"name":"web","project":"shop"}]}`)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no"}}`)
		}
	})
	ctx := context.Background()
	ps, err := c.Projects(ctx)
	if err != nil || len(ps) != 2 || ps[1].Name != "shop" || !ps[1].Internal || *ps[1].MaxContainers != 5 || *ps[1].MaxCPUs != 1.5 || ps[1].MaxMemoryMB != nil || ps[0].Containers != 2 {
		t.Fatalf("projects: %+v %v", ps, err)
	}
	p, err := c.Project(ctx, "shop")
	if err != nil || *p.MaxMemoryMB != 512 || p.Containers != 1 {
		t.Fatalf("project: %+v %v", p, err)
	}
	five := 5
	p, err = c.CreateProject(ctx, domain.NewProject{Name: "shop", Internal: true, MaxContainers: &five})
	if err != nil || p.Network != "moor-p-shop" {
		t.Fatalf("create: %+v %v", p, err)
	}
	if b, _ := json.Marshal(got[len(got)-1].body); string(b) != `{"internal":true,"max_containers":5,"name":"shop"}` {
		t.Fatalf("create sent %s", b)
	}
	err = c.DeleteProject(ctx, "shop")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || !strings.Contains(ae.Message, "still has 1 container(s): web") {
		t.Fatalf("delete of a non-empty project: %v", err)
	}
	if err := c.DeleteProject(ctx, "empty"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	cs, err := c.InProject("shop").Containers(ctx)
	if err != nil || len(cs) != 1 || cs[0].Project != "shop" || got[len(got)-1].path != "/prefix/api/v1/projects/shop/containers" {
		t.Fatalf("containers of shop: %+v %v (%+v)", cs, err, got[len(got)-1])
	}
	if c.ContainerProject() != "default" {
		t.Fatalf("InProject changed the client it came from: %q", c.ContainerProject())
	}
	c.InProject("default").Remove(ctx, "web", false)
	if last := got[len(got)-1]; last.path != "/prefix/api/v1/containers/web" {
		t.Fatalf("the default project's container: %+v", last)
	}
	c.InProject("shop").Logs(ctx, "web", LogOptions{})
	if last := got[len(got)-1]; last.path != "/prefix/api/v1/projects/shop/containers/web/logs" {
		t.Fatalf("logs in shop: %+v", last)
	}
}

// TestStacks: the stack routes of the client's project (the default
// project's under /api/v1/stacks), remove_volumes only when asked, and a
// body over MaxBodyBytes refused before it is sent.
func TestStacks(t *testing.T) {
	var got []string
	var body map[string]any
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		body = nil
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/stacks") {
			io.WriteString(w, `{"stacks":[{"name":"app","services":[{"name":"web","hash":"h1"}]}]}`)
			return
		}
		io.WriteString(w, `{"project":"shop","name":"app","services":[{"name":"web","container":"app-web","hash":"h1"}],"containers":[{"name":"app-web"}]}`)
	})
	ctx := context.Background()
	sts, err := c.Stacks(ctx)
	if err != nil || len(sts) != 1 || sts[0].Services[0].Hash != "h1" {
		t.Fatalf("Stacks: %+v %v", sts, err)
	}
	shop := c.InProject("shop")
	st, err := shop.CreateStack(ctx, "app", "services: {}")
	if err != nil || st.Name != "app" || len(st.Containers) != 1 || body["name"] != "app" || body["compose"] != "services: {}" {
		t.Fatalf("CreateStack: %+v %v, sent %v", st, err, body)
	}
	shop.UpdateStack(ctx, "app", "services: {x: {}}", true)
	if _, ok := body["name"]; ok || body["compose"] != "services: {x: {}}" {
		t.Fatalf("UpdateStack sent %v", body)
	}
	shop.UpdateStack(ctx, "app", "services: {}", false)
	shop.Stack(ctx, "a/b")
	shop.DeleteStack(ctx, "app", true)
	c.DeleteStack(ctx, "app", false)
	want := []string{
		"GET /prefix/api/v1/stacks?",
		"POST /prefix/api/v1/projects/shop/stacks?",
		"PUT /prefix/api/v1/projects/shop/stacks/app?remove_volumes=true",
		"PUT /prefix/api/v1/projects/shop/stacks/app?",
		"GET /prefix/api/v1/projects/shop/stacks/a%2Fb?",
		"DELETE /prefix/api/v1/projects/shop/stacks/app?remove_volumes=true",
		"DELETE /prefix/api/v1/stacks/app?",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	n := len(got)
	_, err = c.CreateStack(ctx, "app", strings.Repeat("x", MaxBodyBytes))
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != MaxBodyBytes || tl.Size <= MaxBodyBytes || len(got) != n {
		t.Fatalf("a body over the limit: %v, %d requests sent", err, len(got)-n)
	}
}
